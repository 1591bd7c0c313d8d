"""start_rollout on the local cloud: rejections create nothing, duplicates start nothing twice."""

import io
import json
import stat
import threading
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from canaryfleet.adapters.approval_email import SnsApprovalEmail
from canaryfleet.adapters.artifacts import S3ArtifactStore
from canaryfleet.adapters.clients import client
from canaryfleet.adapters.fleet import CodeDeploy
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.workflow import StepFunctionsRolloutWorkflow
from canaryfleet.logic.start_rollout import start_rollout
from canaryfleet.models.app_config import registry_parameter
from canaryfleet.models.artifact import ArtifactRef
from canaryfleet.models.policy import AnalysisSpec, Approval, Bake, RolloutPolicy, SetWeight, default_policy
from canaryfleet.models.rollout import RolloutInput
from canaryfleet.ports.clock import SystemClock
from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.responses import DynamoHandler

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import deploy_fleet
from tests.helpers import load_event
from tests.integration.helpers import (
    drain_queue,
    eventually,
    invoke,
    put_state_item,
    subscribe_queue,
    table_items,
)

APP = "hello-app"


@pytest.fixture
def onboarded(cloud: LocalCloud) -> Iterator[LocalCloud]:
    app = deploy_fleet(cloud, APP).model_copy(update={"policy": default_policy()})
    cloud.client("ssm").put_parameter(
        Name=registry_parameter(APP), Value=app.model_dump_json(), Type="String", Overwrite=True
    )
    yield cloud


def zipped(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


APPSPEC = b"""version: 0.0
os: linux
hooks:
  ApplicationStart:
    - location: scripts/start.sh
"""


def upload(cloud: LocalCloud, body: bytes, key: str = f"{APP}/2.0.0.zip") -> dict[str, Any]:
    cloud.client("s3").put_object(Bucket=cloud.output("ArtifactBucketName"), Key=key, Body=body)
    cloud.wait_idle()
    return cloud.s3_events.sent[-1]


def nothing_deployed(cloud: LocalCloud) -> None:
    assert cloud.executions("RolloutStateMachine") == []
    assert cloud.codedeploy.created == []
    assert cloud.codedeploy.revisions == {}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not a zip at all", "is not a zip file"),
        (b"", "the bundle is empty"),
        (zipped({"scripts/start.sh": b"#!/bin/sh"}), "no appspec.yml at its root"),
        (zipped({"appspec.yml": APPSPEC}), "hook script scripts/start.sh named in appspec.yml"),
        (zipped({"appspec.yml": b"version: [unclosed", "scripts/start.sh": b""}), "is not valid YAML"),
        (zipped({"appspec.yml": APPSPEC, "scripts/start.sh": b"", "../etc/cron.d/x": b""}), "contains '..'"),
        (zipped({"appspec.yml": APPSPEC, "scripts/start.sh": b""}, symlink="app/link"), "an absolute path"),
        (
            zipped({"appspec.yml": APPSPEC, "scripts/start.sh": b"", "bomb.bin": b"\0" * 30_000_000}),
            "zip bomb",
        ),
    ],
    ids=["not-zip", "empty", "no-appspec", "missing-hook", "bad-yaml", "zip-slip", "symlink", "bomb"],
)
def test_a_bad_bundle_is_rejected_with_its_reason_and_nothing_is_deployed(
    onboarded: LocalCloud, body: bytes, reason: str
) -> None:
    notifications = subscribe_queue(onboarded)

    upload(onboarded, body)

    [record] = [i for i in table_items(onboarded, f"APP#{APP}") if i["sk"].startswith("ROLLOUT#")]
    assert (record["status"], record["outcome"]) == ("rejected", "rejected")
    assert reason in record["reason"]
    nothing_deployed(onboarded)
    [message] = drain_queue(onboarded, notifications)
    assert message["outcome"] == "rejected" and reason in message["reason"]
    assert message["version"] == "2.0.0", "the notices say which build was refused"


def test_an_unknown_application_is_rejected(onboarded: LocalCloud) -> None:
    upload(onboarded, bundle(), key="ledger/1.0.0.zip")

    [invocation] = [i for i in onboarded.runtime.invocations if i.logical_id == "StartRolloutFunction"]
    assert invocation.error_type is None
    nothing_deployed(onboarded)
    assert table_items(onboarded, "APP#ledger")[0]["reason"].startswith(
        "application 'ledger' is not onboarded"
    )


