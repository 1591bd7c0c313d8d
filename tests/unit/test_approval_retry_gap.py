"""An answer given while "Wait for approval" is being retried: kept, and the retried request ends
its wait with it, whether Step Functions gives the retry a new task token or the same one.

The request function asked the approvers, then its invocation failed (a timeout after its
effects): until the state's Retry attempts the wait again, Step Functions may refuse the failed
attempt's token (AWS does not document whether it does, nor whether the retry gets a new one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from canaryfleet.logic.approval import ApprovalChannels, request_approval
from canaryfleet.logic.approval_gate import CLAIM_STALE_AFTER, RETRIED_BY_THE_WAIT, ApprovalGate, Outcome
from canaryfleet.logic.decisions import decide
from canaryfleet.logic.links import LinkSigner
from canaryfleet.models.app_config import Approvers
from canaryfleet.models.approval import Approval, ApprovalDecision, ApprovalLink, ApprovalStatus
from canaryfleet.models.decision import Decision
from canaryfleet.models.rollout import RolloutRef
from canaryfleet.models.rollout_record import RolloutRecord
from canaryfleet.models.tasks import ApprovalTask
from canaryfleet.ports.approvals import EmailReach
from canaryfleet.ports.clock import FixedClock
from canaryfleet.ports.workflow import CallbackEnd

from tests.unit.approval_fakes import InMemoryApprovalStore, SteppedCallbacks
from tests.unit.fakes import (
    FakeAlarms,
    InMemoryRolloutStore,
    RecordingNotifier,
    a_rollout,
    an_app,
    hold_lock,
)

ROOT = Path(__file__).resolve().parents[2]
ALICE, BOB = "alice@example.com", "bob@example.com"
APP = "payments-api"
ROLLOUT_ID = "payments-api-2_7_0-5e0c2c7a41d2b7b3b1f04a6d"
REF = RolloutRef(application=APP, rollout_id=ROLLOUT_ID, version="2.7.0")
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:canaryfleet-rollout:payments-api-2_7_0"


class _Keys:
    def current(self) -> bytes:
        return b"k" * 48

    def accepted(self, refresh: bool = False) -> list[bytes]:
        return [self.current()]


class _Inbox:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def ensure_subscribed(self, emails: tuple[str, ...]) -> EmailReach:
        return EmailReach()

    def send(self, approver: str, subject: str, body: str) -> None:
        self.sent.append(approver)


class _Expiry:
    def schedule(self, approval_id: str, expires_at: datetime, now: datetime) -> bool:
        return True


class Story:
    """A rollout at its approval: the request function asks Alice and Bob (by email)."""

    def __init__(self, clock: FixedClock) -> None:
        self.clock = clock
        self.rollouts = InMemoryRolloutStore(clock)
        a_rollout(self.rollouts)
        hold_lock(self.rollouts, REF)
        self.rollouts.mark_started(APP, ROLLOUT_ID, EXECUTION)
        self.approvals = InMemoryApprovalStore()
        self.callbacks = SteppedCallbacks(clock, EXECUTION)
        self.inbox = _Inbox()
        self.signer = LinkSigner(_Keys())
        self.channels = ApprovalChannels(
            approvals=self.approvals,
            signer=self.signer,
            email=self.inbox,
            expiry=_Expiry(),
            slack=None,
            page_base_url="https://approvals.example.com",
        )
        self.gate = ApprovalGate(self.approvals, self.rollouts, self.callbacks, None, clock, self.callbacks)
        self.app = an_app().model_copy(update={"approvers": Approvers(emails=(ALICE, BOB))})

    def request(self, token: str) -> str:
        """One attempt of "Wait for approval" (the same state: its step and entered time)."""
        task = ApprovalTask(token=token, app=self.app, ref=REF, timeout_seconds=3600, step=0)
        return request_approval(
            task, self.rollouts, RecordingNotifier(), self.callbacks, self.channels, self.clock, FakeAlarms()
        )

    def attempt_failed(self, token: str, error: str = "Sandbox.Timedout") -> None:
        """The attempt's invocation failed after it asked: Step Functions closes its token."""
        self.callbacks.close(token, CallbackEnd("failed", self.clock.now(), error=error, cause="timed out"))

    def record(self) -> RolloutRecord:
        record = self.rollouts.get(APP, ROLLOUT_ID)
        assert record is not None
        return record

    def approval(self) -> Approval:
        record = self.record()
        assert record.approval_id is not None
        approval = self.approvals.get(record.approval_id)
        assert approval is not None
        return approval

    def link(self, approver: str) -> ApprovalLink:
        approval = self.approval()
        return self.signer.sign(approval.approval_id, approver, int(approval.expires_at.timestamp()))

    def audit(self) -> list[tuple[str, str | None]]:
        return [
            (entry.kind, entry.by) for entry in self.record().audit if entry.kind in ("approve", "reject")
        ]


