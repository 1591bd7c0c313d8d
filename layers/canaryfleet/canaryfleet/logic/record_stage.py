"""Record a rollout stage once: the record, the previous stage's duration, the notification.

A stage met at every canary step (``PER_STEP_STAGES``: traffic shifted, verdict, awaiting
approval) comes with its step's index and counts once per step; the others once per rollout.
A verdict also counts once per extension of its step's bake (``extension``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from canaryfleet.errors import parse_cause
from canaryfleet.models.rollout import RecordStageRequest, RecordStageResult, Stage
from canaryfleet.observability import emit_dimensioned, logger, metrics
from canaryfleet.ports.notifier import Notifier
from canaryfleet.ports.rollouts import RolloutRecords

# What the rollback could not put back, as "Record rollout rolled back" passes its Catch's error
# ({"Error": ..., "Cause": ...}; a step that succeeded passes null, or {"returned": true}).
_RESTORES = (
    (
        "traffic_return",
        "the traffic was not returned to live: requests may still reach this build",
    ),
    (
        "live_restore_error",
        "the live group was not restored to the last good revision and may still run this build",
    ),
    (
        "canary_restore_error",
        "the canary group was not restored to the last good revision and may still run this build",
    ),
    ("release_color_error", "the release color was not scaled to zero and still runs this build"),
)


def unrestored(detail: dict[str, Any]) -> list[str]:
    """What a rollback tried to put back as it was before the release and could not, in words."""
    said = []
    for key, what in _RESTORES:
        error = detail.get(key)
        if isinstance(error, dict) and "Error" in error:
            said.append(f"{what} ({_in_words(error)})")
    return said


def _rolled_back(request: RecordStageRequest, store: RolloutRecords) -> dict[str, Any]:
    """The rolled-back stage's detail; a restore that failed is said in its reason, in the
    rollout's record too, since the fleet is then not as it was before the release."""
    detail = dict(request.detail)
    failures = unrestored(detail)
    if not failures:
        return detail
    outcome = detail.get("outcome")
    reason = "; ".join([str(detail.get("reason") or "rolled back"), *failures])
    detail["reason"] = reason
    if outcome in ("rolled_back", "rejected"):
        store.record_outcome(request.ref.application, request.ref.rollout_id, outcome, reason)
    metrics.add_metric(name="RestoresFailed", unit=MetricUnit.Count, value=len(failures))
    logger.error("rollback left the fleet on this build", extra={"reason": reason})
    return detail


def not_recorded(detail: dict[str, Any]) -> str | None:
    """Why a release serving all traffic was not recorded ("Record release"'s caught error, which
    "Record rollout released" passes as ``record_error``), in words; None when it was."""
    error = detail.get("record_error")
    return _in_words(error) if isinstance(error, dict) else None


def _in_words(error: dict[str, Any]) -> str:
    """A Catch's caught error (``Error`` and ``Cause``) as a person reads it."""
    return parse_cause(str(error.get("Cause") or "")) or str(error.get("Error") or "it failed")


def _released(request: RecordStageRequest, store: RolloutRecords) -> dict[str, Any]:
    """The released stage's detail; a release whose record failed says so in its reason, and in
    the rollout's record if that can still be written: the build serves all traffic, while the
    application's last good revision, which a rollback restores, may still be the one before."""
    detail = dict(request.detail)
    why = not_recorded(detail)
    if why is None:
        return detail
    # Counted first: the store that refused the release may refuse the record below too, and
    # the metrics are flushed whatever the handler raises (the alarm pages on-call).
    metrics.add_metric(name="ReleasesNotRecorded", unit=MetricUnit.Count, value=1)
    reason = (
        f"serves all traffic, but recording the release failed ({why}): the application's last "
        "good revision, which a rollback restores, may still be the one released before it"
    )
    detail["reason"] = reason
    logger.error("release not recorded", extra={"reason": reason})
    ref = request.ref
    store.record_outcome(ref.application, ref.rollout_id, "released", reason, ended_at=request.at)
    return detail


def record_stage(request: RecordStageRequest, store: RolloutRecords, notifier: Notifier) -> RecordStageResult:
    ref = request.ref
    # Before the stage: the reason is written again on a retry, never lost to one.
    if request.stage is Stage.ROLLED_BACK:
        detail = _rolled_back(request, store)
    elif request.stage is Stage.RELEASED:
        detail = _released(request, store)
    else:
        detail = request.detail
    transition = store.record_stage(
        ref.application, ref.rollout_id, request.stage, request.at, request.step, extension=request.extension
    )
    if not transition.first_time:
        logger.info("stage already recorded", extra={"stage": request.stage.value, "step": request.step})
        if not transition.notified:
            # Recorded, and its notice not published: the publish failed or the function died
            # after the write, and this is the task's retry. Told now (the notify function tells
            # a notice published twice once), or the rollout's thread and email never hear of it.
            _publish(request, detail, store, notifier, None, None)
        return RecordStageResult(stage=request.stage, first_time=False)

    seconds: float | None = None
    if transition.previous_stage is not None and transition.previous_at is not None:
        seconds = max(0.0, (request.at - transition.previous_at).total_seconds())
        emit_dimensioned(
            "StageDuration", MetricUnit.Seconds, seconds, "stage", transition.previous_stage.value
        )
    if request.stage is Stage.STARTED:
        metrics.add_metric(name="RolloutsStarted", unit=MetricUnit.Count, value=1)

    _publish(request, detail, store, notifier, transition.previous_stage, seconds)
    logger.info(
        "stage recorded",
        extra={"stage": request.stage.value, "step": request.step, "previous_stage_seconds": seconds},
    )
    return RecordStageResult(
        stage=request.stage,
        first_time=True,
        previous_stage=transition.previous_stage,
        previous_stage_seconds=seconds,
    )


def _publish(
    request: RecordStageRequest,
    detail: dict[str, Any],
    store: RolloutRecords,
    notifier: Notifier,
    previous_stage: Stage | None,
    seconds: float | None,
) -> None:
    """Publish the stage's notice, then mark it published on the record.

    A step's notice names its step: the notify function tells each step's once (Notice.key).
    """
    ref = request.ref
    message: dict[str, Any] = {
        "rollout_id": ref.rollout_id,
        "application": ref.application,
        "version": ref.version,
        "stage": request.stage.value,
        "at": request.at.isoformat(),
        "previous_stage": previous_stage.value if previous_stage else None,
        "previous_stage_seconds": seconds,
        "detail": detail,
    }
    if request.step is not None:
        message["step"] = request.step
    if request.extension:
        message["extension"] = request.extension
    notifier.publish(kind=f"rollout.{request.stage.value}", application=ref.application, message=message)
    store.stage_notified(
        ref.application, ref.rollout_id, request.stage, request.step, extension=request.extension
    )
