"""People deciding about a running rollout: approve, reject, abort, promote.

One path for every channel (Slack, the approval page, the CLI, the local cloud): the first
decision that reaches a wait ends it; later ones learn what was already decided. Every
decision is an audit entry on the rollout record.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from canaryfleet.errors import NotAwaitingApproval, RolloutNotRunning
from canaryfleet.models.decision import Decision, DecisionResult
from canaryfleet.models.rollout_record import AbortRequest, AuditEntry, WaitKind
from canaryfleet.observability import logger, tracer
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.rollouts import RolloutStore
from canaryfleet.ports.workflow import Callbacks


class _Waiting(NamedTuple):
    """A decision and the running rollout's wait it meets."""

    decision: Decision
    rollout_id: str
    wait_kind: WaitKind | None
    token: str | None
    entry: AuditEntry


@tracer.capture_method
def decide(decision: Decision, store: RolloutStore, callbacks: Callbacks, clock: Clock) -> DecisionResult:
    lock = store.lock(decision.application)
    if lock is None:
        raise RolloutNotRunning(f"{decision.application} has no running rollout")
    rollout_id = lock.rollout_id
    if decision.rollout_id and decision.rollout_id != rollout_id:
        raise RolloutNotRunning(f"rollout {decision.rollout_id} is not running (running: {rollout_id})")
    record = store.get(decision.application, rollout_id)
    wait_kind = record.wait_kind if record is not None else None
    token = record.wait_token if record is not None else None
    entry = AuditEntry(
        kind=decision.action,
        by=decision.by,
        reason=decision.reason,
        channel=decision.channel,
        at=clock.now(),
    )

    at = _Waiting(decision, rollout_id, wait_kind, token, entry)
    if decision.action in ("approve", "reject"):
        result = _decide_approval(at, store, callbacks)
    else:
        result = _flag(at, store, callbacks)
    if result.outcome == "applied" and wait_kind == "approval" and record is not None and record.approval_id:
        return result.model_copy(update={"approval_id": record.approval_id})
    return result


def _decide_approval(at: _Waiting, store: RolloutStore, callbacks: Callbacks) -> DecisionResult:
    decision, rollout_id, wait_kind, token, entry = at
    if wait_kind != "approval" or not token:
        raise NotAwaitingApproval(f"rollout {rollout_id} is not waiting for approval (stage: {wait_kind})")
    if decision.action == "approve":
        ended = callbacks.succeed(
            token, {"decision": "approve", "by": decision.by, "comment": decision.reason}
        )
    else:
        cause = json.dumps({"by": decision.by, "reason": decision.reason or "no reason given"})
        ended = callbacks.fail(token, "Rejected", cause)
    if not ended:
        return DecisionResult(rollout_id=rollout_id, action=decision.action, outcome="already_decided")
    store.clear_wait(decision.application, rollout_id, token)
    store.record_decision(decision.application, rollout_id, entry)
    store.append_audit(decision.application, rollout_id, entry)
    logger.info("approval decided", extra={"action": decision.action, "by": decision.by})
    return DecisionResult(rollout_id=rollout_id, action=decision.action, outcome="applied")


def _flag(at: _Waiting, store: RolloutStore, callbacks: Callbacks) -> DecisionResult:
    """Abort and promote also hold for waits that begin later (begin_wait reads these flags)."""
    decision, rollout_id, wait_kind, token, entry = at
    if decision.action == "abort":
        store.request_abort(
            decision.application, rollout_id, AbortRequest(by=decision.by, reason=decision.reason)
        )
    else:
        store.request_promotion(decision.application, rollout_id, decision.by)
    store.append_audit(decision.application, rollout_id, entry)
    if not token:
        return DecisionResult(rollout_id=rollout_id, action=decision.action, outcome="recorded")
    if decision.action == "abort":
        ended = callbacks.fail(
            token, "Aborted", f"aborted by {decision.by}: {decision.reason or 'no reason'}"
        )
    elif wait_kind in ("bake", "approval"):
        ended = callbacks.succeed(token, {"promoted": True, "by": decision.by, "decision": "approve"})
    else:
        return DecisionResult(
            rollout_id=rollout_id,
            action="promote",
            outcome="recorded",
            detail=f"takes effect after {wait_kind}",
        )
    if ended:
        store.clear_wait(decision.application, rollout_id, token)
    return DecisionResult(
        rollout_id=rollout_id, action=decision.action, outcome="applied" if ended else "recorded"
    )