@pytest.fixture
def story(clock: FixedClock) -> Story:
    return Story(clock)


@pytest.mark.parametrize("retry_token", ["TOKEN-OF-THE-RETRY", "TOKEN-OF-THE-FIRST-ATTEMPT"])
def test_an_answer_given_while_the_wait_is_retried_ends_the_retried_wait(
    story: Story, retry_token: str
) -> None:
    # Given the first attempt asked Alice and Bob, then its invocation timed out
    assert story.request("TOKEN-OF-THE-FIRST-ATTEMPT") == "waiting"
    story.clock.advance(30)
    story.attempt_failed("TOKEN-OF-THE-FIRST-ATTEMPT")

    # When Alice approves before the Retry attempts the wait again
    story.clock.advance(2)
    answered = story.gate.decide_by_link(story.link(ALICE), "approve", "LGTM", story.signer)

    # Then her answer is kept, shown as hers being decided; Bob cannot take the approval over
    assert answered.outcome is Outcome.ALREADY_DECIDED
    kept = story.approval()
    assert kept.status is ApprovalStatus.DECIDING and kept.decision is not None and kept.decision.by == ALICE
    assert "Being decided by alice@example.com" in answered.summary
    bob = story.gate.decide_by_link(story.link(BOB), "reject", "", story.signer)
    assert bob.outcome is Outcome.ALREADY_DECIDED
    assert story.record().decision is None

    # When the Retry attempts the wait (a new token, or the same one open again)
    story.clock.advance(2)
    story.callbacks.closed.discard(retry_token)
    result = story.request(retry_token)

    # Then her approval ends that wait, once, and nobody is asked again
    assert result == "decided"
    assert story.callbacks.succeeded[retry_token] == {"decision": "approve", "by": ALICE, "comment": "LGTM"}
    approval = story.approval()
    assert approval.status is ApprovalStatus.APPROVED and approval.decision is not None
    assert (approval.decision.by, approval.decision.comment) == (ALICE, "LGTM")
    record = story.record()
    assert record.wait_token is None and record.decision is not None and record.decision.by == ALICE
    assert story.audit() == [("approve", ALICE)]
    assert sorted(story.inbox.sent) == [ALICE, BOB]

    # And a later click of hers is told it is decided, with no second audit entry
    again = story.gate.decide_by_link(story.link(ALICE), "approve", "LGTM", story.signer)
    assert again.outcome is Outcome.ALREADY_DECIDED
    assert story.audit() == [("approve", ALICE)]


def test_a_rejection_kept_for_the_retry_fails_the_retried_wait_as_rejected(story: Story) -> None:
    story.request("TOKEN-OF-THE-FIRST-ATTEMPT")
    story.attempt_failed("TOKEN-OF-THE-FIRST-ATTEMPT", error="Lambda.ServiceException")

    story.gate.decide_by_link(story.link(BOB), "reject", "error budget", story.signer)
    result = story.request("TOKEN-OF-THE-RETRY")

    assert result == "decided"
    error, cause = story.callbacks.failed["TOKEN-OF-THE-RETRY"]
    assert (error, json.loads(cause)) == ("Rejected", {"by": BOB, "reason": "error budget"})
    assert story.approval().status is ApprovalStatus.REJECTED
    assert story.audit() == [("reject", BOB)]


def test_without_an_answer_the_retried_request_only_waits(story: Story) -> None:
    story.request("TOKEN-OF-THE-FIRST-ATTEMPT")
    story.attempt_failed("TOKEN-OF-THE-FIRST-ATTEMPT")

    assert story.request("TOKEN-OF-THE-RETRY") == "waiting"

    assert story.approval().status is ApprovalStatus.PENDING
    assert story.record().waits_with("approval") == "TOKEN-OF-THE-RETRY"
    assert story.callbacks.succeeded == {} and story.callbacks.failed == {}
    assert sorted(story.inbox.sent) == [ALICE, BOB]


