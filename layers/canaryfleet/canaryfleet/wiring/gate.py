"""The approval gate as the approval functions run it: the state table and Step Functions callbacks."""

from __future__ import annotations

from canaryfleet.adapters.approval_store import DynamoApprovalStore
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbackHistory, StepFunctionsCallbacks
from canaryfleet.logic.approval_gate import ApprovalGate
from canaryfleet.ports.approvals import SlackChannel
from canaryfleet.ports.clock import Clock, SystemClock


def approval_gate(table_name: str, slack: SlackChannel | None, clock: Clock | None = None) -> ApprovalGate:
    """The gate on the state table (approvals and rollouts), Step Functions callbacks, and the
    rollout executions' histories (how a wait that was already closed ended)."""
    clock = clock or SystemClock()
    return ApprovalGate(
        DynamoApprovalStore(table_name),
        DynamoRolloutStore(table_name, clock),
        StepFunctionsCallbacks(),
        slack,
        clock,
        StepFunctionsCallbackHistory(),
    )
