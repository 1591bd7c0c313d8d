"""CodeDeploy deployments that a rollout waits for through a task token, never by polling.

The token and the deployment's final status meet in one item, whichever comes first: an
event that arrives before its token is stored is kept, and the token, once stored, finds it.
An event that arrives before the deployment's id is recorded is not known as canaryfleet's and
is ignored: the deployment's status, read once after the token is stored, covers that one.
"""

from __future__ import annotations

from typing import Any

from canaryfleet.errors import DeploymentFailed, DeploymentGroupBusy, DeploymentTimedOut
from canaryfleet.logic.canary import abort_cause, begin_wait
from canaryfleet.models.app_config import FleetGroup
from canaryfleet.models.rollout import RolloutRef
from canaryfleet.models.rollout_record import DeploymentWait, Wait
from canaryfleet.models.tasks import DeploymentStateChange, DeployRequest
from canaryfleet.observability import logger, tracer
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.fleet import TERMINAL_DEPLOYMENT_STATUSES, Deployments, FiringAlarms
from canaryfleet.ports.rollouts import RolloutStore
from canaryfleet.ports.workflow import Callbacks

# CodeDeploy "Deployment State-change Notification" states that end a deployment.
EVENT_OUTCOMES = {"SUCCESS": "Succeeded", "FAILURE": "Failed", "STOP": "Stopped"}
# Deployments of the last good revision that a rollback makes: no abort or promote ends them.
RESTORES = frozenset({"canary-restore", "live-restore"})


def _side(request: DeployRequest) -> FleetGroup:
    return request.app.live if request.purpose in ("live", "live-restore") else request.app.canary


def _group(request: DeployRequest) -> str:
    return _side(request).deployment_group


def _finish(callbacks: Callbacks, token: str, deployment_id: str, status: str, detail: str) -> bool:
    if status == "Succeeded":
        return callbacks.succeed(token, {"deployment_id": deployment_id, "status": status})
    cause = f"deployment {deployment_id} {status.lower()}" + (f": {detail}" if detail else "")
    return callbacks.fail(token, "DeploymentFailed", cause)


@tracer.capture_method
def start_deployment(
    request: DeployRequest,
    store: RolloutStore,
    codedeploy: Deployments,
    callbacks: Callbacks,
    clock: Clock,
    *,
    alarms: FiringAlarms,
) -> str:
    """Create the deployment once per rollout and purpose, and leave the token to wait for it.

    While another deployment of the group is still active (a stopped one finishing its
    instances), CodeDeploy refuses a new one: DeploymentGroupBusy, which the state machine
    retries with a bounded backoff. So it is while one of the group's alarms is in ALARM: the
    group's alarm configuration would stop the deployment at once (``ALARM_ACTIVE``), and an
    alarm a rollback left behind returns to OK within minutes (a rollout queued behind that
    rollback waits for it instead of failing on it). A restore of the last good revision
    does not wait: it turns the group's alarm polling off for itself, since it is what clears
    those alarms.

    Returns the deployment's id: "" when an abort already recorded ended the task before any
    deployment was created (a restore, which the rollback makes, is never aborted).
    """
    deployment_id = store.deployment_for(request.ref.rollout_id, request.purpose)
    if deployment_id is None and request.purpose not in RESTORES:
        abort = store.abort_requested(request.ref.application, request.ref.rollout_id)
        if abort is not None:
            deployment_id = _created_by_an_earlier_attempt(request, store, codedeploy)
            if deployment_id is None:
                # An abort that found no wait open (``decide`` answered "recorded"): the wait this
                # deployment would begin ends before it, and nothing is created for the rollback to
                # stop and redeploy (the live group carries most of the traffic).
                callbacks.fail(request.token, "Aborted", abort_cause(abort))
                logger.info("aborted before the deployment was created", extra={"purpose": request.purpose})
                return ""
    if deployment_id is None:
        restore = request.purpose in RESTORES
        if not restore:
            firing = alarms.alarms_in_alarm(_side(request).alarms)
            if firing:
                names = ", ".join(alarm["name"] for alarm in firing)
                raise DeploymentGroupBusy(
                    f"{request.app.codedeploy_application}/{_group(request)}: alarm(s) {names} in ALARM; "
                    "CodeDeploy would stop the deployment (the group's alarm configuration)"
                )
        deployment_id = _create_once(request, codedeploy, restore=restore)
        store.remember_deployment(request.ref.rollout_id, request.purpose, deployment_id, _group(request))
    if request.purpose not in RESTORES:
        # An abort asked for before or during the deployment ends this wait too.
        wait = Wait(kind="deployment", token=request.token, started_at=clock.now())
        outcome = begin_wait(wait, request.ref, store, callbacks, honour_promote=False)
        if outcome == "aborted":
            return deployment_id
    context = {
        "rollout_id": request.ref.rollout_id,
        "purpose": request.purpose,
        "application": request.app.application,
    }
    waited = store.attach_deployment_token(deployment_id, request.token, context)
    if waited.final_status is None:
        waited = _read_end_once(deployment_id, waited, store, codedeploy)
    if waited.final_status is not None:  # the deployment ended first: its detail with it
        _finish(callbacks, request.token, deployment_id, waited.final_status, waited.final_detail)
        return deployment_id
    logger.info("waiting for deployment", extra={"deployment_id": deployment_id, "purpose": request.purpose})
    return deployment_id