def test_an_off_layout_key_is_rejected(onboarded: LocalCloud) -> None:
    event = upload(onboarded, bundle(), key=f"{APP}/builds/2.0.0.zip")
    result, error = invoke(onboarded, "StartRolloutFunction", event)

    assert error is None
    assert result["status"] == "rejected" and "is not <app>/<version>.zip" in result["reason"]
    nothing_deployed(onboarded)


@pytest.mark.parametrize(
    ("key", "said"),
    [
        (f"{APP}/2.0.0.tgz", "is a .tgz bundle"),
        (f"{APP}/2.0.0.tar.gz", "is a .tar.gz bundle"),
        (f"{APP}/2.0.0.tar", "is a .tar bundle"),
        (f"{APP}/2.0.0.ZIP", "named .ZIP, not .zip"),
    ],
)
def test_a_bundle_codedeploy_takes_but_canaryfleet_does_not_is_rejected_with_a_notice_saying_so(
    onboarded: LocalCloud, key: str, said: str
) -> None:
    # Given someone listening to the application's notices only (as its Slack channel does)
    sqs = onboarded.client("sqs")
    notifications = sqs.create_queue(QueueName="hello-app-notices")["QueueUrl"]
    onboarded.client("sns").subscribe(
        TopicArn=onboarded.output("NotificationTopicArn"),
        Protocol="sqs",
        Endpoint=sqs.get_queue_attributes(QueueUrl=notifications, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ],
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps({"application": [APP]})},
    )

    # When a build is uploaded as CodeDeploy also takes it (tar, tgz) or as a zip named .ZIP
    upload(onboarded, bundle(), key=key)

    # Then the upload's rule reaches StartRolloutFunction, which refuses it, deploys nothing,
    # and tells the application's channels what to upload instead
    [invocation] = [i for i in onboarded.runtime.invocations if i.logical_id == "StartRolloutFunction"]
    assert invocation.error_type is None
    nothing_deployed(onboarded)
    [message] = drain_queue(onboarded, notifications)
    assert message["outcome"] == "rejected" and said in message["reason"]
    assert f"upload the build zipped as {APP}/2.0.0.zip" in message["reason"]


@pytest.mark.parametrize(
    ("key", "version_id", "said"),
    [
        # Deleted for good between its upload and the event's (late, retried) delivery
        (
            f"{APP}/5.0.0.zip",
            "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
            "is not in the bucket: deleted since its upload",
        ),
        # An object named with a space ("5.0.0 rc1.zip"), which S3's notifications write as '+'
        (f"{APP}/5.0.0+rc1.zip", None, "or its key has a space where the event says '+'"),
    ],
)
def test_an_upload_whose_object_is_not_there_is_rejected_not_retried_into_the_dead_letter_queue(
    onboarded: LocalCloud, key: str, version_id: str | None, said: str
) -> None:
    # Given an upload's event naming an object version the bucket does not hold
    notifications = subscribe_queue(onboarded)
    event = load_event("start_rollout/object_created")
    event["detail"]["bucket"]["name"] = onboarded.output("ArtifactBucketName")
    event["detail"]["object"].update(key=key, **{"version-id": version_id} if version_id else {})
    if version_id is None:
        del event["detail"]["object"]["version-id"]

    # When StartRolloutFunction gets it
    result, error = invoke(onboarded, "StartRolloutFunction", event)

    # Then it is a rejection (an outcome: a retry cannot bring the object back), said to the
    # uploader, and nothing is deployed
    assert error is None, result
    assert result["status"] == "rejected" and said in result["reason"]
    nothing_deployed(onboarded)
    [message] = drain_queue(onboarded, notifications)
    assert message["outcome"] == "rejected" and said in message["reason"]


def test_other_objects_in_the_bucket_start_nothing(onboarded: LocalCloud) -> None:
    upload(onboarded, b"notes", key=f"{APP}/2.0.0.txt")

    assert [i for i in onboarded.runtime.invocations if i.logical_id == "StartRolloutFunction"] == []


