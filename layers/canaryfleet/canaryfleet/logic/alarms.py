"""The canary's alarms read at once: the check every wait makes where an event may not come."""

from __future__ import annotations

from canaryfleet.errors import CanaryAlarm, CriticalMetricFailed
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.fail_fast import metric_of
from canaryfleet.models.rollout import RolloutRef
from canaryfleet.observability import logger
from canaryfleet.ports.fleet import FleetMetrics
from canaryfleet.ports.rollouts import RolloutRecords
from canaryfleet.ports.workflow import Callbacks


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


def end_wait_if_firing(
    app: AppConfig,
    metrics: FleetMetrics,
    ref: RolloutRef,
    token: str,
    store: RolloutRecords,
    callbacks: Callbacks,
) -> bool:
    """A wait that has just stored its token reads the canary's alarms; True if one is in ALARM.

    Its event came before the wait began, when there was no wait for it to end: the wait's token
    fails now as the event would have failed it, and the wait is forgotten.
    """
    firing = firing_alarm(app, {}, metrics)
    if firing is None:
        return False
    if callbacks.fail(token, type(firing).__name__, str(firing)):
        store.clear_wait(ref.application, ref.rollout_id, token)
    logger.warning("canary alarm in ALARM as a wait began", extra={"error": str(firing)})
    return True
