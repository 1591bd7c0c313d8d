"""The approval-expiry state machine (statemachines/approval_expiry.asl.yaml), run by moto's interpreter."""

import json

from canaryfleet_local.cloud import LocalCloud


def test_an_expiry_whose_approval_is_gone_ends_on_a_defined_path(cloud: LocalCloud) -> None:
    # Given an expiry run for an approval that has no item in the state table (never written, or deleted)
    machine = cloud.output("ApprovalExpiryStateMachineArn")
    started = cloud.client("stepfunctions").start_execution(
        stateMachineArn=machine,
        name="approval-gone",
        input=json.dumps({"approval_id": "gone-approval-id-00000", "wait_seconds": 0}),
    )

    # When it runs
    record = cloud.wait_for_execution(started["executionArn"], timeout=15)

    # Then reading the missing item is not an error: it ends, with nothing to expire. (On AWS a
    # ResultSelector or Choice path that matches nothing fails the execution with States.Runtime,
    # which no Catch catches; moto's interpreter lets the Catch take it, so the path is checked here.)
    assert (record.status, record.error) == ("SUCCEEDED", None)
    assert record.states_entered[-2:] == ["Is it still open", "No approval to expire"]
    assert "Expire the approval" not in record.states_entered
