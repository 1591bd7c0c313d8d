"""The approval gate: people's answers from the approval page and Slack, checked, then decided.

Every answer goes through the same checks before it reaches the one decision path
(:func:`canaryfleet.logic.decisions.decide`): the link's signature or Slack's user, the
approver list taken when the approval was requested, the expiry, and a conditional claim of
the approval, so that the first decision wins and later ones only learn what was decided.
Nothing a GET does writes anything.

A rollout can also stop waiting without the gate (the CLI decides, on-call aborts or
promotes, the wait times out). The rollout record says so; the gate reads it to show an
approval as it really stands, and records it when an answer or the expiry comes.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from canaryfleet.errors import ApprovalNotExpiredYet, NotAwaitingApproval, RolloutNotRunning
from canaryfleet.logic import approval_messages
from canaryfleet.logic.decisions import decide
from canaryfleet.logic.links import LinkSigner
from canaryfleet.models.approval import (
    Action,
    Approval,
    ApprovalDecision,
    ApprovalLink,
    ApprovalStatus,
    Channel,
    SlackUser,
    TimelineViewLink,
)
from canaryfleet.models.decision import Decision
from canaryfleet.models.rollout_record import AuditEntry, RolloutRecord
from canaryfleet.models.text import slack_escape
from canaryfleet.observability import logger
from canaryfleet.ports.approvals import ApprovalStore, SlackChannel
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.rollouts import RolloutStore
from canaryfleet.ports.workflow import Callbacks

# Longer than any function runs: a claim this old was left by a run that died mid-decision.
CLAIM_STALE_AFTER = timedelta(seconds=120)
# Twice Slack's five-minute window, and a minute for clocks: past it a replay fails the age check.
SLACK_REQUEST_KEPT_FOR = timedelta(minutes=11)


class Outcome(StrEnum):
    """What the gate made of an answer (the page and Slack each say it in their own way)."""

    WAITING = "waiting"  # shown: nobody decided yet
    DECIDED = "decided"  # this answer ended the wait
    ALREADY_DECIDED = "already_decided"  # another answer came first, or the approval ended
    EXPIRED = "expired"
    NOT_WAITING = "not_waiting"  # the rollout no longer waits for this approval
    FORBIDDEN = "forbidden"  # a bad signature, or someone who is not an approver
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class GateResult:
    outcome: Outcome
    approval: Approval | None = None

    @property
    def summary(self) -> str:
        if self.approval is None:
            return "This approval does not exist." if self.outcome is Outcome.NOT_FOUND else "Not allowed."
        return approval_messages.outcome(self.approval)


@dataclass(frozen=True)
class _Settled:
    """How an approval ended outside the gate, as the rollout record tells it."""

    status: ApprovalStatus
    reason: str = ""
    decision: ApprovalDecision | None = None


def _outcome_of(status: ApprovalStatus) -> Outcome:
    """An approval that had already ended, as an answer to it learns."""
    if status is ApprovalStatus.EXPIRED:
        return Outcome.EXPIRED
    if status is ApprovalStatus.CLOSED:
        return Outcome.NOT_WAITING
    return Outcome.ALREADY_DECIDED


class ApprovalGate:
    def __init__(
        self,
        approvals: ApprovalStore,
        rollouts: RolloutStore,
        callbacks: Callbacks,
        slack: SlackChannel | None,
        clock: Clock,
    ) -> None:
        self._approvals = approvals
        self._rollouts = rollouts
        self._callbacks = callbacks
        self._slack = slack
        self._clock = clock

    # -- the approval page -------------------------------------------------------------
    def _approval_for_link(self, link: ApprovalLink, signer: LinkSigner) -> GateResult:
        if not signer.verify(link):
            logger.warning("approval link with a bad signature", extra={"approval_id": link.approval_id})
            return GateResult(Outcome.FORBIDDEN)
        approval = self._approvals.get(link.approval_id)
        if approval is None:
            return GateResult(Outcome.NOT_FOUND)
        if not approval.allows_email(link.approver):
            logger.warning(
                "approval link of someone not an approver", extra={"approval_id": link.approval_id}
            )
            return GateResult(Outcome.FORBIDDEN, approval)
        return GateResult(Outcome.WAITING, approval)

    def show(self, link: ApprovalLink, signer: LinkSigner) -> GateResult:
        """What a link's approval looks like now. Reads only: a GET changes nothing."""
        checked = self._approval_for_link(link, signer)
        approval = checked.approval
        if checked.outcome is not Outcome.WAITING or approval is None:
            return checked
        if approval.is_final or (approval.status is ApprovalStatus.DECIDING and not self._stale(approval)):
            return GateResult(_outcome_of(approval.status), approval)
        # A claim left by a decision that died midway is taken over by the next answer
        # (``_decide``): the page shows the form again, not "being decided" until the expiry.
        settled = self._settled_elsewhere(approval)
        if settled is not None:
            shown = approval.model_copy(
                update={
                    "status": settled.status,
                    "closed_reason": settled.reason,
                    "decision": settled.decision,
                }
            )
            return GateResult(_outcome_of(settled.status), shown)
        if self._link_expired(link, approval):
            return GateResult(Outcome.EXPIRED, approval)
        return GateResult(Outcome.WAITING, approval)

    def rollout_for_link(
        self, link: TimelineViewLink, signer: LinkSigner
    ) -> tuple[GateResult, RolloutRecord | None]:
        """The rollout a valid, unexpired read-only view link's approval is about (its timeline).
        Reads only; an approver's link is never a timeline's (it decides, and links get forwarded)."""
        if not signer.verify(link):
            logger.warning("timeline link with a bad signature", extra={"approval_id": link.approval_id})
            return GateResult(Outcome.FORBIDDEN), None
        approval = self._approvals.get(link.approval_id)
        if approval is None:
            return GateResult(Outcome.NOT_FOUND), None
        if link.expires <= int(self._clock.now().timestamp()):
            return GateResult(Outcome.EXPIRED, approval), None
        record = self._rollouts.get(approval.application, approval.rollout_id)
        return GateResult(Outcome.WAITING, approval), record

    def decide_by_link(
        self, link: ApprovalLink, action: Action, comment: str, signer: LinkSigner
    ) -> GateResult:
        checked = self._approval_for_link(link, signer)
        approval = checked.approval
        if checked.outcome is not Outcome.WAITING or approval is None:
            return checked
        if self._link_expired(link, approval) and not approval.is_final:
            return self._close_late(approval)
        return self._decide(approval, action, link.approver, "page", comment)

    def _link_expired(self, link: ApprovalLink, approval: Approval) -> bool:
        now = self._clock.now()
        return approval.expired_at(now) or now.timestamp() >= link.expires

    # -- Slack -------------------------------------------------------------------------
    def slack_user_allowed(self, approval: Approval, user: SlackUser) -> tuple[bool, str | None]:
        """Whether the Slack user is an approver (by Slack id, or by email); their email if read."""
        if user.id in approval.approvers.slack_user_ids:
            return True, None
        if not approval.approvers.emails or self._slack is None:
            return False, None
        email = self._slack.email_of(user.id)
        return (email is not None and approval.allows_email(email)), email

    def first_slack_use(self, signature: str) -> bool:
        """Whether this signed Slack request is seen for the first time (a replay is not).

        Slack's signature only bounds a request's age, so a captured request could be sent
        again within its five minutes: each one is recorded before it has any effect, by the
        SHA-256 of its signature (the signature itself is not kept), until it can no longer
        pass the age check (its timestamp may be up to five minutes either side of now).
        """
        digest = hashlib.sha256(signature.encode()).hexdigest()
        return self._approvals.first_use(digest, self._clock.now() + SLACK_REQUEST_KEPT_FOR)

    def decide_by_slack(
        self, approval_id: str, user: SlackUser, action: Action, response_url: str | None
    ) -> GateResult:
        approval = self._approvals.get(approval_id)
        if approval is None:
            result = GateResult(Outcome.NOT_FOUND)
        else:
            allowed, email = self.slack_user_allowed(approval, user)
            if not allowed:
                logger.warning("slack user is not an approver", extra={"approval_id": approval_id})
                result = GateResult(Outcome.FORBIDDEN, approval)
            elif approval.expired_at(self._clock.now()) and not approval.is_final:
                result = self._close_late(approval)
            else:
                result = self._decide(approval, action, user.label(email), "slack", "")
        self._answer_in_slack(result, response_url)
        return result

    def _answer_in_slack(self, result: GateResult, response_url: str | None) -> None:
        """The message shows the outcome to everyone; a refusal is told to the user alone."""
        if self._slack is None or response_url is None:
            return
        approval = result.approval
        if approval is not None and approval.is_final and result.outcome is not Outcome.FORBIDDEN:
            if approval.slack_message is None:  # no bot token: the response URL replaces the message
                text, blocks = approval_messages.slack_outcome(approval)
                self._slack.respond(response_url, text, blocks, replace=True)
            if result.outcome in (Outcome.DECIDED, Outcome.EXPIRED):
                return
        refusals = {
            Outcome.FORBIDDEN: "You are not an approver of this rollout; nothing was changed.",
            Outcome.NOT_FOUND: "This approval no longer exists.",
        }
        said = refusals.get(result.outcome) or slack_escape(result.summary)  # the summary quotes a comment
        self._slack.respond(response_url, said, None, replace=False)

    # -- deciding ----------------------------------------------------------------------
    def _rollout_record(self, approval: Approval) -> RolloutRecord | None:
        return self._rollouts.get(approval.application, approval.rollout_id)

    @staticmethod
    def _waits_for(approval: Approval, record: RolloutRecord | None) -> bool:
        return bool(
            record is not None
            and record.waits_with("approval")
            and record.approval_id == approval.approval_id
        )

    def _settled_elsewhere(self, approval: Approval, record: RolloutRecord | None = None) -> _Settled | None:
        """None while the rollout waits for this approval; else how it stopped waiting."""
        record = self._rollout_record(approval) if record is None else record
        if self._waits_for(approval, record):
            return None
        if record is None:
            return _Settled(ApprovalStatus.CLOSED, "the rollout no longer waits for this approval")
        decided = record.decision
        if (
            record.approval_id == approval.approval_id
            and decided is not None
            # Two comparisons, not "in": mypy narrows the kind to the decision's action only so.
            and (decided.kind == "approve" or decided.kind == "reject")  # noqa: PLR1714
            and decided.at >= approval.created_at
        ):
            decision = ApprovalDecision(
                action=decided.kind,
                by=decided.by or "someone",
                channel=decided.channel or "local",
                comment=decided.reason or "",
                at=decided.at,
            )
            status = ApprovalStatus.APPROVED if decision.action == "approve" else ApprovalStatus.REJECTED
            return _Settled(status, decision=decision)
        return _Settled(ApprovalStatus.CLOSED, _why_it_stopped_waiting(approval, record))

    def _decide(
        self, approval: Approval, action: Action, by: str, channel: Channel, comment: str
    ) -> GateResult:
        if approval.is_final or (approval.status is ApprovalStatus.DECIDING and not self._stale(approval)):
            return GateResult(_outcome_of(approval.status), approval)
        now = self._clock.now()
        claim_id = secrets.token_hex(8)
        decision = ApprovalDecision(action=action, by=by, channel=channel, comment=comment, at=now)
        if not self._approvals.claim(approval.approval_id, decision, claim_id, now - CLAIM_STALE_AFTER):
            return GateResult(Outcome.ALREADY_DECIDED, self._approvals.get(approval.approval_id) or approval)
        try:
            settled = self._end_wait(approval, decision)
        except Exception:
            self._approvals.release(approval.approval_id, claim_id)
            raise
        self._approvals.finish(
            approval.approval_id, claim_id, settled.status, settled.reason, settled.decision
        )
        if settled.status is ApprovalStatus.EXPIRED:
            self._audit_expiry(approval, now)
        final = self._approvals.get(approval.approval_id) or approval
        self._update_slack(final)
        logger.info(
            "approval answered",
            extra={"approval_id": approval.approval_id, "channel": channel, "status": settled.status.value},
        )
        if settled.decision is None and settled.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED):
            return GateResult(Outcome.DECIDED, final)
        return GateResult(_outcome_of(settled.status), final)

    def _end_wait(self, approval: Approval, decision: ApprovalDecision) -> _Settled:
        """End the rollout's wait through the one decision path; how the approval ends."""
        record = self._rollout_record(approval)
        settled = self._settled_elsewhere(approval, record)
        if settled is not None:
            return settled
        request = Decision(
            application=approval.application,
            action=decision.action,
            by=decision.by,
            reason=decision.comment,
            channel=decision.channel,
            rollout_id=approval.rollout_id,
            approval_id=approval.approval_id,
        )
        try:
            result = decide(request, self._rollouts, self._callbacks, self._clock)
        except (NotAwaitingApproval, RolloutNotRunning):
            return self._settled_elsewhere(approval) or _Settled(ApprovalStatus.CLOSED, "the rollout ended")
        if result.outcome != "applied":
            # Step Functions closed the wait (TaskTimedOut: "expired or ... already closed"),
            # yet nobody ended it here. An abort, a promote, a canary alarm or a stop outside
            # canaryfleet closes the task before its record says the wait ended: told so, as
            # they are once the record catches up. Nothing explains it: it timed out.
            record = self._rollout_record(approval)
            settled = self._settled_elsewhere(approval, record)
            if settled is not None:
                return settled
            why = _what_stopped_the_wait(approval, record) if record is not None else None
            return _Settled(ApprovalStatus.CLOSED, why) if why else _Settled(ApprovalStatus.EXPIRED)
        return _Settled(ApprovalStatus.APPROVED if decision.action == "approve" else ApprovalStatus.REJECTED)

    def _stale(self, approval: Approval) -> bool:
        claimed = approval.claimed_at
        return claimed is not None and claimed < self._clock.now() - CLAIM_STALE_AFTER

    # -- expiry ------------------------------------------------------------------------
    def _close_late(self, approval: Approval) -> GateResult:
        """An answer after the expiry: the approval ends as it really did (usually: expired)."""
        final = self._settle(approval) or approval
        return GateResult(_outcome_of(final.status), final)

    def _settle(self, approval: Approval, settled: _Settled | None = None) -> Approval | None:
        """Record how an unanswered approval ended (``settled``, else as the rollout record
        says: decided elsewhere, or expired); the approval as it stands afterwards."""
        now = self._clock.now()
        settled = settled or self._settled_elsewhere(approval) or _Settled(ApprovalStatus.EXPIRED)
        if not self._approvals.settle(
            approval.approval_id,
            settled.status,
            now,
            now - CLAIM_STALE_AFTER,
            decision=settled.decision,
            reason=settled.reason,
        ):
            return self._approvals.get(approval.approval_id)  # settled by someone else first
        if settled.status is ApprovalStatus.EXPIRED:
            self._audit_expiry(approval, now)
        final = self._approvals.get(approval.approval_id)
        if final is not None:
            self._update_slack(final)
        logger.info(
            "approval settled", extra={"approval_id": approval.approval_id, "status": settled.status.value}
        )
        return final

    def _audit_expiry(self, approval: Approval, at: datetime) -> None:
        entry = AuditEntry(kind="approval_expired", approval_id=approval.approval_id, at=at)
        self._rollouts.append_audit(approval.application, approval.rollout_id, entry)

    def settle(self, approval_id: str) -> ApprovalStatus | None:
        """The rollout stopped waiting for this approval without the gate (the CLI decided, or
        someone aborted or promoted): record how, and say so in its Slack message, at once
        rather than at its expiry. Does nothing while the approval is still waited for or
        being decided through the gate."""
        approval = self._approvals.get(approval_id)
        if approval is None:
            return None
        if approval.is_final or (approval.status is ApprovalStatus.DECIDING and not self._stale(approval)):
            return approval.status
        settled = self._settled_elsewhere(approval)
        if settled is None:
            return approval.status
        final = self._settle(approval, settled)
        return final.status if final else None

    def expire(self, approval_id: str) -> ApprovalStatus | None:
        """The expiry state machine's task: record how an unanswered approval ended, once."""
        approval = self._approvals.get(approval_id)
        if approval is None:
            return None
        if approval.is_final:
            return approval.status
        if approval.status is ApprovalStatus.DECIDING and not self._stale(approval):
            raise ApprovalNotExpiredYet(f"approval {approval_id} is being decided")
        if not approval.expired_at(self._clock.now()) and self._settled_elsewhere(approval) is None:
            raise ApprovalNotExpiredYet(
                f"approval {approval_id} expires at {approval.expires_at.isoformat()}"
            )
        final = self._settle(approval)
        return final.status if final else None

    def _update_slack(self, approval: Approval) -> None:
        if self._slack is None or approval.slack_message is None:
            return
        text, blocks = approval_messages.slack_outcome(approval)
        self._slack.update(approval.slack_message, text, blocks)