def test_a_version_already_released_or_rejected_is_not_rolled_out_again(onboarded: LocalCloud) -> None:
    put_state_item(onboarded, f"APP#{APP}", "VERSION#2.0.0", status="released", rollout_id="earlier")

    upload(onboarded, bundle())

    nothing_deployed(onboarded)
    [record] = [i for i in table_items(onboarded, f"APP#{APP}") if i["sk"].startswith("ROLLOUT#")]
    assert record["reason"] == (
        "version 2.0.0 of hello-app was already released (rollout earlier); upload a new version"
    )


def test_an_in_place_rollout_is_refused_while_the_green_color_serves(onboarded: LocalCloud) -> None:
    # Given an application switched back to in place after a blue/green release left green live
    put_state_item(onboarded, f"APP#{APP}", "RELEASE#CURRENT", revision="{}", color="green")

    upload(onboarded, bundle())

    nothing_deployed(onboarded)
    [record] = [i for i in table_items(onboarded, f"APP#{APP}") if i["sk"].startswith("ROLLOUT#")]
    assert record["reason"].startswith("hello-app is in place again but its green color serves")


def test_duplicated_and_late_s3_events_start_one_rollout(onboarded: LocalCloud) -> None:
    event = upload(onboarded, bundle())
    function = onboarded.resource("StartRolloutFunction")

    for _ in range(2):  # EventBridge delivers at least once, sometimes twice
        onboarded.client("lambda").invoke(
            FunctionName=function, InvocationType="Event", Payload=json.dumps(event)
        )
    onboarded.wait_idle()
    late, error = invoke(onboarded, "StartRolloutFunction", event)

    assert error is None and late["status"] == "duplicate"
    assert len(onboarded.executions("RolloutStateMachine")) == 1
    items = eventually(lambda: [i for i in table_items(onboarded, f"APP#{APP}") if i["sk"] == "LOCK"])
    assert len(items) == 1
    assert [i for i in table_items(onboarded, f"APP#{APP}") if i["sk"].startswith("QUEUE#")] == []
    assert len(onboarded.codedeploy.revisions["hello-app"]) == 1, "the revision is registered once"


@pytest.mark.parametrize("sent_as", ["hello-app/2.0.0+build.5.zip", "hello-app/2.0.0%2Bbuild.5.zip"])
def test_a_version_with_a_plus_rolls_out_whether_the_event_url_encodes_its_key_or_not(
    onboarded: LocalCloud, sent_as: str
) -> None:
    # S3 URL-encodes keys in its SNS, SQS and Lambda notifications; its EventBridge page is silent.
    bucket = onboarded.output("ArtifactBucketName")
    rule = onboarded.resource("StartRolloutFunctionArtifactUploaded")
    onboarded.client("events").disable_rule(Name=rule)
    try:
        onboarded.client("s3").put_object(Bucket=bucket, Key="hello-app/2.0.0+build.5.zip", Body=bundle())
    finally:
        onboarded.client("events").enable_rule(Name=rule)
    event = json.loads(json.dumps(onboarded.s3_events.sent[-1]))
    event["detail"]["object"]["key"] = sent_as

    started, error = invoke(onboarded, "StartRolloutFunction", event)

    assert error is None and started["status"] == "started", started
    [revision] = onboarded.codedeploy.revisions["hello-app"]
    assert revision["revision"]["s3Location"]["key"] == "hello-app/2.0.0+build.5.zip"


def test_a_second_version_uploaded_while_the_first_rolls_out_queues_behind_it(onboarded: LocalCloud) -> None:
    upload(onboarded, bundle())
    upload(onboarded, bundle(), key=f"{APP}/2.0.1.zip")

    assert len(onboarded.executions("RolloutStateMachine")) == 2

    def both_waiting_one_holding_the_lock() -> bool:
        items = table_items(onboarded, f"APP#{APP}")
        queued = [i for i in items if i["sk"].startswith("QUEUE#") and i.get("token")]
        return len([i for i in items if i["sk"] == "LOCK"]) == 1 and len(queued) == 1

    eventually(both_waiting_one_holding_the_lock)
    lock = next(i for i in table_items(onboarded, f"APP#{APP}") if i["sk"] == "LOCK")
    assert lock["rollout_id"].startswith("hello-app-2_0_0-"), "the first upload goes first"


