"""Approvals in the state table read back as they were stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from canaryfleet.adapters.approval_store import DynamoApprovalStore
from canaryfleet.models.app_config import Approvers
from canaryfleet.models.approval import Approval
from canaryfleet.models.rollout import Verdict

from canaryfleet_local.cloud import LocalCloud

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_an_approval_whose_verdict_saw_no_request_reads_back(cloud: LocalCloud) -> None:
    # An inconclusive bake without traffic has no latency on either side: the approvers are
    # still asked, and the request must read back (it was rolled back as "2 validation errors").
    verdict = Verdict(
        result="inconclusive",
        reasons=["too few canary requests: 0 of 100"],
        canary_requests=0,
        canary_errors=0,
        canary_error_rate=0,
        canary_latency=None,
        live_requests=0,
        live_errors=0,
        live_error_rate=0,
        live_latency=None,
        window_start=NOW - timedelta(minutes=10),
        window_end=NOW,
    )
    approval = Approval(
        approval_id="0gTnXKZ8qf24c0acc_I_tg",
        application="payments-api",
        rollout_id="payments-api-1_4_2-5c1d9a0e7b3f42a8d6e1f0b9",
        version="1.4.2",
        verdict=verdict,
        approvers=Approvers(emails=("alice@example.com",)),
        created_at=NOW,
        expires_at=NOW + timedelta(hours=24),
    )
    store = DynamoApprovalStore(cloud.output("StateTableName"))

    store.create(approval)

    read = store.get(approval.approval_id)
    assert read is not None and read.verdict == verdict
