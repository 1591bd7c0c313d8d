"""The approval gate: people's answers from the approval page and Slack, checked, then decided.

Every answer goes through the same checks before it reaches the one decision path
(:func:`canaryfleet.logic.decisions.decide`): the link's signature or Slack's user, the
approver list taken when the approval was requested, the expiry, and a conditional claim of
the approval, so that the first decision wins and later ones only learn what was decided.
Nothing a GET does writes anything.

A rollout can also stop waiting without the gate (the CLI decides, on-call aborts or
promotes, the wait times out). The rollout record says so; the gate reads it to show an
approval as it really stands, and records it when an answer or the expiry comes.

Once an answer's callback ended the wait, the approval ends as that answer, by that person, in
the approval and in the rollout record's decision and audit: its claim is never given back.
Writes that fail after the callback are made again by the next answer (idempotently: one audit
entry), and the approval is finished first, so nobody is offered the form again meanwhile.

Step Functions answering that the wait was already closed (TaskTimedOut: "The task token has
either expired or the task associated with the token has already been closed", the API
reference's SendTaskSuccess) is not taken for an expiry: it is also what botocore's retry of a
SendTaskSuccess that took effect, its response lost, is told. The gate finds out instead, from
the execution whose ARN the rollout record holds: its history (GetExecutionHistory, newest first,
back to when the approval was asked) keeps each callback task's end with what SendTaskSuccess
sent (TaskSucceeded's output) or SendTaskFailure's error and cause (TaskFailed), which name the
decision and who made it; DescribeExecution says whether the execution still runs. The history
is used, not the record alone, because the record is written after the callback, by whoever
sent it, and may not be written at all; moto keeps the same events. So: an end naming this
answer (or a dead answer's claim) is that decision; else the record's explanations (a decision
elsewhere, an abort, a promote, a stop, a canary alarm); else an execution that ended closes
it; a history without this answer in it means something else ended the wait, and the approval
waits for the record (or its expiry) to say what. It is never recorded expired before its
expiry: a timeout cannot come sooner.

One closed wait is not over: "Wait for approval"'s request function asked, then its invocation
failed (a timeout after its effects), and the state's Retry has yet to attempt it again. The
history's last callback end is then that attempt's failure, with an error the Retry names. The
answer is kept, its claim held, and the retried request ends its wait with it
(``apply_kept_answer``), whatever token Step Functions gives the retry.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

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
from canaryfleet.ports.workflow import CallbackEnd, CallbackHistory, Callbacks

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
    # The decision ended the wait, and the rollout record may not say so yet: write what it lacks.
    unrecorded: bool = False
    # Something other than this answer ended the wait, not recorded yet: the approval stays open.
    left_open: bool = False
    # How the wait ended is not known yet, or it is being retried: the claim stays, shown as being
    # decided, until a retried request applies it or it goes stale and the next answer (or the
    # expiry) finds out.
    claim_kept: bool = False


@dataclass(frozen=True)
class _Found:
    """What the execution tells of a closed wait (``ApprovalGate._ask``)."""

    status: str  # DescribeExecution's; "" if there is no such execution
    complete: bool  # its history was read back to when the approval was asked
    decided_by: ApprovalDecision | None  # the decision asked about whose callback ended the wait
    # The running execution's last callback task failed with an error "Wait for approval" tries
    # again: its Retry has yet to attempt the wait again (``_already_closed``).
    retrying: bool = False


# The errors the Retry of "Wait for approval" tries again (statemachines/rollout.asl.yaml, its
# lambda-transient and aws-transient policies; tests/unit/test_approval_retry_gap.py holds the two
# together). Some come after the request function asked (a timeout, Lambda.ServiceException).
RETRIED_BY_THE_WAIT = frozenset(
    {
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Lambda.Unknown",
        "Sandbox.Timedout",
        "TransientAwsError",
    }
)


# DescribeExecution's statuses of an ended execution, as a closed approval says them.
_EXECUTION_ENDED = {
    "ABORTED": "the rollout's execution was stopped in Step Functions",
    "FAILED": "the rollout's execution failed",
    "TIMED_OUT": "the rollout's execution timed out",
    "SUCCEEDED": "the rollout's execution ended",
}


class _Watched:
    """The callbacks, and what they answered: None until one is sent; False once sent, until
    Step Functions says it ended the wait (a request that raised may have taken effect)."""

    def __init__(self, callbacks: Callbacks) -> None:
        self._callbacks = callbacks
        self.answered: bool | None = None

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        self.answered = False
        self.answered = self._callbacks.succeed(token, output)
        return self.answered

    def fail(self, token: str, error: str, cause: str) -> bool:
        self.answered = False
        self.answered = self._callbacks.fail(token, error, cause)
        return self.answered


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
        history: CallbackHistory | None = None,
    ) -> None:
        self._approvals = approvals
        self._rollouts = rollouts
        self._callbacks = callbacks
        self._slack = slack
        self._clock = clock
        self._history = history  # None: Step Functions cannot be asked how a closed wait ended

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
        if approval.is_final:
            self._complete_record(approval)  # what a failed write left out of the rollout record
            return GateResult(_outcome_of(approval.status), approval)
        if approval.status is ApprovalStatus.DECIDING and not self._stale(approval):
            return GateResult(_outcome_of(approval.status), approval)
        now = self._clock.now()
        claim_id = secrets.token_hex(8)
        decision = ApprovalDecision(action=action, by=by, channel=channel, comment=comment, at=now)
        # A stale claim's answer may have ended the wait before its run died: it is asked about too.
        earlier = approval.decision if approval.status is ApprovalStatus.DECIDING else None
        if not self._approvals.claim(approval.approval_id, decision, claim_id, now - CLAIM_STALE_AFTER):
            return GateResult(Outcome.ALREADY_DECIDED, self._approvals.get(approval.approval_id) or approval)
        callbacks = _Watched(self._callbacks)
        try:
            settled = self._end_wait(approval, decision, earlier, callbacks)
        except Exception:
            if callbacks.answered is None:  # nothing reached Step Functions: the approval is open again
                self._approvals.release(approval.approval_id, claim_id)
                raise
            if not callbacks.answered:
                raise  # it may have ended the wait: the claim stays until that is found out
            # The wait ended with this answer: so does the approval, whatever failed after it.
            logger.warning(
                "approval decided, its rollout record not written; writing it again",
                extra={"approval_id": approval.approval_id},
            )
            settled = _Settled(_status_of(decision), unrecorded=True)
        if settled.claim_kept or settled.left_open:
            return self._left_unsettled(approval, claim_id, settled)
        self._approvals.finish(
            approval.approval_id, claim_id, settled.status, settled.reason, settled.decision
        )
        final = self._approvals.get(approval.approval_id) or approval
        self._update_slack(final)
        if settled.unrecorded:
            self._complete_record(final)
        if settled.status is ApprovalStatus.EXPIRED:
            self._audit_expiry(approval, now)
        logger.info(
            "approval answered",
            extra={"approval_id": approval.approval_id, "channel": channel, "status": settled.status.value},
        )
        if settled.decision is None and settled.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED):
            return GateResult(Outcome.DECIDED, final)
        return GateResult(_outcome_of(settled.status), final)

    def _left_unsettled(self, approval: Approval, claim_id: str, settled: _Settled) -> GateResult:
        """An answer that did not end the wait, the approval left as it was: its claim kept while
        it may have ended it after all, else given back (something else ended it)."""
        if settled.claim_kept:
            return GateResult(Outcome.ALREADY_DECIDED, self._approvals.get(approval.approval_id) or approval)
        self._approvals.release(approval.approval_id, claim_id)
        shown = approval.model_copy(
            update={"status": ApprovalStatus.CLOSED, "closed_reason": settled.reason, "decision": None}
        )
        return GateResult(Outcome.NOT_WAITING, shown)

    def _end_wait(
        self,
        approval: Approval,
        decision: ApprovalDecision,
        earlier: ApprovalDecision | None,
        callbacks: Callbacks,
    ) -> _Settled:
        """End the rollout's wait through the one decision path; how the approval ends."""
        record = self._rollout_record(approval)
        settled = self._settled_elsewhere(approval, record)
        if settled is not None:
            if earlier is not None and settled.decision is None:
                # The record moved on and names no decision: the dead answer may have ended the wait.
                found = self._ask(approval, record, (earlier,))
                if found is not None and found.decided_by is not None:
                    return _Settled(_status_of(earlier), decision=earlier, unrecorded=True)
            return settled
        try:
            result = decide(_request(approval, decision), self._rollouts, callbacks, self._clock)
        except (NotAwaitingApproval, RolloutNotRunning):
            return self._settled_elsewhere(approval) or _Settled(ApprovalStatus.CLOSED, "the rollout ended")
        if result.outcome != "applied":
            return self._already_closed(approval, decision, earlier)
        return _Settled(_status_of(decision))

    def _already_closed(
        self, approval: Approval, decision: ApprovalDecision, earlier: ApprovalDecision | None
    ) -> _Settled:
        """How the approval ends when Step Functions said its wait was already closed (see the
        module's docstring): found out, not guessed, and never expired before its expiry."""
        record = self._rollout_record(approval)
        found = self._ask(approval, record, (decision,) if earlier is None else (decision, earlier))
        if found is not None and found.decided_by is not None:
            # This answer (its request took effect, its response lost), or the dead answer's.
            theirs = None if found.decided_by is decision else found.decided_by
            return _Settled(_status_of(found.decided_by), decision=theirs, unrecorded=True)
        settled = self._settled_elsewhere(approval, record)
        if settled is not None:
            return settled
        # An abort, a promote, a canary alarm or a stop outside canaryfleet closes the task before
        # its record says the wait ended: told so, as they are once the record catches up.
        why = _what_stopped_the_wait(approval, record) if record is not None else None
        if not why and found is not None and found.status != "RUNNING":
            why = _EXECUTION_ENDED.get(found.status, "the rollout's execution no longer exists")
        if why:
            return _Settled(ApprovalStatus.CLOSED, why)
        if approval.expired_at(self._clock.now()):
            return _Settled(ApprovalStatus.EXPIRED)  # its time had come: the wait timed out
        return self._unexplained(approval, found)

    def _unexplained(self, approval: Approval, found: _Found | None) -> _Settled:
        """A closed wait neither the history nor the record explains yet, before its expiry."""
        if found is not None and found.retrying:
            # The request function asked, then its invocation failed: until the Retry attempts the
            # wait again, Step Functions may refuse the attempt's token (undocumented). The answer
            # is kept, its claim held, and the retried request ends its wait with it.
            logger.info(
                "approval answered while its wait is retried: kept for the retry",
                extra={"approval_id": approval.approval_id},
            )
            return _Settled(ApprovalStatus.DECIDING, claim_kept=True)
        if found is not None and found.complete:
            # Not this answer (its end would be in the history): another one, not recorded yet.
            return _Settled(ApprovalStatus.CLOSED, "another answer ended the rollout's wait", left_open=True)
        logger.warning(
            "approval's wait closed, how not known yet", extra={"approval_id": approval.approval_id}
        )
        return _Settled(ApprovalStatus.DECIDING, claim_kept=True)

    def _ask(
        self, approval: Approval, record: RolloutRecord | None, decisions: tuple[ApprovalDecision, ...]
    ) -> _Found | None:
        """Which of ``decisions`` ended the approval's wait, by its execution's history; None if
        Step Functions cannot be asked (no history here, or no execution on the record)."""
        if self._history is None or record is None or record.execution_arn is None:
            return None
        read = self._history.ends_since(record.execution_arn, approval.created_at)
        decided = next(
            (d for d in decisions for end in read.ends if _ended_by(end, _request(approval, d))), None
        )
        last = read.ends[-1] if read.ends else None
        retrying = (
            read.status == "RUNNING"
            and last is not None
            and last.kind == "failed"
            and last.error in RETRIED_BY_THE_WAIT
        )
        return _Found(read.status, read.complete, decided, retrying)

    # -- a retried request -------------------------------------------------------------
    def keep_for_retry(self, request: Decision, rollout_id: str) -> Literal["kept", "applied"] | None:
        """An operator's approve or reject (DecideFunction) that Step Functions refused while the
        rollout's "Wait for approval" is being retried: kept for the retry as an approver's
        answer is (``_unexplained``), by a claim of the approval ("kept"); "applied" if the retry
        took the wait over before the claim, so it was ended here. None if the wait is not being
        retried, or the approval is taken or over."""
        action = request.action
        retried = self._wait_being_retried(request, rollout_id)
        if retried is None or (action != "approve" and action != "reject"):  # noqa: PLR1714
            return None
        approval, refused = retried
        now = self._clock.now()
        decision = ApprovalDecision(
            action=action, by=request.by, channel=request.channel, comment=request.reason, at=now
        )
        if not self._approvals.claim(
            approval.approval_id, decision, secrets.token_hex(8), now - CLAIM_STALE_AFTER
        ):
            return None
        logger.info(
            "decision met the wait being retried: kept for the retry",
            extra={"approval_id": approval.approval_id, "channel": request.channel},
        )
        # The retried request reads the approval after storing its token: one stored before this
        # claim may have found nothing to apply. Then the wait is the retry's, ended here.
        again = self._rollouts.get(request.application, rollout_id)
        if again is not None and again.waits_with("approval") not in (None, refused):
            return "applied" if self.apply_kept_answer(approval.approval_id) else "kept"
        return "kept"

    def _wait_being_retried(self, request: Decision, rollout_id: str) -> tuple[Approval, str] | None:
        """The open approval an approve or reject is for, and its wait's token, while the execution
        says "Wait for approval" is being retried (``_Found.retrying``); None otherwise."""
        if request.action not in ("approve", "reject"):
            return None
        record = self._rollouts.get(request.application, rollout_id)
        token = record.waits_with("approval") if record is not None else None
        if record is None or record.approval_id is None or token is None:
            return None
        if request.approval_id not in (None, record.approval_id):
            return None
        approval = self._approvals.get(record.approval_id)
        if approval is None or approval.is_final:
            return None
        found = self._ask(approval, record, ())
        return (approval, token) if found is not None and found.retrying else None

    def apply_kept_answer(self, approval_id: str) -> bool:
        """End the wait a retried request for approval took over with the answer claimed for it
        (``_already_closed`` kept it while the wait was being retried; or a run died holding it):
        through the one decision path, then the approval ends as that answer. False if there was
        none, or it no longer ends anything (the rollout moved on; another end came first)."""
        approval = self._approvals.get(approval_id)
        if approval is None or approval.status is not ApprovalStatus.DECIDING:
            return False
        decision, claim_id = approval.decision, approval.claim_id
        if decision is None or claim_id is None:
            return False
        try:
            result = decide(_request(approval, decision), self._rollouts, self._callbacks, self._clock)
        except (NotAwaitingApproval, RolloutNotRunning):
            return False
        if result.outcome != "applied":
            return False
        self._approvals.finish(approval_id, claim_id, _status_of(decision))
        self._update_slack(self._approvals.get(approval_id) or approval)
        logger.info(
            "kept approval answer ended the retried wait",
            extra={"approval_id": approval_id, "channel": decision.channel},
        )
        return True

    def _complete_record(self, approval: Approval) -> None:
        """Write what the rollout record lacks of the decision that ended the approval's wait: the
        wait's end, the record's decision, its audit entry (once: one already there is kept).
        Each write is tried; the first failure is raised after the others."""
        decision = approval.decision
        if decision is None or approval.status not in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED):
            return
        record = self._rollout_record(approval)
        if record is None:
            return
        entry = AuditEntry(
            kind=decision.action,
            by=decision.by,
            reason=decision.comment,
            channel=decision.channel,
            at=decision.at,
        )

        def this_one(found: AuditEntry | None) -> bool:
            return (
                found is not None
                and (found.kind, found.by) == (entry.kind, entry.by)
                and found.at >= approval.created_at
            )

        app, rollout_id = approval.application, approval.rollout_id
        writes: list[Callable[[], None]] = []
        if record.approval_id == approval.approval_id:
            token = record.waits_with("approval")
            if token:
                writes.append(lambda: self._rollouts.clear_wait(app, rollout_id, token))
            if not this_one(record.decision):
                writes.append(lambda: self._rollouts.record_decision(app, rollout_id, entry))
        if not any(this_one(found) for found in record.audit):
            writes.append(lambda: self._rollouts.append_audit(app, rollout_id, entry))
        failure: Exception | None = None
        for write in writes:
            try:
                write()
            except Exception as exc:  # the others are still tried: finish what can be finished
                failure = failure or exc
        if failure is not None:
            raise failure

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
        if settled is None:
            record = self._rollout_record(approval)
            settled = self._settled_elsewhere(approval, record) or _Settled(ApprovalStatus.EXPIRED)
            earlier = approval.decision if approval.status is ApprovalStatus.DECIDING else None
            if earlier is not None and settled.decision is None:
                # A claim left by a run that died: its answer may have ended the wait all the same.
                found = self._ask(approval, record, (earlier,))
                if found is not None and found.decided_by is not None:
                    settled = _Settled(_status_of(earlier), decision=earlier, unrecorded=True)
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
        if settled.unrecorded and final is not None:
            self._complete_record(final)
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
            self._complete_record(approval)
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


def _status_of(decision: ApprovalDecision) -> ApprovalStatus:
    return ApprovalStatus.APPROVED if decision.action == "approve" else ApprovalStatus.REJECTED


def _request(approval: Approval, decision: ApprovalDecision) -> Decision:
    """The decision path's request for an approval's answer."""
    return Decision(
        application=approval.application,
        action=decision.action,
        by=decision.by,
        reason=decision.comment,
        channel=decision.channel,
        rollout_id=approval.rollout_id,
        approval_id=approval.approval_id,
    )


def _sent(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _ended_by(end: CallbackEnd, request: Decision) -> bool:
    """Whether a callback task's end is ``request``'s: what ``decisions._decide_approval`` sends
    (an approval's output, a rejection's error and cause), not a promote's."""
    if request.action == "approve":
        sent = _sent(end.output) if end.kind == "succeeded" else {}
        said = (sent.get("decision"), sent.get("by"), sent.get("comment"), "promoted" in sent)
        return said == ("approve", request.by, request.reason, False)
    sent = _sent(end.cause) if end.kind == "failed" and end.error == "Rejected" else {}
    return (sent.get("by"), sent.get("reason")) == (request.by, request.reason or "no reason given")


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