def _description(request: DeployRequest) -> str:
    """What the deployment is created with: how an attempt finds the one an earlier one created."""
    # The purpose first: the adapter cuts a description to 100 characters, so a rollout id of
    # 80 (the execution name's limit) loses at most 7 of the 24 characters of its digest.
    return f"canaryfleet {request.purpose} {request.ref.rollout_id}"


def _created_by_an_earlier_attempt(
    request: DeployRequest, store: RolloutStore, codedeploy: Deployments
) -> str | None:
    """The deployment an earlier attempt of this task created without recording it, now recorded
    (its wait then ends as every abort's does, and the rollback stops it); None if there is none.

    Ended ones count too: one that already succeeded before the retry put the build on the group
    all the same, and the rollback restores the last good revision only where a deployment of
    the rollout is recorded (a live group left on the aborted build otherwise)."""
    application, group = request.app.codedeploy_application, _group(request)
    record = store.get(request.ref.application, request.ref.rollout_id)
    if record is None:
        earlier = codedeploy.find_active(application, group, _description(request))
    else:
        earlier = codedeploy.find_created(application, group, _description(request), record.received_at)
    if earlier is not None:
        store.remember_deployment(request.ref.rollout_id, request.purpose, earlier, group)
    return earlier


def _create_once(request: DeployRequest, codedeploy: Deployments, *, restore: bool) -> str:
    """CreateDeployment, or the deployment an earlier attempt of this task created.

    CodeDeploy's CreateDeployment takes no idempotency token. An attempt that created the
    deployment and then failed before recording its id (its DynamoDB write throttled past
    its retries, the function timed out) leaves it running unknown; the task's retry finds
    the group busy with it, and takes it by its description instead of waiting for it to end
    and deploying the same revision again.
    """
    application, group = request.app.codedeploy_application, _group(request)
    description = _description(request)
    try:
        return codedeploy.create_deployment(
            application, group, request.revision, description=description, restore=restore
        )
    except DeploymentGroupBusy:
        earlier = codedeploy.find_active(application, group, description)
        if earlier is None:
            raise
        logger.warning(
            "took over the deployment an earlier attempt created",
            extra={"deployment_id": earlier, "purpose": request.purpose},
        )
        return earlier


