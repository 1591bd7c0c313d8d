"""Whole flow on the local cloud: upload -> EventBridge -> start_rollout -> rollout execution -> task."""

import json

from typer.testing import CliRunner

from canaryfleet_cli.main import app
from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from tests.integration.helpers import drain_queue, subscribe_queue, table_items

COMMIT = "9fceb02d0ae598e95dc970b74767f19372d61af8"


def upload(cloud: LocalCloud, key: str = "hello-app/1.0.0.zip") -> str:
    put = cloud.client("s3").put_object(
        Bucket=cloud.output("ArtifactBucketName"),
        Key=key,
        Body=bundle(),
        Metadata={"commit": COMMIT, "build-url": "https://ci.example.com/job/hello-app/7"},
    )
    return str(put["VersionId"])


def test_an_upload_runs_start_rollout_which_runs_the_rollout_to_its_end(cloud: LocalCloud) -> None:
    notifications = subscribe_queue(cloud)

    upload(cloud)
    cloud.wait_idle()
    [execution] = cloud.executions("RolloutStateMachine")
    record = cloud.wait_for_execution(execution)

    assert [i.logical_id for i in cloud.runtime.invocations] == ["StartRolloutFunction", "RecordStageFunction"]
    assert [i.invocation_type for i in cloud.runtime.invocations] == ["Event", "RequestResponse"]
    assert record.status == "SUCCEEDED"
    assert "Record rollout started" in record.states_entered
    [rollout] = [i for i in table_items(cloud, "APP#hello-app") if i["sk"].startswith("ROLLOUT#")]
    assert (rollout["version"], rollout["commit"], rollout["current_stage"]) == ("1.0.0", COMMIT, "started")
    assert [m["stage"] for m in drain_queue(cloud, notifications)] == ["started"]
    assert cloud.queue.failed == []


def test_a_duplicated_and_a_late_delivery_of_the_event_start_no_second_rollout(cloud: LocalCloud) -> None:
    upload(cloud)
    cloud.wait_idle()
    event = cloud.s3_events.sent[-1]
    function = cloud.resource("StartRolloutFunction")

    for _ in range(2):  # EventBridge delivers at least once
        cloud.client("lambda").invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event))
    cloud.wait_idle()
    [execution] = cloud.executions("RolloutStateMachine")
    cloud.wait_for_execution(execution)
    late = cloud.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event))

    assert json.loads(late["Payload"].read())["status"] == "duplicate"
    assert len(cloud.executions("RolloutStateMachine")) == 1
    assert cloud.queue.failed == []


def test_a_new_version_of_the_same_key_is_a_new_rollout(cloud: LocalCloud) -> None:
    upload(cloud)
    cloud.wait_idle()
    cloud.wait_for_execution(cloud.executions("RolloutStateMachine")[0])

    upload(cloud)
    cloud.wait_idle()

    assert len(cloud.executions("RolloutStateMachine")) == 2


def test_an_off_layout_upload_is_rejected_without_a_rollout(cloud: LocalCloud) -> None:
    upload(cloud, key="hello-app/builds/1.0.0.zip")
    cloud.wait_idle()

    assert [i.logical_id for i in cloud.runtime.invocations] == ["StartRolloutFunction"]
    assert cloud.executions("RolloutStateMachine") == []
    assert table_items(cloud, "APP#hello-app") == []


def test_the_cli_wiring_check_reports_the_whole_path() -> None:
    result = CliRunner().invoke(app, ["local", "wiring", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["invoked"] == ["StartRolloutFunction", "RecordStageFunction"]
    assert report["states_entered"][0] == "Acquire rollout lock"