def test_the_same_version_uploaded_again_while_it_rolls_out_is_refused_and_the_first_goes_on(
    onboarded: LocalCloud,
) -> None:
    # Given version 2.0.0 rolling out (it holds the lock, or waits in the queue)
    upload(onboarded, bundle())
    [first] = onboarded.executions("RolloutStateMachine")
    notifications = subscribe_queue(onboarded)

    # When a retried CI job uploads it again (same key: S3 makes a new object version, so the
    # event is not a duplicate of the first)
    upload(onboarded, bundle())

    # Then the second upload is rejected with its reason, and nothing else starts
    records = [i for i in table_items(onboarded, f"APP#{APP}") if i["sk"].startswith("ROLLOUT#")]
    [refused] = [r for r in records if r.get("outcome") == "rejected"]
    [running] = [r for r in records if r is not refused]
    assert refused["reason"] == (
        f"version 2.0.0 of hello-app is already rolling out (rollout {running['rollout_id']}); "
        "a version is rolled out once: upload a new version"
    )
    assert onboarded.executions("RolloutStateMachine") == [first]
    assert "outcome" not in running, "the first rollout goes on"
    assert len(onboarded.codedeploy.revisions["hello-app"]) == 1, "the second revision is not registered"
    # (the first rollout's own notices, such as its start, may be on the topic too)
    [message] = [m for m in drain_queue(onboarded, notifications) if m.get("outcome") == "rejected"]
    assert message["rollout_id"] == refused["rollout_id"] and "already rolling out" in message["reason"]
    versions = [i for i in table_items(onboarded, f"APP#{APP}") if i["sk"].startswith("VERSION#")]
    assert versions == [], "the version is decided by its rollout, not by the refused upload"


def unannounced_uploads(cloud: LocalCloud, *bodies: bytes) -> list[dict[str, Any]]:
    """Upload each body as 2.0.0 with the upload rule disabled; the S3 events EventBridge got."""
    rule = cloud.resource("StartRolloutFunctionArtifactUploaded")
    events = cloud.client("events")
    events.disable_rule(Name=rule)
    try:
        for body in bodies:
            cloud.client("s3").put_object(
                Bucket=cloud.output("ArtifactBucketName"), Key=f"{APP}/2.0.0.zip", Body=body
            )
    finally:
        events.enable_rule(Name=rule)
    return cloud.s3_events.sent[-len(bodies) :]


def start_rollout_with(cloud: LocalCloud, store: DynamoRolloutStore) -> Callable[[dict[str, Any]], str]:
    """start_rollout's logic with its real adapters on the cloud, and ``store`` as its state."""
    for service in ("dynamodb", "s3", "ssm", "codedeploy", "stepfunctions", "sns"):
        client(service)  # made once, before threads share them

    def start(event: dict[str, Any]) -> str:
        result = start_rollout(
            S3EventNotificationEventBridgeModel.model_validate(event),
            S3ArtifactStore(),
            SsmRegistry(),
            store,
            CodeDeploy(),
            StepFunctionsRolloutWorkflow(cloud.resource("RolloutStateMachine")),
            SnsNotifier(cloud.resource("NotificationTopic")),
            SystemClock(),
            SnsApprovalEmail(cloud.resource("ApprovalEmailTopic")),
        )
        return result.reason or result.status

    return start


class ReadingTogether(DynamoRolloutStore):
    """The state table, where each of two callers' first read of the rollouts in progress
    returns only once both have made it: neither has queued yet."""

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self._together = threading.Barrier(2, timeout=20)
        self._waited: set[int] = set()

    def rollouts_in_progress(self, application: str) -> list[str]:
        found = super().rollouts_in_progress(application)
        if threading.get_ident() not in self._waited:
            self._waited.add(threading.get_ident())
            self._together.wait()
        return found


