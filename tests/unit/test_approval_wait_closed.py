"""An approval whose wait Step Functions already closed, or whose record writes failed after its
callback: it ends as what really ended the wait, and is never reopened or expired early."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from canaryfleet.logic.approval_gate import CLAIM_STALE_AFTER, ApprovalGate, Outcome
from canaryfleet.logic.links import LinkSigner
from canaryfleet.models.app_config import Approvers
from canaryfleet.models.approval import (
    Approval,
    ApprovalDecision,
    ApprovalLink,
    ApprovalStatus,
    new_approval_id,
)
from canaryfleet.models.rollout_record import LockRecord, RolloutRecord, Wait
from canaryfleet.ports.clock import FixedClock
from canaryfleet.ports.workflow import CallbackEnd

from tests.unit.approval_fakes import InMemoryApprovalStore, SteppedCallbacks
from tests.unit.fakes import T0, InMemoryRolloutStore, a_rollout

ALICE, BOB = "alice@example.com", "bob@example.com"
EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:canaryfleet-rollout:payments-api-2_7_0"
TOKEN = "TOKEN-OF-THE-APPROVAL-WAIT"
EXPIRES = T0 + timedelta(hours=1)


class _Keys:
    def current(self) -> bytes:
        return b"k" * 48

    def accepted(self, refresh: bool = False) -> list[bytes]:
        return [self.current()]


class ThrottledRollouts(InMemoryRolloutStore):
    """The rollout store, its clear_wait throttled ``throttled`` more times (botocore's retries spent)."""

    throttled = 0

    def clear_wait(self, *args: Any, **kwargs: Any) -> None:
        if self.throttled:
            self.throttled -= 1
            raise RuntimeError("ProvisionedThroughputExceededException")
        super().clear_wait(*args, **kwargs)


@dataclass
class Story:
    gate: ApprovalGate
    approvals: InMemoryApprovalStore
    rollouts: ThrottledRollouts
    callbacks: SteppedCallbacks
    clock: FixedClock
    approval_id: str
    signer: LinkSigner

    def link(self, approver: str) -> ApprovalLink:
        return self.signer.sign(self.approval_id, approver, int(EXPIRES.timestamp()))

    def approval(self) -> Approval:
        approval = self.approvals.get(self.approval_id)
        assert approval is not None
        return approval

    def record(self) -> RolloutRecord:
        record = self.rollouts.get("payments-api", self.approval().rollout_id)
        assert record is not None
        return record

    def audit(self) -> list[tuple[str, str | None]]:
        return [(entry.kind, entry.by) for entry in self.record().audit]


@pytest.fixture
def story(clock: FixedClock) -> Story:
    """A running rollout waiting for Alice's or Bob's approval until an hour from now."""
    rollouts = ThrottledRollouts(clock)
    record = a_rollout(rollouts)
    app, rollout_id = record.application, record.rollout_id
    rollouts.locks[app] = LockRecord(owner=EXECUTION, rollout_id=rollout_id)
    rollouts.mark_started(app, rollout_id, EXECUTION)
    approval_id = new_approval_id()
    wait = Wait(
        kind="approval",
        token=TOKEN,
        started_at=T0,
        approval_id=approval_id,
        approval_expires_at=EXPIRES,
        approval_step=0,
    )
    rollouts.set_wait(app, rollout_id, wait)
    approvals = InMemoryApprovalStore()
    approvers = Approvers(emails=(ALICE, BOB))
    approvals.create(
        Approval(
            approval_id=approval_id,
            application=app,
            rollout_id=rollout_id,
            version=record.version,
            approvers=approvers,
            created_at=T0,
            expires_at=EXPIRES,
        )
    )
    callbacks = SteppedCallbacks(clock, EXECUTION)
    gate = ApprovalGate(approvals, rollouts, callbacks, None, clock, callbacks)
    clock.advance(300)
    return Story(gate, approvals, rollouts, callbacks, clock, approval_id, LinkSigner(_Keys()))


def test_an_approval_whose_response_was_lost_ends_approved_by_its_approver(story: Story) -> None:
    # Given Step Functions applies Alice's SendTaskSuccess but its response is lost, and botocore's
    # retry is told the task is closed
    story.callbacks.lose_responses = True

    # When Alice approves
    result = story.gate.decide_by_link(story.link(ALICE), "approve", "LGTM", story.signer)

    # Then the approval is Alice's, in the approval and once in the rollout's audit
    assert story.callbacks.succeeded[TOKEN]["by"] == ALICE
    assert result.outcome is Outcome.DECIDED
    approval = story.approval()
    assert approval.status is ApprovalStatus.APPROVED and approval.decision is not None
    assert (approval.decision.by, approval.decision.comment) == (ALICE, "LGTM")
    assert story.audit() == [("approve", ALICE)]
    record = story.record()
    assert record.decision is not None and record.decision.by == ALICE
    assert record.wait_token is None

    # And a second click by her changes nothing, and adds no second audit entry
    again = story.gate.decide_by_link(story.link(ALICE), "approve", "LGTM", story.signer)
    assert again.outcome is Outcome.ALREADY_DECIDED
    assert story.audit() == [("approve", ALICE)]


def test_a_rejection_whose_response_was_lost_ends_rejected_by_its_approver(story: Story) -> None:
    story.callbacks.lose_responses = True

    result = story.gate.decide_by_link(story.link(BOB), "reject", "", story.signer)

    assert (result.outcome, story.approval().status) == (Outcome.DECIDED, ApprovalStatus.REJECTED)
    assert story.audit() == [("reject", BOB)]


def test_a_record_write_failing_after_the_approval_neither_reopens_it_nor_loses_its_audit(
    story: Story,
) -> None:
    # Given the state table throttles the rollout record's writes through Alice's whole request
    story.rollouts.throttled = 2

    # When Alice approves: Step Functions takes it, the record's writes fail
    with pytest.raises(RuntimeError, match="ProvisionedThroughput"):
        story.gate.decide_by_link(story.link(ALICE), "approve", "LGTM", story.signer)

    # Then the approval is Alice's all the same: Bob is not offered the form, his reject changes nothing
    assert story.callbacks.succeeded[TOKEN]["by"] == ALICE
    assert story.approval().status is ApprovalStatus.APPROVED
    story.clock.advance(CLAIM_STALE_AFTER.total_seconds() + 60)
    assert story.gate.show(story.link(BOB), story.signer).outcome is Outcome.ALREADY_DECIDED
    assert story.gate.decide_by_link(story.link(BOB), "reject", "wait", story.signer).outcome is (
        Outcome.ALREADY_DECIDED
    )

    # And once the table takes writes again, a retry of her request records it, once
    retried = story.gate.decide_by_link(story.link(ALICE), "approve", "LGTM", story.signer)
    assert retried.approval is not None and retried.approval.status is ApprovalStatus.APPROVED
    assert story.audit() == [("approve", ALICE)]
    record = story.record()
    assert (record.wait_token, record.decision and record.decision.by) == (None, ALICE)
    story.gate.decide_by_link(story.link(ALICE), "approve", "LGTM", story.signer)
    assert story.audit() == [("approve", ALICE)]


def test_a_write_failing_once_after_the_approval_is_made_again_in_the_same_request(story: Story) -> None:
    story.rollouts.throttled = 1

    result = story.gate.decide_by_link(story.link(ALICE), "approve", "LGTM", story.signer)

    assert (result.outcome, story.approval().status) == (Outcome.DECIDED, ApprovalStatus.APPROVED)
    assert story.audit() == [("approve", ALICE)]


def test_an_unanswered_approval_still_expires_at_its_expiry(story: Story) -> None:
    # Given nobody answered and Step Functions timed the wait out at the approval's expiry
    story.clock.advance((EXPIRES - story.clock.now()).total_seconds())
    story.callbacks.close(TOKEN, CallbackEnd("timed_out", story.clock.now(), error="States.Timeout"))
    story.callbacks.status = "FAILED"

    # When the expiry runs, and Alice clicks a moment later
    status = story.gate.expire(story.approval_id)
    story.clock.advance(5)
    late = story.gate.decide_by_link(story.link(ALICE), "approve", "", story.signer)

    # Then it expired
    assert status is ApprovalStatus.EXPIRED
    assert late.outcome is Outcome.EXPIRED
    assert story.audit() == [("approval_expired", None)]


def test_an_approval_whose_execution_was_stopped_is_closed_saying_so_not_expired(story: Story) -> None:
    # Given someone stopped the rollout's execution in the console (its task closed with it), and
    # nothing has recorded it yet
    story.callbacks.close(TOKEN)
    story.callbacks.status = "ABORTED"

    # When Alice approves before the expiry
    result = story.gate.decide_by_link(story.link(ALICE), "approve", "", story.signer)

    # Then the approval is closed because the execution was stopped, not expired
    assert result.outcome is Outcome.NOT_WAITING
    approval = story.approval()
    assert approval.status is ApprovalStatus.CLOSED
    assert approval.closed_reason == "the rollout's execution was stopped in Step Functions"
    assert story.audit() == []


def test_a_wait_another_answer_closed_leaves_the_approval_for_its_record_to_settle(story: Story) -> None:
    # Given the CLI's approval by Carol ended the wait, its record writes not made yet
    output = {"decision": "approve", "by": "carol", "comment": ""}
    story.callbacks.close(TOKEN, CallbackEnd("succeeded", story.clock.now(), output=json.dumps(output)))

    # When Alice approves
    result = story.gate.decide_by_link(story.link(ALICE), "approve", "", story.signer)

    # Then she is told the rollout no longer waits; nothing is recorded for her, nor an expiry
    assert result.outcome is Outcome.NOT_WAITING
    assert story.approval().status is ApprovalStatus.PENDING
    assert story.audit() == []


def test_a_closed_wait_that_cannot_be_looked_into_keeps_the_claim_and_is_not_expired(story: Story) -> None:
    # Given a gate that cannot read executions, and Alice's response lost
    story.callbacks.lose_responses = True
    blind = ApprovalGate(story.approvals, story.rollouts, story.callbacks, None, story.clock)

    result = blind.decide_by_link(story.link(ALICE), "approve", "", story.signer)

    # Then her answer keeps the approval (being decided): neither expired nor offered again
    assert result.outcome is Outcome.ALREADY_DECIDED
    assert story.approval().status is ApprovalStatus.DECIDING
    assert story.gate.show(story.link(BOB), story.signer).outcome is Outcome.ALREADY_DECIDED
    assert story.audit() == []

    # And the next answer once the claim is stale finds out it was hers
    story.clock.advance(CLAIM_STALE_AFTER.total_seconds() + 60)
    later = story.gate.decide_by_link(story.link(BOB), "reject", "", story.signer)
    assert later.outcome is Outcome.ALREADY_DECIDED
    approval = story.approval()
    assert approval.status is ApprovalStatus.APPROVED and approval.decision is not None
    assert approval.decision.by == ALICE
    assert story.audit() == [("approve", ALICE)]


def test_a_dead_answer_whose_callback_took_effect_is_recorded_as_its_own_at_the_expiry(story: Story) -> None:
    # Given Alice's answer claimed the approval and ended the wait, then its function died
    dead = ApprovalDecision(action="approve", by=ALICE, channel="page", comment="", at=story.clock.now())
    story.approvals.claim(story.approval_id, dead, "dead-claim", T0)
    story.callbacks.succeed(TOKEN, {"decision": "approve", "by": ALICE, "comment": ""})
    story.callbacks.status = "SUCCEEDED"  # the rollout went on and was released

    # When the expiry runs
    story.clock.advance((EXPIRES - story.clock.now()).total_seconds())
    status = story.gate.expire(story.approval_id)

    # Then it is Alice's approval, not an expiry
    assert status is ApprovalStatus.APPROVED
    assert story.audit() == [("approve", ALICE)]