def test_an_answer_after_a_failure_that_is_not_retried_does_not_wait_for_a_retry(story: Story) -> None:
    # Given the wait's task ended another way (a rejection's error, which no Retry names), not
    # recorded yet: the answer gives the approval back, as any answer that ended nothing
    story.request("TOKEN-OF-THE-FIRST-ATTEMPT")
    story.callbacks.close(
        "TOKEN-OF-THE-FIRST-ATTEMPT", CallbackEnd("failed", story.clock.now(), error="Aborted", cause="")
    )

    answered = story.gate.decide_by_link(story.link(ALICE), "approve", "", story.signer)

    assert answered.outcome is Outcome.NOT_WAITING
    assert story.approval().status is ApprovalStatus.PENDING


def test_a_kept_answer_whose_retry_never_came_is_given_up_when_the_rollout_moved_on(story: Story) -> None:
    # Given Alice's answer was kept for a retry, and the Retry's attempts then ran out: the
    # Catch rolled the rollout back, its record no longer waits
    story.request("TOKEN-OF-THE-FIRST-ATTEMPT")
    story.attempt_failed("TOKEN-OF-THE-FIRST-ATTEMPT")
    story.gate.decide_by_link(story.link(ALICE), "approve", "", story.signer)
    story.rollouts.clear_wait(APP, ROLLOUT_ID, "TOKEN-OF-THE-FIRST-ATTEMPT")

    # When her claim is stale and Bob answers
    story.clock.advance(CLAIM_STALE_AFTER.total_seconds() + 1)
    answered = story.gate.decide_by_link(story.link(BOB), "approve", "", story.signer)

    # Then the approval says the rollout stopped waiting, not that anyone decided
    assert answered.outcome is Outcome.NOT_WAITING
    assert story.approval().status is ApprovalStatus.CLOSED
    assert story.audit() == []


class _RetryTakesOver(SteppedCallbacks):
    """The retried attempt stores its new token between the decision's read and its callback."""

    def __init__(self, story: Story) -> None:
        super().__init__(story.clock, EXECUTION)
        self.story = story

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        if token == "TOKEN-OF-THE-FIRST-ATTEMPT":
            self.closed.add(token)
            self.story.callbacks = self
            self.story.request("TOKEN-OF-THE-RETRY")
        return super().succeed(token, output)


def test_a_decision_meeting_a_token_the_retry_just_replaced_answers_the_new_one(story: Story) -> None:
    story.request("TOKEN-OF-THE-FIRST-ATTEMPT")
    callbacks = _RetryTakesOver(story)
    approval_id = story.approval().approval_id

    result = decide(
        Decision(application=APP, action="approve", by="oncall", channel="cli", approval_id=approval_id),
        story.rollouts,
        callbacks,
        story.clock,
    )

    assert result.outcome == "applied"
    assert set(callbacks.succeeded) == {"TOKEN-OF-THE-RETRY"}
    assert story.record().wait_token is None
    assert story.audit() == [("approve", "oncall")]


def test_the_errors_kept_for_a_retry_are_those_the_waits_retry_names() -> None:
    definition = json.loads((ROOT / "statemachines" / "rollout.asl.json").read_text())

    def find(states: dict[str, Any]) -> dict[str, Any] | None:
        for name, state in states.items():
            if name == "Wait for approval":
                return state
            for branch in [
                *state.get("Branches", []),
                state.get("Iterator") or {},
                state.get("ItemProcessor") or {},
            ]:
                found = find(branch.get("States", {}))
                if found is not None:
                    return found
        return None

    wait = find(definition["States"])
    assert wait is not None
    retried = {error for retrier in wait["Retry"] for error in retrier["ErrorEquals"]}
    assert retried == RETRIED_BY_THE_WAIT


def _operator(action: str, approval_id: str | None = None) -> Decision:
    return Decision(
        application=APP,
        action=action,  # type: ignore[arg-type]
        by="oncall@example.com",
        reason="checked the dashboards",
        channel="cli",
        approval_id=approval_id,
    )