def test_two_uploads_of_one_version_at_the_same_moment_roll_it_out_once(onboarded: LocalCloud) -> None:
    # Given two uploads of 2.0.0 whose events come at the same moment (a CI job and its retry),
    # each checked against the rollouts in progress before either takes its place in the queue
    events = unannounced_uploads(onboarded, bundle(), bundle())
    start = start_rollout_with(onboarded, ReadingTogether(onboarded.output("StateTableName")))

    # When both are handled at once
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(start, events))

    # Then one rolls out and the other is refused, naming it; nothing of the refused one is registered
    records = [i for i in table_items(onboarded, f"APP#{APP}") if i["sk"].startswith("ROLLOUT#")]
    [refused] = [r for r in records if r.get("outcome") == "rejected"]
    [running] = [r for r in records if r is not refused]
    assert sorted(outcomes) == sorted(["started", refused["reason"]])
    assert refused["reason"] == (
        f"version 2.0.0 of hello-app is already rolling out (rollout {running['rollout_id']}); "
        "a version is rolled out once: upload a new version"
    )
    assert len(onboarded.executions("RolloutStateMachine")) == 1
    assert len(onboarded.codedeploy.revisions["hello-app"]) == 1


@pytest.mark.parametrize(
    ("claimed_ago", "execution_started", "outcome"),
    [
        pytest.param(timedelta(minutes=20), False, "started", id="upload lost, older than a Lambda timeout"),
        pytest.param(
            timedelta(seconds=5), False, "refused", id="upload may still be on its way to the queue"
        ),
        pytest.param(timedelta(seconds=5), True, "started", id="execution failed without an outcome"),
    ],
)
def test_a_claim_whose_rollout_holds_no_place_is_taken_over_once_it_cannot_be_on_its_way(
    onboarded: LocalCloud, claimed_ago: timedelta, execution_started: bool, outcome: str
) -> None:
    # Given 2.0.0 claimed by an upload that holds neither the lock nor a place in the queue: lost
    # after its claim (nothing recorded), or whose execution started and failed before its turn
    claimed_at = datetime.now(UTC) - claimed_ago
    put_state_item(
        onboarded, f"APP#{APP}", "ROLLING#2.0.0", rollout_id="lost", claimed_at=claimed_at.isoformat()
    )
    if execution_started:
        store = DynamoRolloutStore(onboarded.output("StateTableName"))
        artifact = ArtifactRef.from_object(onboarded.output("ArtifactBucketName"), f"{APP}/2.0.0.zip")
        store.create(
            RolloutInput(rollout_id="lost", application=APP, version="2.0.0", artifact=artifact), claimed_at
        )
        store.mark_started(APP, "lost", "arn:aws:states:us-east-1:123456789012:execution:rollout:lost")

    # When 2.0.0 is uploaded again
    upload(onboarded, bundle())

    # Then it rolls out once the claim's upload cannot be on its way to the queue; until then it is refused
    records = [i for i in table_items(onboarded, f"APP#{APP}") if i["sk"].startswith("ROLLOUT#")]
    [record] = [r for r in records if r["rollout_id"] != "lost"]
    claim = {i["sk"]: i for i in table_items(onboarded, f"APP#{APP}")}["ROLLING#2.0.0"]
    if outcome == "started":
        assert "outcome" not in record and record["status"] == "started"
        assert claim["rollout_id"] == record["rollout_id"]
        assert len(onboarded.executions("RolloutStateMachine")) == 1
    else:
        assert record["reason"].startswith(
            "version 2.0.0 of hello-app is already rolling out (rollout lost);"
        )
        assert claim["rollout_id"] == "lost"
        nothing_deployed(onboarded)


def test_what_codedeploy_ignores_and_an_unsafe_build_url_are_noted_on_the_rollout(
    onboarded: LocalCloud,
) -> None:
    appspec = APPSPEC + b"files:\n  - source: app\n    destination: /opt/app\n    overwrite: true\n"
    body = zipped({"appspec.yml": appspec, "scripts/start.sh": b"", "app/index.html": b"hi"})
    bucket = onboarded.output("ArtifactBucketName")

    onboarded.client("s3").put_object(
        Bucket=bucket,
        Key=f"{APP}/2.0.0.zip",
        Body=body,
        Metadata={"commit": "9fceb02d", "build-url": "javascript:alert(document.cookie)"},
    )
    onboarded.wait_idle()

    [record] = [i for i in table_items(onboarded, f"APP#{APP}") if i["sk"].startswith("ROLLOUT#")]
    notes = [note["S"] for note in record["bundle_notes"]]
    assert notes == [
        "appspec.yml: files[0].overwrite (line 9) is ignored by CodeDeploy on EC2",
        "build-url metadata dropped: only an https:// URL is shown (it was 'javascript')",
    ]
    assert "build_url" not in record
    assert record["commit"] == "9fceb02d"


