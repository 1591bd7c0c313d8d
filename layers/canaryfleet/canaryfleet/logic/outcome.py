"""How a rollout ends: released, or rolled back with a reason a person understands."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from canaryfleet.errors import parse_cause
from canaryfleet.logic.canary import delete_critical_alarms
from canaryfleet.logic.deployments import stop_unfinished
from canaryfleet.models.app_config import Color
from canaryfleet.models.rollout import Revision, RolloutRef
from canaryfleet.models.rollout_record import RolloutOutcome
from canaryfleet.models.tasks import RollbackTask
from canaryfleet.observability import emit_dimensioned, logger, metrics, tracer
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.fleet import Deployments, FleetMetrics
from canaryfleet.ports.rollouts import RolloutStore

Outcome = RolloutOutcome

# Error names the state machine hands to the rollback, and how each reads.
_REASONS = {
    "CanaryAlarm": "canary alarm",
    "CriticalMetricFailed": "critical metric",
    "AnalysisFailed": "analysis failed",
    "AnalysisInconclusive": "analysis inconclusive",
    "DeploymentFailed": "deployment failed",
    "DeploymentTimedOut": "deployment timed out",
    "CanaryUnhealthy": "canary unhealthy",
    "CanaryNotHealthyYet": "canary unhealthy",
    "TrafficNotShifted": "traffic shift failed",
    "Rejected": "rejected",
    "Aborted": "aborted",
    "ApprovalTimedOut": "approval timed out",
    "CapacityUnavailable": "no healthy capacity",
    "CapacityNotHealthyYet": "no healthy capacity",
    "ColorNotEmptyYet": "idle color did not drain",
    # Ends where no Catch runs, rolled back by a recovery execution (logic/recovery.py).
    "ExecutionAborted": "stopped outside canaryfleet",
    "ExecutionTimedOut": "execution timed out",
    "ExecutionFailed": "execution failed",
}


def category_of(error: str) -> str:
    """The reason category an error name reads as (the RolloutsRolledBack metric's dimension)."""
    return _REASONS.get(error, "failed")


def explain(error: str, cause: str | None) -> tuple[Outcome, str, str]:
    """(outcome, reason category, reason sentence) for a Catch's Error and Cause."""
    category = category_of(error)
    detail = parse_cause(cause)
    if error == "Rejected":
        try:
            decided = json.loads(cause or "{}")
            return "rejected", category, f"rejected by {decided.get('by')}: {decided.get('reason')}"
        except ValueError:
            return "rejected", category, f"rejected: {detail}"
    if error == "ApprovalTimedOut":
        return "rolled_back", category, detail or "nobody approved before the approval timeout"
    if detail.lower().startswith(category):
        return "rolled_back", category, detail
    text = f"{category}: {detail}" if detail else f"{category} ({error})"
    return "rolled_back", category, text


@tracer.capture_method
def finalize(
    ref: RolloutRef,
    revision: Revision,
    store: RolloutStore,
    clock: Clock,
    alarms: FleetMetrics | None = None,
    live_color: Color | None = None,
) -> dict[str, str]:
    """Record the release as the application's last good revision, then delete its fail-fast
    alarms (a promote can end a bake before its analysis deletes them). ``live_color``:
    blue/green, the color that carried the release and serves from now on.

    The record first: the build already serves all traffic, and a later rollback restores what
    is recorded here. The alarms are best effort, so a CloudWatch that throttles or refuses
    DeleteAlarms never leaves a serving build unrecorded: the next bake's
    ``put_critical_alarms`` deletes whatever is left before it puts its own, and an alarm left
    going off has no running rollout to end (``canary.on_alarm``).
    """
    application, rollout_id = ref.application, ref.rollout_id
    store.set_last_good(application, revision, rollout_id, color=live_color)
    store.decide_version(application, revision.version, "released", rollout_id, "released")
    store.record_outcome(application, rollout_id, "released", "", ended_at=clock.now())
    if alarms is not None:
        try:
            delete_critical_alarms(application, alarms)
        except (ClientError, BotoCoreError) as exc:
            logger.warning(
                "fail-fast alarms left for the next bake to delete",
                extra={"error": str(exc)[:300]},
            )
    metrics.add_metric(name="RolloutsReleased", unit=MetricUnit.Count, value=1)
    logger.info("rollout released", extra={"version": revision.version})
    return {"outcome": "released", "version": revision.version}


# A person's decision about the build: it decides the version even before anything was deployed.
_DECIDED_BY_A_PERSON = frozenset({"Rejected", "Aborted"})


def record_rollback(
    ref: RolloutRef,
    error: str,
    cause: str | None,
    store: RolloutStore,
    clock: Clock,
    *,
    deployed: bool | None = None,
) -> dict[str, str]:
    """Record how the rollout ended, with the reason, and mark its version rejected when the
    build was judged: it was deployed (to any group), or a person rejected or aborted it.

    A rollout that failed before it deployed anything (blue/green's listener rule left split
    between the colors, no capacity for the idle color, stopped or timed out in the queue)
    says nothing about its build, so its version stays free: the reason says it may be uploaded
    again once the cause is fixed, instead of asking for a new version number for a build that
    never ran. ``deployed``: whether this rollout created a deployment, if the caller knows.

    Once: a rollback recorded already (a retried task, or a recovery finishing a rollback that
    was stopped midway: logic/recovery.py) keeps its first reason."""
    application, rollout_id, version = ref.application, ref.rollout_id, ref.version
    recorded = store.get(application, rollout_id)
    if recorded is not None and recorded.outcome in ("rolled_back", "rejected"):
        category = category_of(recorded.error or error)
        return {"outcome": recorded.outcome, "reason": recorded.reason or "", "category": category}
    outcome, category, reason = explain(error, cause)
    if deployed is None:
        deployed = bool(store.deployments_of(rollout_id))
    if deployed or error in _DECIDED_BY_A_PERSON:
        store.decide_version(application, version, "rejected", rollout_id, reason)
    else:
        reason += f"; nothing was deployed, so version {version} may be uploaded again"
    store.record_outcome(application, rollout_id, outcome, reason, error=error, ended_at=clock.now())
    emit_dimensioned("RolloutsRolledBack", MetricUnit.Count, 1, "reason", category)
    logger.warning("rollout rolled back", extra={"reason": reason, "error": error})
    return {"outcome": outcome, "reason": reason, "category": category}


@tracer.capture_method
def roll_back(
    task: RollbackTask,
    store: RolloutStore,
    codedeploy: Deployments,
    clock: Clock,
    alarms: FleetMetrics | None = None,
) -> dict[str, Any]:
    """Stop what this rollout still has running (without CodeDeploy's rollback), record why it
    ended, and say what the state machine restores.

    canaryfleet, not CodeDeploy, decides what "last good" is: the last revision it released.
    The canary group gets it back when this rollout deployed anything; the live group too when it
    deployed to it
    (a failed or stopped live deployment leaves some live instances on the new build).
    """
    stopped = stop_unfinished(task.ref.rollout_id, store, codedeploy)
    deployed = {record.purpose for record in store.deployments_of(task.ref.rollout_id)}
    result = record_rollback(
        task.ref, task.error.error, task.error.cause, store, clock, deployed=bool(deployed)
    )
    # After the reason is recorded: CloudWatch's alarm APIs are the first a burst throttles, and
    # a rollback that cannot clean up yet still says why it rolled back (its retry cleans up).
    # A bake ended by an alarm or an abort had no analysis to delete them. A rollout that
    # deployed nothing never baked: the application's alarms, if any, are another rollout's
    # (one that holds the turn while this one failed waiting for it).
    if alarms is not None and deployed:
        delete_critical_alarms(task.ref.application, alarms)
    # A rollout that ended before it created its canary deployment (an abort while it waited for
    # its deployment window) changed no instance: nothing to restore, and nothing is deployed.
    last_good = store.last_good(task.ref.application) if deployed else None
    deployed_live = "live" in deployed
    return {
        **result,
        "stopped_deployments": stopped,
        "last_good": last_good.model_dump(mode="json") if last_good else None,
        "restore_live": last_good is not None and deployed_live,
    }
