"""Scenarios for the fleet simulator: data, not code paths (scenarios/*.yaml)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import yaml
from canaryfleet.models.policy import WEEKDAYS, DeploymentWindow, RolloutPolicy
from pydantic import BaseModel, ConfigDict, Field

SCENARIOS = Path(__file__).parent / "scenarios"


class Behaviour(BaseModel):
    """How a version behaves when it serves requests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_rate: float = Field(default=0.001, ge=0, le=1, description="Share of requests answered 5xx.")
    latency_seconds: float = Field(default=0.08, gt=0, description="Average target response time.")
    trips_alarms: bool = Field(
        default=False, description="Its 5xx trip the side's alarms while it takes traffic."
    )
    trips_alarms_in: Literal["bake", "approval", "window"] = Field(
        default="bake",
        description="The wait of the rollout during which its alarms go to ALARM (a canary that "
        "turns bad while it waits for its approval: approval; for the calendar: window).",
    )
    lose_alarm_event: bool = Field(
        default=False,
        description="The state-change events of the alarms it trips never arrive: only a check of "
        "the alarms' state sees them.",
    )
    app_metrics: dict[str, float] = Field(
        default_factory=dict,
        description="The application's own counts, each a share of its requests (PaymentsSucceeded: "
        "0.97), published with its Requests in the namespace APP_NAMESPACE by Auto Scaling group.",
    )


# Where the simulated application publishes its own metrics, as an application would with
# PutMetricData (a namespace of its own: AWS/ ones are AWS's).
APP_NAMESPACE = "HelloApp"


class DeploymentScript(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Literal["succeed", "fail"] = "succeed"
    seconds: float = Field(default=0.3, ge=0, description="From creation to the state-change event.")
    lose_event: bool = Field(default=False, description="The state-change event never arrives.")
    stop_seconds: float = Field(
        default=0.5,
        ge=0,
        description="From StopDeployment to the end of a stopped deployment: its instances finish "
        "the lifecycle event they are in (StopDeployment answers Pending until then).",
    )


class Upload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    after_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Delay after the previous upload, once the platform received it (its rollout recorded).",
    )
    behaviour: Behaviour = Field(default_factory=Behaviour)
    canary_deployment: DeploymentScript = Field(default_factory=DeploymentScript)
    live_deployment: DeploymentScript = Field(default_factory=DeploymentScript)
    decision: Literal["approve", "reject", "none"] = "approve"
    expect: Literal["released", "rolled_back", "rejected"] = "released"


class OperatorAction(BaseModel):
    """Something on-call does to a running rollout, through the same decision path as everyone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["abort", "promote"]
    during: Literal["deployment", "bake", "approval", "window"] = Field(
        description="The wait the rollout is in."
    )
    version: str | None = Field(default=None, description="Only the rollout of this version; None: any.")
    by: str = "oncall@example.com"
    reason: str = ""
    override_window: bool = Field(
        default=False, description="Promote only: release despite windows and freezes."
    )


class ScenarioWindow(BaseModel):
    """The application's one deployment window, placed on the local cloud's clock when the story
    starts (a policy cannot say "in 15 seconds")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    opens_after_seconds: float = Field(ge=1, le=3_600, description="From the start of the story.")
    open_seconds: int = Field(ge=1, le=43_200, description="How long it stays open.")
    timezone: str = Field(default="UTC", description="The window's IANA zone (its clock times are local).")


class ScenarioFreeze(BaseModel):
    """A platform-wide freeze an operator declares when the story starts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    starts_after_seconds: float = Field(default=0, ge=0, le=3_600, description="From the start of the story.")
    lasts_seconds: float = Field(gt=0, le=86_400)
    reason: str = "sale day"
    by: str = "oncall@example.com"


class Scenario(BaseModel):
    """One story: the fleet's traffic, the policy, and what happens to each upload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    requests_per_second: float = Field(default=5000, gt=0, description="Total load on the listener rule.")
    baseline: Behaviour = Field(
        default_factory=Behaviour, description="The version live runs before the story."
    )
    alarm_after_seconds: float = Field(
        default=0.3, ge=0, description="Traffic time before a tripped alarm fires."
    )
    alarm_clears_after_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Time from the moment a tripped alarm's version stops taking traffic to the "
        "alarm's return to OK. On AWS the alarm stays in ALARM until fewer than DatapointsToAlarm "
        "of its last EvaluationPeriods datapoints breach (botocore cloudwatch model, "
        "PutMetricAlarmInput.DatapointsToAlarm: 'the number of data points that must be breaching "
        "to trigger the alarm'): one to three minutes for the fleet's alarms (2 of 3 one-minute "
        "periods). A restore of the last good revision starts within that time.",
    )
    decide_after_seconds: float = Field(default=0.2, ge=0, description="How long the approver takes.")
    approver: str = "approver@example.com"
    policy: RolloutPolicy
    uploads: tuple[Upload, ...] = Field(min_length=1)
    actions: tuple[OperatorAction, ...] = Field(
        default=(), description="Done once each, when their wait comes."
    )
    window: ScenarioWindow | None = Field(default=None, description="None: the policy's windows (if any).")
    freezes: tuple[ScenarioFreeze, ...] = Field(default=(), description="Declared before the first upload.")
    strategy: Literal["in_place", "blue_green"] = Field(
        default="in_place", description="The fleet stack's Strategy parameter."
    )
    scale_down_delay_seconds: int = Field(
        default=2, ge=0, le=600, description="blue_green: the fleet stack's ScaleDownDelaySeconds."
    )
    capacity_timeout_seconds: int = Field(
        default=6, ge=1, le=600, description="blue_green: the fleet stack's CapacityTimeoutSeconds."
    )
    spot_capacity: int | None = Field(
        default=None,
        ge=0,
        description="Spot instances the region can still give the idle color (green) when a release "
        "brings it up; None: as many as asked.",
    )

    def fleet_parameters(self) -> dict[str, str]:
        """The fleet stack's parameters this story sets (none for in place: the defaults)."""
        if self.strategy == "in_place":
            return {}
        return {
            "Strategy": self.strategy,
            "ScaleDownDelaySeconds": str(self.scale_down_delay_seconds),
            "CapacityTimeoutSeconds": str(self.capacity_timeout_seconds),
        }

    def policy_at(self, start: datetime) -> RolloutPolicy:
        """The policy, with the story's window placed relative to ``start`` (the cloud's clock)."""
        if self.window is None:
            return self.policy
        opens = (start + timedelta(seconds=self.window.opens_after_seconds)).astimezone(
            ZoneInfo(self.window.timezone)
        )
        opens = opens.replace(microsecond=0) + timedelta(seconds=1)  # whole seconds, never early
        closes = opens + timedelta(seconds=self.window.open_seconds)
        window = DeploymentWindow(
            days=(WEEKDAYS[opens.weekday()],),
            start=opens.time().replace(tzinfo=None),
            end=closes.time().replace(tzinfo=None),
            timezone=self.window.timezone,
        )
        return self.policy.model_copy(update={"windows": (window,)})

    unlisted_decision: Literal["approve", "reject", "none"] = Field(
        default="approve",
        description="What the simulated approver answers for a build no upload lists "
        "(one that `canaryfleet publish` sent to `canaryfleet local up`); none: people decide.",
    )


def load_scenario(name: str) -> Scenario:
    path = SCENARIOS / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(scenario_names())
        raise ValueError(f"unknown scenario {name!r}; known: {known}")
    return Scenario.model_validate(yaml.safe_load(path.read_text()))


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