def _read_end_once(
    deployment_id: str, waited: DeploymentWait, store: RolloutStore, codedeploy: Deployments
) -> DeploymentWait:
    """CodeDeploy's own status, read once now that the token waits.

    A deployment that ended before canaryfleet recorded its id had its state-change event
    ignored (not known as canaryfleet's then), and EventBridge does not deliver a handled event
    again. That happens when CodeDeploy ends a deployment as it starts: stopped because one of
    its group's alarms went into ALARM after the check above (``ALARM_ACTIVE``), or failed at
    once. A deployment that ended just now is read here too, and its event, still on its way,
    finds the outcome recorded. The outcome is recorded once either way
    (``record_deployment_outcome``), so only one of the two ends the wait.
    """
    status, message = codedeploy.status(deployment_id)
    if status not in TERMINAL_DEPLOYMENT_STATUSES:
        return waited
    recorded = store.record_deployment_outcome(deployment_id, status, message)
    if recorded is None:  # its event recorded it after the token was stored, and ends the wait
        return waited
    logger.info(
        "deployment had ended when its token was stored",
        extra={"deployment_id": deployment_id, "status": status},
    )
    return recorded


def on_deployment_event(
    detail: DeploymentStateChange, store: RolloutStore, codedeploy: Deployments, callbacks: Callbacks
) -> str:
    """Record a deployment's end once; end the rollout's wait if it already waits.

    Events of deployments canaryfleet did not create (other teams' applications in the account,
    Auto Scaling's launch deployments) are ignored without a write or a CodeDeploy call.
    """
    status = EVENT_OUTCOMES.get(detail.state)
    if status is None:
        return "ignored"
    if not store.knows_deployment(detail.deployment_id):
        logger.info(
            "event ignored: not a deployment canaryfleet created",
            extra={"deployment_id": detail.deployment_id, "application": detail.application},
        )
        return "ignored: not canaryfleet's"
    # The end's detail; and for a success, whether every instance has the build (a success by
    # the deployment configuration's minimum healthy hosts may leave some without it).
    read, message = codedeploy.status(detail.deployment_id)
    if status == "Succeeded":
        status, message = ("Failed", message) if read == "Failed" else (status, "")
    item = store.record_deployment_outcome(detail.deployment_id, status, message)
    if item is None:
        return "duplicate"
    if not item.task_token:
        return "recorded"  # the token will find the status when it is stored
    _finish(callbacks, item.task_token, detail.deployment_id, status, message)
    return "completed"


def check_after_timeout(
    ref: RolloutRef, purpose: str, store: RolloutStore, codedeploy: Deployments
) -> dict[str, Any]:
    """The wait timed out: look at the real status once, so a lost event cannot hang a rollout."""
    rollout_id = ref.rollout_id
    deployment_id = store.deployment_for(rollout_id, purpose)
    if deployment_id is None:
        raise DeploymentFailed(f"no {purpose} deployment was created for {rollout_id}")
    status, message = codedeploy.status(deployment_id)
    if status == "Succeeded":
        logger.warning("deployment succeeded but its event was lost", extra={"deployment_id": deployment_id})
        return {"deployment_id": deployment_id, "status": status}
    if status in TERMINAL_DEPLOYMENT_STATUSES:
        raise DeploymentFailed(
            f"deployment {deployment_id} {status.lower()}" + (f": {message}" if message else "")
        )
    codedeploy.stop(deployment_id)
    raise DeploymentTimedOut(
        f"deployment {deployment_id} still {status} at the deployment timeout; stopped it"
    )


def stop_unfinished(rollout_id: str, store: RolloutStore, codedeploy: Deployments) -> list[str]:
    """Stop this rollout's deployments that are still running (rollback)."""
    stopped = []
    for record in store.deployments_of(rollout_id):
        status, _ = codedeploy.status(record.deployment_id)
        if status not in TERMINAL_DEPLOYMENT_STATUSES and codedeploy.stop(record.deployment_id):
            stopped.append(record.deployment_id)
    return stopped
