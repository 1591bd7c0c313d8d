"""In-memory approvals, and Step Functions' callbacks with the history they leave, for the gate.

``InMemoryApprovalStore`` keeps the DynamoDB adapter's conditions (adapters/approval_store.py): a
claim takes a pending approval or one whose claim went stale, finish and release need the claim,
settle ends an open approval. ``SteppedCallbacks`` ends waits as Step Functions does and keeps
each end in its execution's history (``ends_since``), as GetExecutionHistory returns it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from canaryfleet.models.approval import Approval, ApprovalDecision, ApprovalStatus, SlackMessageRef
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.workflow import CallbackEnd, CallbackEnds

from tests.unit.fakes import RecordingCallbacks


class InMemoryApprovalStore:
    def __init__(self) -> None:
        self.items: dict[str, Approval] = {}
        self.claims: dict[str, str] = {}

    def create(self, approval: Approval) -> bool:
        if approval.approval_id in self.items:
            return False
        self.items[approval.approval_id] = approval
        return True

    def get(self, approval_id: str) -> Approval | None:
        return self.items.get(approval_id)

    def _open(self, approval: Approval, stale_before: datetime) -> bool:
        claimed = approval.claimed_at
        return approval.status is ApprovalStatus.PENDING or (
            approval.status is ApprovalStatus.DECIDING and claimed is not None and claimed < stale_before
        )

    def claim(
        self, approval_id: str, decision: ApprovalDecision, claim_id: str, stale_before: datetime
    ) -> bool:
        approval = self.items.get(approval_id)
        if approval is None or not self._open(approval, stale_before):
            return False
        update = {
            "status": ApprovalStatus.DECIDING,
            "decision": decision,
            "claimed_at": decision.at,
            "claim_id": claim_id,
        }
        self.items[approval_id] = approval.model_copy(update=update)
        self.claims[approval_id] = claim_id
        return True

    def finish(
        self,
        approval_id: str,
        claim_id: str,
        status: ApprovalStatus,
        reason: str = "",
        decision: ApprovalDecision | None = None,
    ) -> bool:
        if self.claims.get(approval_id) != claim_id:
            return False
        approval = self.items[approval_id]
        kept = approval.decision if status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED) else None
        update = {"status": status, "closed_reason": reason, "decision": decision or kept}
        self.items[approval_id] = approval.model_copy(update=update)
        return True

    def release(self, approval_id: str, claim_id: str) -> None:
        approval = self.items[approval_id]
        if self.claims.get(approval_id) == claim_id and approval.status is ApprovalStatus.DECIDING:
            update = {
                "status": ApprovalStatus.PENDING,
                "decision": None,
                "claimed_at": None,
                "claim_id": None,
            }
            self.items[approval_id] = approval.model_copy(update=update)
            del self.claims[approval_id]

    def settle(
        self,
        approval_id: str,
        status: ApprovalStatus,
        at: datetime,
        stale_before: datetime,
        decision: ApprovalDecision | None = None,
        reason: str = "",
    ) -> bool:
        approval = self.items[approval_id]
        if not self._open(approval, stale_before):
            return False
        update = {
            "status": status,
            "closed_reason": reason,
            "decision": decision,
            "claimed_at": None,
            "claim_id": None,
        }
        self.items[approval_id] = approval.model_copy(update=update)
        self.claims.pop(approval_id, None)
        return True

    def set_slack_message(self, approval_id: str, message: SlackMessageRef) -> None:
        self.items[approval_id] = self.items[approval_id].model_copy(update={"slack_message": message})

    def mark_emails_sent(self, approval_id: str) -> bool:
        approval = self.items.get(approval_id)
        if approval is None or approval.emails_sent:
            return False
        self.items[approval_id] = approval.model_copy(update={"emails_sent": True})
        return True

    def first_use(self, request_digest: str, keep_until: datetime) -> bool:
        return True


class SteppedCallbacks(RecordingCallbacks):
    """Callbacks of one execution (``execution_arn``) whose ends its history keeps.

    ``lose_responses``: the request takes effect but its response is lost, and botocore's retry
    is told the task is closed (False). ``status`` is what DescribeExecution says.
    """

    def __init__(self, clock: Clock, execution_arn: str) -> None:
        super().__init__()
        self.clock = clock
        self.execution_arn = execution_arn
        self.status = "RUNNING"
        self.lose_responses = False
        self.ends: list[CallbackEnd] = []

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        ended = super().succeed(token, output)
        if ended:
            self.ends.append(CallbackEnd("succeeded", self.clock.now(), output=json.dumps(output)))
        return ended and not self.lose_responses

    def fail(self, token: str, error: str, cause: str) -> bool:
        ended = super().fail(token, error, cause)
        if ended:
            self.ends.append(CallbackEnd("failed", self.clock.now(), error=error, cause=cause))
        return ended and not self.lose_responses

    def close(self, token: str, end: CallbackEnd | None = None) -> None:
        """The task ends without these callbacks (a stop, a timeout, another function)."""
        self.closed.add(token)
        if end is not None:
            self.ends.append(end)

    def ends_since(self, execution_arn: str, since: datetime) -> CallbackEnds:
        if execution_arn != self.execution_arn:
            return CallbackEnds("", (), True)
        return CallbackEnds(self.status, tuple(end for end in self.ends if end.at >= since), True)
