"""The application's fleet as rollout logic drives it: CodeDeploy, ALB weights, health, metrics.

Implemented on AWS by :mod:`canaryfleet.adapters.fleet` (``CodeDeploy``, ``Traffic``,
``Metrics``) and in memory by the unit tests' fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from canaryfleet.models.analysis import MetricQuery
from canaryfleet.models.app_config import AppConfig, FleetGroup, GroupCapacity
from canaryfleet.models.chart import AlarmThreshold, MetricSample
from canaryfleet.models.fail_fast import CriticalAlarm
from canaryfleet.models.rollout import Revision

# CodeDeploy statuses that end a deployment, and those of one that has not ended (botocore
# codedeploy model, DeploymentStatus).
TERMINAL_DEPLOYMENT_STATUSES = frozenset({"Succeeded", "Failed", "Stopped"})
ACTIVE_DEPLOYMENT_STATUSES = ("Created", "Queued", "InProgress", "Baking", "Ready")


class Deployments(Protocol):
    """CodeDeploy: revisions and deployments of a deployment group."""

    def register_revision(self, application: str, revision: Revision) -> None: ...

    def create_deployment(
        self, application: str, group: str, revision: Revision, description: str, *, restore: bool = False
    ) -> str:
        """Start a deployment; its id.

        ``restore``: a restore of the last good revision. CodeDeploy watches the group's alarms
        during a deployment (stopping it, ``ALARM_ACTIVE``, while one is in ALARM): a restore turns
        that off, since the alarms that caused the rollback are still in ALARM when it starts. And
        it ignores the failures of ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic, whose
        scripts CodeDeploy runs from the build being removed: the failed build's own.
        """
        ...

    def status(self, deployment_id: str) -> tuple[str, str]:
        """The deployment's status and, when it failed, CodeDeploy's message. A success that left
        any instance without the build (failed or skipped) is ``Failed``, saying so."""
        ...

    def find_active(self, application: str, group: str, description: str) -> str | None:
        """The id of the group's deployment that has not ended and was created with this
        description, if there is one."""
        ...

    def find_created(self, application: str, group: str, description: str, since: datetime) -> str | None:
        """The id of the group's deployment created since ``since`` with this description, ended
        or not, if there is one."""
        ...

    def stop(self, deployment_id: str) -> bool:
        """Stop a running deployment; False if it had already ended."""
        ...


class FiringAlarms(Protocol):
    """CloudWatch alarms, as a deployment group's alarm configuration reads them."""

    def alarms_in_alarm(self, names: tuple[str, ...]) -> list[dict[str, str]]:
        """The named alarms in ALARM now, each with ``name`` and ``reason``."""
        ...


class TrafficWeights(Protocol):
    """The weighted listener rule and the target groups behind it."""

    def weights(self, app: AppConfig) -> dict[str, int]:
        """The weight of each target group the rule's forward action names, by target group ARN."""
        ...

    def set_canary_weight(self, app: AppConfig, weight: int) -> dict[str, int]:
        """Set canary to ``weight`` percent, live the rest; the weights read back, by target group."""
        ...

    def target_health(self, group: FleetGroup) -> dict[str, str]:
        """Each registered target's health state, by target id."""
        ...


class GroupCapacities(Protocol):
    """Auto Scaling: a group's capacity, read and set (blue/green colors)."""

    def capacity(self, auto_scaling_group: str, since: datetime | None = None) -> GroupCapacity:
        """The group's capacity; its launch failures only from ``since`` on, when given."""
        ...

    def set_desired(self, auto_scaling_group: str, desired: int) -> None:
        """Set the desired capacity; scale-in goes through the group's termination hook (the drain)."""
        ...


class FleetMetrics(Protocol):
    """CloudWatch: metrics per interval, and alarms that fire."""

    def series(
        self, queries: Mapping[str, MetricQuery], start: datetime, end: datetime, period_seconds: int
    ) -> dict[str, dict[datetime, float]]:
        """Each query's value by interval start over [start, end); an interval without data is absent."""
        ...

    def samples(
        self, app: AppConfig, group: FleetGroup, start: datetime, end: datetime
    ) -> list[MetricSample]:
        """The window period by period (at most MAX_SAMPLES periods), oldest first."""
        ...

    def alarms_in_alarm(self, names: tuple[str, ...]) -> list[dict[str, str]]:
        """The named alarms in ALARM now, each with ``name`` and ``reason``."""
        ...

    def alarm_thresholds(self, names: tuple[str, ...]) -> list[AlarmThreshold]:
        """The named alarms' thresholds and what each watches (alarms that do not exist are left out)."""
        ...

    def put_alarm(self, alarm: CriticalAlarm) -> None:
        """Create (or replace) a critical metric's alarm."""
        ...

    def delete_alarms(self, prefix: str) -> list[str]:
        """Delete every alarm whose name starts with ``prefix``; the names deleted (none is fine)."""
        ...


class AppRegistry(Protocol):
    """Onboarded applications (their configuration in SSM)."""

    def get(self, application: str) -> AppConfig:
        """The application's configuration; UnknownApplication if it is not onboarded."""
        ...

    def owner_of_alarm(self, alarm_name: str) -> tuple[AppConfig, str] | None:
        """The application and side (canary or live) whose alarm this is, if any."""
        ...