@pytest.mark.parametrize("commit", ["f" * 129, "9fceb02d\u0007rm -rf"], ids=["too-long", "control"])
def test_commit_metadata_that_is_not_one_short_line_is_dropped_and_the_rollout_starts(
    onboarded: LocalCloud, commit: str
) -> None:
    # Given an upload whose commit metadata the rollout record could not hold
    bucket = onboarded.output("ArtifactBucketName")
    onboarded.client("s3").put_object(
        Bucket=bucket, Key=f"{APP}/2.0.0.zip", Body=bundle(), Metadata={"commit": commit}
    )
    onboarded.wait_idle()

    # Then the build rolls out without it, and the record says it was dropped
    [record] = [i for i in table_items(onboarded, f"APP#{APP}") if i["sk"].startswith("ROLLOUT#")]
    assert record["status"] != "rejected"
    assert "commit" not in record
    assert [note["S"] for note in record["bundle_notes"]] == [
        "commit metadata dropped: not one printable line of at most 128 characters"
    ]
    assert len(onboarded.executions("RolloutStateMachine")) == 1


def test_a_bake_too_short_for_its_analysis_to_fail_latency_is_noted_first_on_the_rollout(
    onboarded: LocalCloud,
) -> None:
    # Given a bundle whose policy bakes 5 minutes, the least a bundle may ask for, and a second
    # step long enough: the first leaves its analysis 3 one-minute intervals a side
    rollout_yaml = (
        b"steps:\n  - {kind: set_weight, weight: 5}\n  - {kind: bake, duration_seconds: 300}\n"
        b"  - {kind: set_weight, weight: 20}\n  - {kind: bake, duration_seconds: 900}\n  - {kind: approval}\n"
    )
    appspec = APPSPEC + b"files:\n  - source: app\n    destination: /opt/app\n    overwrite: true\n"
    files = {
        "appspec.yml": appspec,
        "scripts/start.sh": b"",
        "app/index.html": b"hi",
        "rollout.yaml": rollout_yaml,
    }
    body = zipped(files)

    # When it is uploaded, the rollout starts and its record notes the short bake before the rest
    upload(onboarded, body)

    [record] = DynamoRolloutStore(onboarded.output("StateTableName")).list_rollouts(APP)
    assert record.status == "started"
    assert len(record.bundle_notes) == 2
    assert record.bundle_notes[0].startswith(
        "steps[1] bakes 300 s, so its analysis may have only 3 intervals of 60 s a side"
    )
    assert "Bake at least 360 s to judge it at once." in record.bundle_notes[0]
    assert (
        record.bundle_notes[1] == "appspec.yml: files[0].overwrite (line 9) is ignored by CodeDeploy on EC2"
    )


def test_a_start_retried_after_its_execution_took_its_turn_leaves_no_place_that_blocks_the_queue(
    onboarded: LocalCloud,
) -> None:
    # Given a start whose record of itself fails once its execution has started: Lambda tries
    # the event again (an async invocation's function error), and by then the execution has
    # taken the application's turn, and with it its place in the queue
    store = DynamoRolloutStore(onboarded.output("StateTableName"))
    starts: list[str] = []
    update_item, run = DynamoHandler.update_item, onboarded.runtime.run
    start_function = onboarded.function_names["StartRolloutFunction"]

    def refused_once(handler: Any) -> Any:
        values = json.dumps(handler.body.get("ExpressionAttributeValues", {}))
        if len(starts) == 1 and '{"S": "started"}' in values:
            starts.append("failed")
            raise MockValidationException("the start's record failed (injected)")
        return update_item(handler)

    def retried_late(function_name: str, payload: Any, invocation_type: str) -> tuple[bytes, bool]:
        if function_name.rsplit(":", 1)[-1] == start_function:  # a name or an ARN
            if starts:  # the retry comes once the execution took its turn, as Lambda's a minute later
                eventually(lambda: store.lock(APP), timeout=30)
            starts.append("invoked")
        return run(function_name, payload, invocation_type)

    with (
        mock.patch.object(DynamoHandler, "update_item", refused_once),
        mock.patch.object(onboarded.runtime, "run", retried_late),
    ):
        upload(onboarded, bundle())

    # Then the retry starts nothing twice and takes no place again: the queue is empty, and the
    # next upload's place will be its head
    assert starts == ["invoked", "failed", "invoked"]
    [record] = store.list_rollouts(APP)
    assert record.status == "started"
    assert len(onboarded.executions("RolloutStateMachine")) == 1
    assert store.lock(APP).rollout_id == record.rollout_id
    assert store.queue_length(APP) == 0 and store.queue_head(APP) is None