def test_an_operators_approval_refused_while_the_wait_is_retried_is_kept_and_ends_the_retried_wait(
    story: Story,
) -> None:
    # Given the first attempt asked, then timed out; the operator approves from the CLI meanwhile
    story.request("TOKEN-OF-THE-FIRST-ATTEMPT")
    story.attempt_failed("TOKEN-OF-THE-FIRST-ATTEMPT")
    refused = decide(_operator("approve"), story.rollouts, story.callbacks, story.clock)
    assert refused.outcome == "already_decided"

    # When DecideFunction finds the wait is being retried
    kept = story.gate.keep_for_retry(_operator("approve"), refused.rollout_id)

    # Then the approval is theirs, being decided; an approver's later click cannot take it over
    assert kept == "kept"
    approval = story.approval()
    assert approval.status is ApprovalStatus.DECIDING and approval.decision is not None
    assert (approval.decision.by, approval.decision.channel) == ("oncall@example.com", "cli")
    late = story.gate.decide_by_link(story.link(ALICE), "reject", "", story.signer)
    assert late.outcome is Outcome.ALREADY_DECIDED

    # And the retried attempt ends its wait with it
    assert story.request("TOKEN-OF-THE-RETRY") == "decided"
    assert story.callbacks.succeeded["TOKEN-OF-THE-RETRY"] == {
        "decision": "approve",
        "by": "oncall@example.com",
        "comment": "checked the dashboards",
    }
    assert story.approval().status is ApprovalStatus.APPROVED
    assert story.audit() == [("approve", "oncall@example.com")]


def test_an_operators_decision_is_kept_only_while_the_wait_is_retried(story: Story) -> None:
    story.request("TOKEN-OF-THE-FIRST-ATTEMPT")
    rollout_id = story.record().rollout_id

    # The wait's task ended another way (not a failed attempt): nothing to keep
    story.callbacks.close("TOKEN-OF-THE-FIRST-ATTEMPT", CallbackEnd("timed_out", story.clock.now()))
    assert story.gate.keep_for_retry(_operator("approve"), rollout_id) is None
    # Nor an abort, nor an answer to another approval than the one waited on
    story.attempt_failed("TOKEN-OF-THE-FIRST-ATTEMPT")
    assert story.gate.keep_for_retry(_operator("abort"), rollout_id) is None
    assert (
        story.gate.keep_for_retry(_operator("approve", approval_id="another-approval-id"), rollout_id) is None
    )
    assert story.approval().status is ApprovalStatus.PENDING

    # The execution ended: nothing will retry the wait
    story.callbacks.status = "FAILED"
    assert story.gate.keep_for_retry(_operator("reject"), rollout_id) is None
    assert story.approval().status is ApprovalStatus.PENDING


class _RetryBeforeTheClaim(InMemoryApprovalStore):
    """The retried request stores its token and finds nothing to apply just before the claim."""

    def __init__(self, items: dict[str, Approval], retry: Callable[[], str]) -> None:
        super().__init__()
        self.items = items
        self.retry = retry

    def claim(
        self, approval_id: str, decision: ApprovalDecision, claim_id: str, stale_before: datetime
    ) -> bool:
        assert self.retry() == "waiting"
        return super().claim(approval_id, decision, claim_id, stale_before)


def test_an_operators_decision_kept_just_after_the_retry_took_the_wait_over_ends_it_at_once(
    story: Story,
) -> None:
    story.request("TOKEN-OF-THE-FIRST-ATTEMPT")
    story.attempt_failed("TOKEN-OF-THE-FIRST-ATTEMPT")
    refused = decide(_operator("reject"), story.rollouts, story.callbacks, story.clock)
    racing = _RetryBeforeTheClaim(story.approvals.items, lambda: story.request("TOKEN-OF-THE-RETRY"))
    gate = ApprovalGate(racing, story.rollouts, story.callbacks, None, story.clock, story.callbacks)

    kept = gate.keep_for_retry(_operator("reject"), refused.rollout_id)

    assert kept == "applied"
    error, cause = story.callbacks.failed["TOKEN-OF-THE-RETRY"]
    assert (error, json.loads(cause)["by"]) == ("Rejected", "oncall@example.com")
    assert racing.items[story.approval().approval_id].status is ApprovalStatus.REJECTED
    assert story.audit() == [("reject", "oncall@example.com")]
