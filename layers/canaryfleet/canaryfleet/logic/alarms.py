"""The canary's alarms read at once: the check every wait makes where an event may not come."""

from __future__ import annotations

from canaryfleet.errors import CanaryAlarm, CriticalMetricFailed
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.fail_fast import metric_of
from canaryfleet.ports.fleet import FleetMetrics


def firing_alarm(
    app: AppConfig, critical: dict[str, str], metrics: FleetMetrics
) -> CanaryAlarm | CriticalMetricFailed | None:
    """The error a bake ends with if one of its alarms is in ALARM now (the first one), else None.

    ``critical``: the bake's fail-fast alarms, each with the metric it watches.
    """
    firing = metrics.alarms_in_alarm((*app.canary.alarms, *critical))
    if not firing:
        return None
    alarm = firing[0]
    metric = metric_of(alarm["name"], app.application)
    if metric is not None:
        named = critical.get(alarm["name"], metric)
        return CriticalMetricFailed(
            f"critical metric {named} failed during the bake: {alarm['name']}: {alarm['reason']}"
        )
    return CanaryAlarm(f"canary alarm {alarm['name']} is in ALARM: {alarm['reason']}")
