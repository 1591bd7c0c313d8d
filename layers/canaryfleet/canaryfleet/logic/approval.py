"""Asking people to approve: the wait's token is stored, never shown; the request is notified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from canaryfleet.adapters.notifier import Notifier
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import Callbacks
from canaryfleet.logic.canary import begin_wait
from canaryfleet.logic.record_stage import record_stage
from canaryfleet.models.rollout import RecordStageRequest, Stage
from canaryfleet.models.tasks import ApprovalTask


def request_approval(
    task: ApprovalTask, store: DynamoRolloutStore, notifier: Notifier, callbacks: Callbacks
) -> str:
    """Store the approval wait and notify it; "aborted" or "promoted" if decided beforehand."""
    app, rollout_id, version, token = task.app, task.rollout_id, task.version, task.token
    timeout_seconds = task.timeout_seconds
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=timeout_seconds)
    outcome = begin_wait(
        "approval",
        app.application,
        rollout_id,
        token,
        store,
        callbacks,
        approval_expires_at=expires.isoformat(),
    )
    if outcome != "waiting":
        return outcome
    record = store.get(app.application, rollout_id) or {}
    record_stage(
        RecordStageRequest(
            rollout_id=rollout_id,
            application=app.application,
            version=version,
            stage=Stage.AWAITING_APPROVAL,
            at=now,
            detail={
                "verdict": record.get("verdict"),
                "expires_at": expires.isoformat(),
                "approvers": app.approvers.model_dump(mode="json"),
            },
        ),
        store,
        notifier,
    )
    return "waiting"
