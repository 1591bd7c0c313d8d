"""People deciding about a running rollout: approve, reject, abort, promote.

One path for every channel (Slack, the approval page, the CLI, the local cloud): the first
decision that reaches a wait ends it; later ones learn what was already decided. Every
decision is an audit entry on the rollout record.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from canaryfleet.errors import NotAwaitingApproval, RolloutNotRunning
from canaryfleet.logic.window import override_window
from canaryfleet.models.decision import Decision, DecisionResult, too_late_to_abort
from canaryfleet.models.rollout_record import AbortRequest, AuditEntry, RolloutRecord, WaitKind
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
    approval_id: str | None  # the approval the rollout waits on, read with the token


@tracer.capture_method
def decide(decision: Decision, store: RolloutStore, callbacks: Callbacks, clock: Clock) -> DecisionResult:
    lock = store.lock(decision.application)
    if lock is None:
        raise RolloutNotRunning(f"{decision.application} has no running rollout")
    rollout_id = lock.rollout_id
    if decision.rollout_id and decision.rollout_id != rollout_id:
        raise RolloutNotRunning(f"rollout {decision.rollout_id} is not running (running: {rollout_id})")
    record = store.get(decision.application, rollout_id)
    if decision.action == "abort" and record is not None and _serves_all_traffic(record, store):
        # Nothing would read it (the steps left record the release and free the lock): said so,
        # and nothing is written, rather than "recorded" for an abort that could not happen.
        detail = too_late_to_abort(record.version)
        logger.info("abort refused: the build serves all traffic", extra={"by": decision.by})
        return DecisionResult(rollout_id=rollout_id, action="abort", outcome="already_decided", detail=detail)
    wait_kind = record.wait_kind if record is not None else None
    token = record.wait_token if record is not None else None
    entry = AuditEntry(
        kind=decision.action,
        by=decision.by,
        reason=decision.reason,
        channel=decision.channel,
        at=clock.now(),
    )

    approval_id = record.approval_id if record is not None else None
    at = _Waiting(decision, rollout_id, wait_kind, token, entry, approval_id)
    if decision.action in ("approve", "reject"):
        result = _decide_approval(at, store, callbacks)
    else:
        result = _flag(at, store, callbacks)
    if decision.override_window and record is not None:
        result = _override(at, record, store, callbacks, clock, result)
    if result.outcome == "applied" and wait_kind == "approval" and record is not None and record.approval_id:
        return result.model_copy(update={"approval_id": record.approval_id})
    return result


def _serves_all_traffic(record: RolloutRecord, store: RolloutStore) -> bool:
    """Whether the build takes every request for good: by the record's own marks, or, in place,
    once its live deployment succeeded (only an in-place rollout deploys for "live"): every
    instance, the canary's and the live group's, runs it, and the steps left (the canary's share
    back to live, the release's record) read no abort. Not once a rollback has begun."""
    if record.serves_all_traffic():
        return True
    if "rollback" in record.weight_log:
        return False
    deployment_id = store.deployment_for(record.rollout_id, "live")
    return deployment_id is not None and store.deployment_outcome(deployment_id) == "Succeeded"


def _decide_approval(at: _Waiting, store: RolloutStore, callbacks: Callbacks) -> DecisionResult:
    decision, rollout_id, wait_kind, token, entry, _ = at
    if wait_kind != "approval" or not token:
        raise NotAwaitingApproval(f"rollout {rollout_id} is not waiting for approval (stage: {wait_kind})")
    if decision.approval_id is not None and decision.approval_id != at.approval_id:
        # The record was read again here: between the gate's check and this read the rollout may
        # have moved on to the next step's approval, whose wait this answer must not end.
        raise NotAwaitingApproval(f"rollout {rollout_id} no longer waits for approval {decision.approval_id}")
    ended = _answer(decision, token, callbacks)
    if not ended:
        # A retried attempt of "Wait for approval" may have taken the wait over with a new token
        # since the record was read (whether it gets one is not documented; logic/approval.py's
        # _retried_approval): the record names it, under the same approval.
        again = store.get(decision.application, rollout_id)
        newer = (
            again.waits_with("approval")
            if again is not None and again.approval_id == at.approval_id
            else None
        )
        if newer and newer != token:
            token = newer
            ended = _answer(decision, token, callbacks)
    if not ended:
        return DecisionResult(rollout_id=rollout_id, action=decision.action, outcome="already_decided")
    store.clear_wait(decision.application, rollout_id, token)
    store.record_decision(decision.application, rollout_id, entry)
    store.append_audit(decision.application, rollout_id, entry)
    logger.info("approval decided", extra={"action": decision.action, "by": decision.by})
    return DecisionResult(rollout_id=rollout_id, action=decision.action, outcome="applied")


def _answer(decision: Decision, token: str, callbacks: Callbacks) -> bool:
    """Send an approval's answer to the wait of ``token``; False if that wait had already ended."""
    if decision.action == "approve":
        return callbacks.succeed(
            token, {"decision": "approve", "by": decision.by, "comment": decision.reason}
        )
    cause = json.dumps({"by": decision.by, "reason": decision.reason or "no reason given"})
    return callbacks.fail(token, "Rejected", cause)


def _override(
    at: _Waiting,
    record: RolloutRecord,
    store: RolloutStore,
    callbacks: Callbacks,
    clock: Clock,
    promoted: DecisionResult,
) -> DecisionResult:
    """A named person releases outside the windows and freezes: who, when and why are kept."""
    decision = at.decision
    store.append_audit(
        decision.application, at.rollout_id, at.entry.model_copy(update={"kind": "window_override"})
    )
    woken = override_window(record, decision.by, decision.reason, store, callbacks, clock)
    if woken and at.token:
        store.clear_wait(decision.application, at.rollout_id, at.token)
    logger.info("window overridden", extra={"by": decision.by, "woke_waiting_rollout": woken})
    if woken:
        return promoted.model_copy(update={"outcome": "applied", "detail": "released from its window wait"})
    return promoted.model_copy(update={"detail": "windows and freezes no longer hold this rollout"})


def _flag(at: _Waiting, store: RolloutStore, callbacks: Callbacks) -> DecisionResult:
    """Abort and promote also hold for waits that begin later (begin_wait reads these flags)."""
    decision, rollout_id, wait_kind, token, entry, _ = at
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