def _why_it_stopped_waiting(approval: Approval, record: RolloutRecord) -> str:
    """Why the rollout no longer waits for an approval nobody decided through the gate."""
    return _what_stopped_the_wait(approval, record) or "the rollout no longer waits for this approval"


def _what_stopped_the_wait(approval: Approval, record: RolloutRecord) -> str | None:
    """What the record says ended the approval's wait other than the gate: an abort, a promote,
    a stop outside canaryfleet or a canary alarm since the approval was asked; None if nothing."""
    if record.abort_requested is not None:
        return f"the rollout was aborted by {record.abort_requested.by}"
    if record.promoted_by:
        return f"the rollout was promoted by {record.promoted_by}"
    if record.stopped_because:  # its execution was stopped in Step Functions (logic/recovery.py)
        return f"{record.stopped_because}; the rollout rolls back"
    alarm = next(
        (
            entry.alarm
            for entry in reversed(record.audit)
            if entry.kind == "alarm" and entry.side == "canary" and entry.at >= approval.created_at
        ),
        None,
    )
    if alarm is not None:
        return f"canary alarm {alarm} went to ALARM; the rollout rolls back"
    return None


def settle_ended_approval(gate: Callable[[], ApprovalGate], approval_id: str) -> None:
    """After a decision made outside the gate ended an approval's wait: settle it now.

    The decision already stands, so a failure here (Slack, Secrets Manager, DynamoDB) is only
    logged: the approval's expiry run settles it then.
    """
    try:
        gate().settle(approval_id)
    except Exception:
        logger.exception("approval not settled now; its expiry will", extra={"approval_id": approval_id})
