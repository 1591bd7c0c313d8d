"""Record a rollout stage once: the record, the previous stage's duration, the notification."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from canaryfleet.models.rollout import RecordStageRequest, RecordStageResult, Stage
from canaryfleet.observability import emit_dimensioned, logger, metrics
from canaryfleet.ports.notifier import Notifier
from canaryfleet.ports.rollouts import RolloutRecords


def record_stage(request: RecordStageRequest, store: RolloutRecords, notifier: Notifier) -> RecordStageResult:
    ref = request.ref
    transition = store.record_stage(ref.application, ref.rollout_id, request.stage, request.at)
    if not transition.first_time:
        logger.info("stage already recorded", extra={"stage": request.stage.value})
        return RecordStageResult(stage=request.stage, first_time=False)

    seconds: float | None = None
    if transition.previous_stage is not None and transition.previous_at is not None:
        seconds = max(0.0, (request.at - transition.previous_at).total_seconds())
        emit_dimensioned(
            "StageDuration", MetricUnit.Seconds, seconds, "stage", transition.previous_stage.value
        )
    if request.stage is Stage.STARTED:
        metrics.add_metric(name="RolloutsStarted", unit=MetricUnit.Count, value=1)

    notifier.publish(
        kind=f"rollout.{request.stage.value}",
        application=ref.application,
        message={
            "rollout_id": ref.rollout_id,
            "application": ref.application,
            "version": ref.version,
            "stage": request.stage.value,
            "at": request.at.isoformat(),
            "previous_stage": transition.previous_stage.value if transition.previous_stage else None,
            "previous_stage_seconds": seconds,
            "detail": request.detail,
        },
    )
    logger.info("stage recorded", extra={"stage": request.stage.value, "previous_stage_seconds": seconds})
    return RecordStageResult(
        stage=request.stage,
        first_time=True,
        previous_stage=transition.previous_stage,
        previous_stage_seconds=seconds,
    )
