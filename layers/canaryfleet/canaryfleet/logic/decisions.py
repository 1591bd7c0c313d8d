"""People deciding about a running rollout: approve, reject, abort, promote.

One path for every channel (Slack, the approval page, the CLI, the local cloud): the first
decision that reaches a wait ends it; later ones learn what was already decided. Every
decision is an audit entry on the rollout record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import Callbacks
from canaryfleet.errors import NotAwaitingApproval, RolloutNotRunning
from canaryfleet.models.artifact import AppName
from canaryfleet.observability import logger


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    application: AppName
    action: Literal["approve", "reject", "abort", "promote"]
    by: str = Field(
        min_length=1, max_length=200, description="Who decided (email, Slack user, IAM identity)."
    )
    reason: str = Field(default="", max_length=2000)
    channel: Literal["slack", "page", "cli", "local"] = "cli"
    rollout_id: str | None = Field(default=None, description="Act only if this rollout is the running one.")


class DecisionResult(BaseModel):
    rollout_id: str
    action: str
    outcome: Literal["applied", "recorded", "already_decided"]
    detail: str = ""
    approval_id: str | None = Field(
        default=None, description="The approval whose wait this decision ended, if it ended one."
    )


def decide(decision: Decision, store: DynamoRolloutStore, callbacks: Callbacks) -> DecisionResult:
    lock = store.lock(decision.application)
    if lock is None:
        raise RolloutNotRunning(f"{decision.application} has no running rollout")
    rollout_id = str(lock["rollout_id"])
    if decision.rollout_id and decision.rollout_id != rollout_id:
        raise RolloutNotRunning(f"rollout {decision.rollout_id} is not running (running: {rollout_id})")
    record = store.get(decision.application, rollout_id) or {}
    wait_kind, token = record.get("wait_kind"), record.get("wait_token")
    entry = {
        "kind": decision.action,
        "by": decision.by,
        "reason": decision.reason,
        "channel": decision.channel,
        "at": datetime.now(UTC).isoformat(),
    }

    if decision.action in ("approve", "reject"):
        result = _decide_approval(decision, rollout_id, wait_kind, token, entry, store, callbacks)
    else:
        result = _flag(decision, rollout_id, wait_kind, token, entry, store, callbacks)
    if result.outcome == "applied" and wait_kind == "approval" and record.get("approval_id"):
        return result.model_copy(update={"approval_id": str(record["approval_id"])})
    return result


def _decide_approval(
    decision: Decision,
    rollout_id: str,
    wait_kind: object,
    token: object,
    entry: dict[str, str],
    store: DynamoRolloutStore,
    callbacks: Callbacks,
) -> DecisionResult:
    if wait_kind != "approval" or not token:
        raise NotAwaitingApproval(f"rollout {rollout_id} is not waiting for approval (stage: {wait_kind})")
    if decision.action == "approve":
        ended = callbacks.succeed(
            str(token), {"decision": "approve", "by": decision.by, "comment": decision.reason}
        )
    else:
        cause = json.dumps({"by": decision.by, "reason": decision.reason or "no reason given"})
        ended = callbacks.fail(str(token), "Rejected", cause)
    if not ended:
        return DecisionResult(rollout_id=rollout_id, action=decision.action, outcome="already_decided")
    store.clear_wait(decision.application, rollout_id, str(token))
    store.update(decision.application, rollout_id, decision={**entry})
    store.append_audit(decision.application, rollout_id, entry)
    logger.info("approval decided", extra={"action": decision.action, "by": decision.by})
    return DecisionResult(rollout_id=rollout_id, action=decision.action, outcome="applied")


def _flag(
    decision: Decision,
    rollout_id: str,
    wait_kind: object,
    token: object,
    entry: dict[str, str],
    store: DynamoRolloutStore,
    callbacks: Callbacks,
) -> DecisionResult:
    """Abort and promote also hold for waits that begin later (begin_wait reads these flags)."""
    if decision.action == "abort":
        store.update(
            decision.application, rollout_id, abort_requested={"by": decision.by, "reason": decision.reason}
        )
    else:
        store.update(decision.application, rollout_id, promoted_by=decision.by)
    store.append_audit(decision.application, rollout_id, entry)
    if not token:
        return DecisionResult(rollout_id=rollout_id, action=decision.action, outcome="recorded")
    if decision.action == "abort":
        ended = callbacks.fail(
            str(token), "Aborted", f"aborted by {decision.by}: {decision.reason or 'no reason'}"
        )
    elif wait_kind in ("bake", "approval"):
        ended = callbacks.succeed(str(token), {"promoted": True, "by": decision.by, "decision": "approve"})
    else:
        return DecisionResult(
            rollout_id=rollout_id,
            action="promote",
            outcome="recorded",
            detail=f"takes effect after {wait_kind}",
        )
    if ended:
        store.clear_wait(decision.application, rollout_id, str(token))
    return DecisionResult(
        rollout_id=rollout_id, action=decision.action, outcome="applied" if ended else "recorded"
    )
