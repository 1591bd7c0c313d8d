"""A critical metric's fail-fast alarm: a CloudWatch metric-math alarm comparing canary with live."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ALARM_PREFIX = "canaryfleet-"


def alarm_prefix(application: str) -> str:
    """What every fail-fast alarm of the application's name starts with."""
    # Application names hold no dot: one application's prefix never starts another's.
    return f"{ALARM_PREFIX}{application}."


def metric_of(alarm_name: str, application: str) -> str | None:
    """The metric part of a fail-fast alarm's name, or None if the name is not one of the application's."""
    prefix = alarm_prefix(application)
    if alarm_name.startswith(prefix) and len(alarm_name) > len(prefix):
        return alarm_name[len(prefix) :]
    return None


class CriticalAlarm(BaseModel):
    """What PutMetricAlarm is given for one critical metric (see ``logic/analysis/failfast.py``)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    metric: str = Field(min_length=1, max_length=64, description="The metric's name in the policy.")
    metrics: tuple[dict[str, Any], ...] = Field(min_length=1, max_length=20)
    threshold: float
    evaluation_periods: int = Field(ge=1)
    datapoints_to_alarm: int = Field(ge=1)
    period_seconds: int = Field(ge=10)

    def put_request(self) -> dict[str, Any]:
        """PutMetricAlarm's arguments. The description is the metric's name, which the rollback quotes
        (the alarm's state-change event carries it as ``configuration.description``)."""
        return {
            "AlarmName": self.name,
            "AlarmDescription": self.metric,
            "Metrics": [dict(q) for q in self.metrics],
            "Threshold": self.threshold,
            "ComparisonOperator": "GreaterThanThreshold",
            "EvaluationPeriods": self.evaluation_periods,
            "DatapointsToAlarm": self.datapoints_to_alarm,
            # A period without the data to judge it is not a failure.
            "TreatMissingData": "notBreaching",
        }
