"""statemachines/rollout.asl.json, executed by moto with the real record_stage function."""

import json
from typing import Any

from canaryfleet_local.cloud import LocalCloud
from tests.integration.helpers import drain_queue, subscribe_queue, table_items


def rollout_input(rollout_id: str = "payments-api-2_7_0-abc", version: str = "2.7.0") -> dict[str, Any]:
    return {
        "rollout_id": rollout_id,
        "application": "payments-api",
        "version": version,
        "artifact": {"bucket": "artifacts", "key": f"payments-api/{version}.zip", "application": "payments-api",
                     "version": version},
    }


def run(cloud: LocalCloud, payload: dict[str, Any]) -> Any:
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=cloud.resource("RolloutStateMachine"), name=payload["rollout_id"], input=json.dumps(payload)
    )["executionArn"]
    return cloud.wait_for_execution(arn)


def hold_lock(cloud: LocalCloud, owner: str) -> None:
    cloud.client("dynamodb").put_item(
        TableName=cloud.output("StateTableName"),
        Item={"pk": {"S": "APP#payments-api"}, "sk": {"S": "LOCK"}, "owner": {"S": owner}},
    )


def test_a_rollout_records_its_start_and_releases_the_lock(cloud: LocalCloud) -> None:
    queue = subscribe_queue(cloud)

    record = run(cloud, rollout_input())

    assert record.status == "SUCCEEDED"
    assert record.states_entered == [
        "Acquire rollout lock", "Record rollout started", "Release rollout lock", "Rollout recorded"
    ]
    items = {item["sk"]: item for item in table_items(cloud, "APP#payments-api")}
    assert "LOCK" not in items
    assert items["ROLLOUT#payments-api-2_7_0-abc"]["current_stage"] == "started"
    assert [m["stage"] for m in drain_queue(cloud, queue)] == ["started"]


def test_a_rollout_does_not_start_while_another_holds_the_lock(cloud: LocalCloud) -> None:
    hold_lock(cloud, owner="arn:aws:states:us-east-1:123456789012:execution:rollout:earlier")

    record = run(cloud, rollout_input())

    assert (record.status, record.error) == ("FAILED", "RolloutLocked")
    assert "Record rollout started" not in record.states_entered
    lock = next(i for i in table_items(cloud, "APP#payments-api") if i["sk"] == "LOCK")
    assert lock["owner"].endswith(":earlier"), "the holder keeps its lock"


def test_a_failed_task_releases_the_lock_and_says_why(cloud: LocalCloud) -> None:
    record = run(cloud, rollout_input(rollout_id="payments-api-bad", version="not a version!"))

    assert (record.status, record.error) == ("FAILED", "RolloutFailed")
    assert "InvalidEvent" in (record.cause or "")
    assert record.states_entered[-2:] == ["Release rollout lock after failure", "Rollout failed"]
    assert [i for i in table_items(cloud, "APP#payments-api") if i["sk"] == "LOCK"] == []