def test_the_rollout_keeps_the_policy_its_bundles_rollout_yaml_gives(onboarded: LocalCloud) -> None:
    rollout_yaml = (
        b"steps:\n  - {kind: set_weight, weight: 5}\n  - {kind: bake, duration_seconds: 600}\n"
        b"  - {kind: set_weight, weight: 20}\n  - {kind: bake, duration_seconds: 900}\n  - {kind: approval}\n"
    )
    body = zipped({"appspec.yml": APPSPEC, "scripts/start.sh": b"", "rollout.yaml": rollout_yaml})

    upload(onboarded, body)

    [record] = [
        r
        for r in DynamoRolloutStore(onboarded.output("StateTableName")).list_rollouts(APP)
        if r.version == "2.0.0"
    ]
    assert record.policy is not None
    assert [getattr(s, "weight", None) for s in record.policy.steps] == [5, None, 20, None, None]


def test_a_bake_sampled_under_a_minute_for_longer_than_cloudwatch_keeps_such_data_is_rejected() -> None:
    # Given an application whose policy bakes 4 hours and judges its own metric every 30 seconds:
    # CloudWatch keeps such data 3 hours, so the analysis would find none and be inconclusive
    with LocalCloud() as cloud:
        own = {"metric": {"namespace": "Pay", "metric_name": "Succeeded", "stat": "Sum"}}
        analysis = AnalysisSpec.model_validate(
            {
                "interval_seconds": 30,
                "alb_metrics": [],
                "metrics": [{"name": "payments", "direction": "decrease", "value": own}],
            }
        )
        too_long = RolloutPolicy(
            steps=(SetWeight(weight=5), Bake(duration_seconds=4 * 3_600, analysis=analysis), Approval())
        )

        # When a build is uploaded, Then it is rejected at once saying why and what to set
        assert _rejection_of_an_upload_under(cloud, too_long) == (
            "the rollout policy cannot be analysed: steps[1] bakes 14400 s sampled every 30 s, but "
            "CloudWatch keeps data of a period under 60 s for 3 hours and the analysis reads the bake "
            "from its start: bake at most 10500 s, or make interval_seconds 60 or more"
        )


def _rejection_of_an_upload_under(cloud: LocalCloud, policy: RolloutPolicy) -> str:
    """Onboard the application with ``policy``, upload a build: the reason it was rejected for,
    once it is sure nothing was deployed."""
    app = deploy_fleet(cloud, APP).model_copy(update={"policy": policy})
    cloud.client("ssm").put_parameter(
        Name=registry_parameter(APP), Value=app.model_dump_json(), Type="String", Overwrite=True
    )
    upload(cloud, bundle())
    [record] = [i for i in table_items(cloud, f"APP#{APP}") if i["sk"].startswith("ROLLOUT#")]
    assert (record["status"], record["outcome"]) == ("rejected", "rejected")
    nothing_deployed(cloud)
    return str(record["reason"])


def test_an_analysis_finer_than_the_load_balancers_minute_is_rejected_on_aws_s_period() -> None:
    # Given the platform as on AWS, whose load balancers publish one-minute metrics, and an
    # application whose policy samples them every 10 seconds
    with LocalCloud(parameters={"LoadBalancerMetricsPeriod": "60"}) as cloud:
        too_fine = RolloutPolicy(
            steps=(
                SetWeight(weight=5),
                Bake(duration_seconds=600, analysis=AnalysisSpec(interval_seconds=10)),
                Approval(),
            )
        )

        # When a build is uploaded, Then it is rejected saying which step and what to set
        assert _rejection_of_an_upload_under(cloud, too_fine) == (
            "the rollout policy cannot be analysed: steps[1] samples the load balancer's metrics "
            "every 10 s, but it publishes them every 60 s: make interval_seconds a multiple of 60"
        )
