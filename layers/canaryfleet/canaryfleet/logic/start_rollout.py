"""Turn an artifact upload into exactly one rollout execution."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from pydantic import BaseModel

from canaryfleet.adapters.artifacts import ArtifactStore
from canaryfleet.adapters.rollout_store import RolloutStore
from canaryfleet.adapters.workflow import RolloutWorkflow
from canaryfleet.errors import InvalidArtifactKey
from canaryfleet.models.artifact import ArtifactRef
from canaryfleet.models.rollout import RolloutInput
from canaryfleet.observability import logger, metrics


class StartRolloutResult(BaseModel):
    status: Literal["started", "duplicate", "rejected"]
    rollout_id: str | None = None
    execution_arn: str | None = None
    reason: str | None = None


def start_rollout(
    event: S3EventNotificationEventBridgeModel,
    artifacts: ArtifactStore,
    store: RolloutStore,
    workflow: RolloutWorkflow,
    now: datetime | None = None,
) -> StartRolloutResult:
    """Record the rollout and start its execution; duplicates of the event change nothing.

    An off-layout key is a rejection, not an error: retrying the event cannot fix it.
    """
    obj = event.detail.object
    try:
        artifact = ArtifactRef.from_object(
            bucket=event.detail.bucket.name,
            key=obj.key,
            version_id=obj.version_id,
            etag=obj.etag,
            size=int(obj.size) if obj.size is not None else None,
        )
    except InvalidArtifactKey as exc:
        logger.warning("artifact rejected", extra={"key": obj.key, "reason": str(exc)})
        metrics.add_metric(name="ArtifactsRejected", unit=MetricUnit.Count, value=1)
        return StartRolloutResult(status="rejected", reason=str(exc))

    # CI records where the build came from as object metadata (`canaryfleet publish` does).
    metadata = artifacts.metadata(artifact)
    rollout = RolloutInput(
        rollout_id=artifact.rollout_id,
        application=artifact.application,
        version=artifact.version,
        artifact=artifact,
        commit=metadata.get("commit") or None,
        build_url=metadata.get("build-url") or None,
    )
    logger.append_keys(rollout_id=rollout.rollout_id, application=rollout.application)
    store.create(rollout, received_at=now or datetime.now(UTC))
    execution_arn, started = workflow.start(rollout)
    if not started:
        logger.info("duplicate artifact event; rollout already started")
        metrics.add_metric(name="DuplicateArtifactEvents", unit=MetricUnit.Count, value=1)
        return StartRolloutResult(
            status="duplicate", rollout_id=rollout.rollout_id, execution_arn=execution_arn
        )
    metrics.add_metric(name="ArtifactsAccepted", unit=MetricUnit.Count, value=1)
    logger.info("rollout started", extra={"execution_arn": execution_arn, "version": rollout.version})
    return StartRolloutResult(status="started", rollout_id=rollout.rollout_id, execution_arn=execution_arn)
