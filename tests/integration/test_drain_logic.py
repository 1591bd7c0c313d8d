"""Drains step by step: request, dispatch, completion, against DynamoDB and S3 on moto.

The state table is created from template.yaml's definition; the other AWS edges (tags,
target groups, the queue, Run Command, termination hooks, notifications) are the unit
tests' in-memory fakes (``tests/unit/drain_fakes.py``), with the adapters' contracts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from canaryfleet.adapters.clients import client
from canaryfleet.adapters.drain_store import DynamoDrainStore
from canaryfleet.adapters.drains import S3LogObjects, SqsDrainQueue
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.errors import DrainNotReady
from canaryfleet.logic.drain import Drains
from canaryfleet.logic.drain_complete import complete_drain
from canaryfleet.logic.drain_dispatch import BatchOutcome, dispatch_drains, redelivery_seconds
from canaryfleet.logic.drain_request import DrainRequests, request_drain
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.drain import (
    CommandInvocationDetail,
    DrainCompletion,
    DrainEvent,
    DrainOrder,
    DrainRecord,
    DrainRequestResult,
    DrainStatus,
)
from canaryfleet.ports.clock import FixedClock

from tests.helpers import load_event
from tests.integration.helpers import eventually
from tests.integration.state_tables import create_state_table, moto_tables
from tests.unit.drain_fakes import (
    FakeDirectory,
    FakeHooks,
    FakeQueue,
    FakeRegistry,
    FakeRunCommand,
    FakeTargets,
    RecordedAlerts,
)

APP = "orders-api"
DOCUMENT = "canaryfleet-drain"
CANARY_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders-canary/0123456789abcdef"
LIVE_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders-live/fedcba9876543210"
NOW = datetime(2026, 11, 26, 10, 15, 40, tzinfo=UTC)
CONFIG = AppConfig.model_validate(
    {
        "application": APP,
        "codedeploy_application": APP,
        "listener_rule_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/s/1/2/3",
        "canary": {
            "deployment_group": f"{APP}-canary",
            "target_group_arn": CANARY_TG,
            "auto_scaling_group": f"{APP}-canary",
        },
        "live": {
            "deployment_group": f"{APP}-live",
            "target_group_arn": LIVE_TG,
            "auto_scaling_group": f"{APP}-live",
        },
    }
)


def instance_id(n: int) -> str:
    return f"i-{n:017x}"


# --- the platform --------------------------------------------------------------------------
@dataclass
class Platform:
    table: str
    bucket: str
    store: DynamoDrainStore
    rollouts: DynamoRolloutStore
    directory: FakeDirectory
    targets: FakeTargets
    queue: FakeQueue
    hooks: FakeHooks
    run_command: FakeRunCommand
    notifier: RecordedAlerts
    registry: FakeRegistry

    def requests(self, at: datetime) -> DrainRequests:
        return DrainRequests(
            self.directory,
            self.registry,
            self.store,
            self.rollouts,
            self.targets,
            self.queue,
            self.hooks,
            FixedClock(at),
        )

    def drains(self, at: datetime) -> Drains:
        return Drains(
            self.store,
            self.hooks,
            self.run_command,
            S3LogObjects(),
            self.notifier,
            DOCUMENT,
            self.bucket,
            FixedClock(at),
        )

    def dispatch(self, batch: SqsModel, at: datetime = NOW) -> BatchOutcome:
        return dispatch_drains(batch, self.drains(at), None)

    def complete(self, detail: CommandInvocationDetail, at: datetime = NOW) -> DrainCompletion:
        return complete_drain(detail, self.drains(at))

    def leave(self, sample: str, instance: str, at: datetime = NOW, **detail: Any) -> DrainRequestResult:
        event = load_event(f"drain_request/{sample}")
        key = "EC2InstanceId" if sample == "lifecycle_terminate" else "instance-id"
        if sample == "lifecycle_terminate":  # the hook is the instance's own group's
            group = self.directory.instances.get(instance, {}).get("aws:autoscaling:groupName")
            event["detail"]["AutoScalingGroupName"] = group or event["detail"]["AutoScalingGroupName"]
        event["detail"] |= {key: instance, **detail}
        event["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if sample == "lifecycle_terminate":
            self.hooks.active.add(event["detail"]["LifecycleActionToken"])
        return request_drain(DrainEvent.model_validate(event), self.requests(at))

    def batch(self, orders: list[DrainOrder] | None = None, bodies: list[str] | None = None) -> SqsModel:
        payloads = (
            bodies if bodies is not None else [o.model_dump_json() for o in (orders or self.queue.orders)]
        )
        template = load_event("drain_dispatch/orders")["Records"][0]
        return SqsModel.model_validate(
            {"Records": [template | {"messageId": f"m-{n}", "body": body} for n, body in enumerate(payloads)]}
        )

    def record(self, instance: str) -> DrainRecord:
        found = self.store.get(APP, instance)
        assert found is not None
        return found

    def table_items(self) -> list[dict[str, Any]]:
        return list(boto3.client("dynamodb").scan(TableName=self.table)["Items"])


@pytest.fixture(scope="module")
def aws() -> Iterator[itertools.count[int]]:
    """moto for the module; each test gets its own table and bucket (numbered)."""
    with moto_tables() as numbers:
        yield numbers


@pytest.fixture
def platform(aws: itertools.count[int]) -> Platform:
    """A state table (as template.yaml defines it) and a log bucket of its own."""
    n = next(aws)
    table, bucket = f"state-{n}", f"canaryfleet-logs-{n}"
    create_state_table(table)
    boto3.client("s3").create_bucket(Bucket=bucket)
    return Platform(
        table,
        bucket,
        DynamoDrainStore(table),
        DynamoRolloutStore(table),
        FakeDirectory(),
        FakeTargets(),
        FakeQueue(),
        FakeHooks(),
        FakeRunCommand(),
        RecordedAlerts(),
        FakeRegistry(
            CONFIG,
            CONFIG.model_copy(
                update={
                    "application": "batch-jobs",
                    "drain_on_rebalance": True,
                    "canary": CONFIG.canary.model_copy(update={"auto_scaling_group": "batch-jobs-canary"}),
                    "live": CONFIG.live.model_copy(update={"auto_scaling_group": "batch-jobs-live"}),
                }
            ),
        ),
    )


def member(platform: Platform, n: int, side: str = "live") -> str:
    instance = platform.directory.add(instance_id(n), side)
    platform.targets.registered[CANARY_TG if side == "canary" else LIVE_TG].add(instance)
    return instance


# --- request ---------------------------------------------------------------------------------
def test_an_instance_no_application_owns_is_ignored_and_nothing_is_written(platform: Platform) -> None:
    result = platform.leave("spot_interruption", instance_id(99))

    assert (result.status, result.reason) == (
        "ignored",
        "no canaryfleet:application tag: not an instance of a canaryfleet fleet",
    )
    assert platform.table_items() == [] and platform.queue.orders == []


def test_a_spot_warning_for_an_application_not_onboarded_is_ignored(platform: Platform) -> None:
    platform.directory.add(instance_id(1), application="legacy-app")

    result = platform.leave("spot_interruption", instance_id(1))

    assert result.status == "ignored" and "legacy-app" in (result.reason or "")
    assert platform.table_items() == []


def test_a_terminating_instance_its_hook_holds_is_drained_though_its_application_is_not_onboarded(
    platform: Platform,
) -> None:
    # The platform's termination hook holds it (a fleet stack being deleted has lost its registry
    # entry first): its logs go where the application's go by default, and the hook is answered
    platform.directory.add(instance_id(1), application="legacy-app")

    result = platform.leave("lifecycle_terminate", instance_id(1))

    assert result.status == "queued"
    assert [(o.application, o.log_prefix) for o in platform.queue.orders] == [("legacy-app", "legacy-app/")]


def test_a_rebalance_recommendation_is_ignored_where_the_application_does_not_drain_on_it(
    platform: Platform,
) -> None:
    member(platform, 1)

    result = platform.leave("rebalance_recommendation", instance_id(1))

    assert result.status == "ignored" and platform.queue.orders == []


def test_a_rebalance_recommendation_drains_where_the_application_asks_for_it(platform: Platform) -> None:
    instance = platform.directory.add(instance_id(1), application="batch-jobs")

    result = platform.leave("rebalance_recommendation", instance)

    assert result.status == "queued"
    assert [o.budget.flush_first for o in platform.queue.orders] == [True]


def test_a_termination_deregisters_the_instance_from_its_sides_group_and_queues_one_order(
    platform: Platform,
) -> None:
    instance = member(platform, 1, "live")
    platform.targets.registered[CANARY_TG].add(instance_id(2))

    result = platform.leave("lifecycle_terminate", instance)

    assert result.status == "queued"
    assert platform.targets.registered == {CANARY_TG: {instance_id(2)}, LIVE_TG: set()}
    (order,) = platform.queue.orders
    assert (order.instance_id, order.log_prefix, order.budget.flush_first) == (instance, f"{APP}/", False)
    record = platform.record(instance)
    assert (record.status, record.side, record.deregistered_from) == (DrainStatus.QUEUED, "live", (LIVE_TG,))


def test_an_instance_whose_side_is_unknown_leaves_both_groups(platform: Platform) -> None:
    instance = platform.directory.add(instance_id(1))
    # neither its role tag nor its group's name says which side it is on
    platform.directory.instances[instance].pop("role")
    platform.directory.instances[instance].pop("aws:autoscaling:groupName")
    platform.targets.registered[LIVE_TG].add(instance)

    platform.leave("spot_interruption", instance)

    assert platform.record(instance).side is None
    assert platform.targets.registered == {CANARY_TG: set(), LIVE_TG: set()}


def test_a_duplicate_event_queues_nothing_more(platform: Platform) -> None:
    instance = member(platform, 1)
    platform.leave("lifecycle_terminate", instance)

    again = platform.leave("lifecycle_terminate", instance)

    assert again.status == "duplicate"
    assert len(platform.queue.orders) == 1


@pytest.mark.parametrize(
    "events",
    [
        ["spot_interruption"] * 3,
        ["rebalance_recommendation"] * 3,
        ["lifecycle_terminate", "spot_interruption", "lifecycle_terminate"],
        ["spot_interruption", "rebalance_recommendation", "lifecycle_terminate", "spot_interruption"],
    ],
    ids=["spot-thrice", "rebalance-thrice", "hook-spot-hook", "out-of-order"],
)
def test_any_leaving_event_delivered_again_or_out_of_order_queues_one_order(
    platform: Platform, events: list[str]
) -> None:
    instance = platform.directory.add(instance_id(1), application="batch-jobs")  # drains on rebalance

    statuses = [platform.leave(event, instance).status for event in events]

    assert statuses[0] == "queued" and "queued" not in statuses[1:]
    assert len(platform.queue.orders) == 1


def test_a_spot_warning_gives_the_drain_the_spot_budget_and_the_notices_end(platform: Platform) -> None:
    instance = member(platform, 1)

    platform.leave("spot_interruption", instance, at=NOW)

    record = platform.record(instance)
    assert record.deadline == NOW + timedelta(seconds=120)
    assert (record.budget.execution_seconds, record.budget.flush_first) == (90, True)


def test_the_termination_hook_of_an_interrupted_instance_joins_its_drain(platform: Platform) -> None:
    instance = member(platform, 1)
    platform.leave("spot_interruption", instance)

    joined = platform.leave("lifecycle_terminate", instance)

    assert joined.status == "joined"
    assert len(platform.queue.orders) == 1
    record = platform.record(instance)
    assert (record.trigger, set(record.triggers)) == ("spot", {"spot", "lifecycle"})
    assert record.hook is not None and record.hook.name == "canaryfleet-drain"


def test_a_spot_warning_that_joins_a_queued_termination_makes_the_drain_logs_first(
    platform: Platform,
) -> None:
    instance = member(platform, 1)
    platform.leave("lifecycle_terminate", instance)
    platform.leave("spot_interruption", instance)

    platform.dispatch(platform.batch(), NOW)

    ((_, parameters),) = platform.run_command.calls
    assert (parameters["FlushFirst"], parameters["StopBudgetSeconds"]) == (["true"], ["30"])


def test_a_termination_hook_after_the_drain_ended_is_completed_at_once(platform: Platform) -> None:
    instance = member(platform, 1)
    platform.leave("spot_interruption", instance)
    platform.store.finish(APP, instance, status="drained", outcome="drained")

    result = platform.leave("lifecycle_terminate", instance)

    assert result.status == "joined" and "hook completed" in (result.reason or "")
    assert platform.hooks.completed == [instance]
    assert platform.record(instance).hook_completed_at is not None


def _rollout_running(platform: Platform) -> str:
    client = boto3.client("dynamodb")
    client.put_item(
        TableName=platform.table,
        Item={
            "pk": {"S": f"APP#{APP}"},
            "sk": {"S": "LOCK"},
            "owner": {"S": "arn:exec"},
            "rollout_id": {"S": "r1"},
        },
    )
    record = {"rollout_id": "r1", "application": APP, "version": "1.0.0", "artifact_bucket": "artifacts"}
    record |= {"artifact_key": f"{APP}/1.0.0.zip", "received_at": NOW.isoformat()}
    item = {"pk": {"S": f"APP#{APP}"}, "sk": {"S": "ROLLOUT#r1"}} | {k: {"S": v} for k, v in record.items()}
    client.put_item(TableName=platform.table, Item=item)
    return "r1"


def test_a_canary_spot_interruption_during_a_rollout_is_recorded_on_it_once(platform: Platform) -> None:
    rollout_id = _rollout_running(platform)
    instance = member(platform, 1, "canary")

    platform.leave("spot_interruption", instance, at=NOW)
    platform.leave("spot_interruption", instance, at=NOW)
    platform.leave("lifecycle_terminate", instance, at=NOW)

    rollout = platform.rollouts.get(APP, rollout_id)
    assert rollout is not None
    assert [i.model_dump(mode="json") for i in rollout.canary_interruptions] == [
        {"instance": instance, "at": NOW.isoformat()}
    ]
    assert rollout.audit[0].kind == "canary_spot_interruption"
    assert platform.record(instance).canary_interruption_rollout == rollout_id


def test_a_live_spot_interruption_leaves_the_rollout_alone(platform: Platform) -> None:
    rollout_id = _rollout_running(platform)

    platform.leave("spot_interruption", member(platform, 1, "live"))

    assert getattr(platform.rollouts.get(APP, rollout_id), "canary_interruptions", None) == []


def test_a_canary_termination_hook_is_no_interruption(platform: Platform) -> None:
    rollout_id = _rollout_running(platform)

    platform.leave("lifecycle_terminate", member(platform, 1, "canary"))

    assert getattr(platform.rollouts.get(APP, rollout_id), "canary_interruptions", None) == []


def test_a_drain_that_stopped_before_it_was_queued_is_queued_by_the_next_delivery(platform: Platform) -> None:
    instance = member(platform, 1)
    platform.queue.fail = True
    with pytest.raises(ClientError):
        platform.leave("lifecycle_terminate", instance)
    platform.queue.fail = False

    result = platform.leave("lifecycle_terminate", instance)

    assert result.status == "queued"
    assert [o.instance_id for o in platform.queue.orders] == [instance]


# --- dispatch --------------------------------------------------------------------------------
def _queued(platform: Platform, count: int, sample: str = "lifecycle_terminate") -> list[str]:
    instances = [member(platform, n) for n in range(1, count + 1)]
    for instance in instances:
        platform.leave(sample, instance)
    return instances


def test_one_send_command_serves_up_to_fifty_instances(platform: Platform) -> None:
    _queued(platform, 53)

    outcome = platform.dispatch(platform.batch(), NOW)

    assert [len(ids) for ids, _ in platform.run_command.calls] == [50, 3]
    assert len(outcome.commands) == 2 and outcome.failed == {}


def test_every_drain_of_a_batch_records_its_command_and_run(platform: Platform) -> None:
    (instance,) = _queued(platform, 1)

    platform.dispatch(platform.batch(), NOW)

    record = platform.record(instance)
    assert (record.status, record.attempts, record.run_id) == (DrainStatus.RUNNING, 1, "20261126T101540Z")
    assert record.manifest_key == f"{APP}/{instance}/20261126T101540Z/manifest.json"


def test_logs_first_and_stop_first_drains_take_separate_commands(platform: Platform) -> None:
    _queued(platform, 2, "lifecycle_terminate")
    platform.leave("spot_interruption", member(platform, 3))

    platform.dispatch(platform.batch(), NOW)

    flush_first = sorted((len(ids), p["FlushFirst"][0]) for ids, p in platform.run_command.calls)
    assert flush_first == [(1, "true"), (2, "false")]


def test_a_spot_drains_document_timeout_ends_before_the_instance(platform: Platform) -> None:
    platform.leave("spot_interruption", member(platform, 1), at=NOW)

    platform.dispatch(platform.batch(), NOW + timedelta(seconds=60))

    ((_, parameters),) = platform.run_command.calls
    assert parameters["ExecutionTimeout"] == ["55"]


def test_an_order_delivered_twice_runs_the_document_once(platform: Platform) -> None:
    _queued(platform, 1)
    order = platform.queue.orders[0]

    first = platform.dispatch(platform.batch([order, order]), NOW)
    second = platform.dispatch(platform.batch([order]), NOW)

    assert len(platform.run_command.calls) == 1
    assert (len(first.duplicates), len(second.duplicates)) == (1, 1)


def test_an_unreachable_instance_is_split_out_and_its_drain_ends_lost_with_its_hook_completed(
    platform: Platform,
) -> None:
    instances = _queued(platform, 6)
    platform.run_command.unreachable = {instances[4]}

    outcome = platform.dispatch(platform.batch(), NOW)

    assert sorted(i for ids, _ in platform.run_command.calls for i in ids) == sorted(
        set(instances) - {instances[4]}
    )
    assert outcome.lost == [instances[4]] and outcome.failed == {}
    lost = platform.record(instances[4])
    assert lost.outcome == "logs_lost" and "could not reach" in (lost.reason or "")
    assert platform.hooks.completed == [instances[4]]
    assert [kind for kind, _, _ in platform.notifier.sent] == ["drain.logs_lost"]


def test_a_send_command_that_fails_gives_the_claims_back_for_the_next_delivery(platform: Platform) -> None:
    _queued(platform, 2)
    platform.run_command.throttled = True

    outcome = platform.dispatch(platform.batch(), NOW)
    platform.run_command.throttled = False
    retried = platform.dispatch(platform.batch(), NOW)

    assert set(outcome.failed) == {"m-0", "m-1"}
    assert retried.failed == {} and len(platform.run_command.calls) == 1


def test_orders_whose_command_failed_come_back_in_seconds_not_after_the_visibility_timeout(
    platform: Platform,
) -> None:
    # The drain queue as template.yaml makes it: 180 s of visibility (six times the dispatcher's
    # timeout), longer than a Spot instance's two minutes
    queue = boto3.client("sqs").create_queue(
        QueueName=f"drains-{platform.table}", Attributes={"VisibilityTimeout": "180"}
    )["QueueUrl"]
    _queued(platform, 2)
    for order in platform.queue.orders:
        boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=order.model_dump_json())
    received = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    template = load_event("drain_dispatch/orders")["Records"][0]
    batch = SqsModel.model_validate(
        {
            "Records": [
                template
                | {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
                for m in received
            ]
        }
    )
    platform.run_command.throttled = True

    outcome = dispatch_drains(batch, platform.drains(NOW), SqsDrainQueue(queue))

    # Both come back once redelivery_seconds(1) = 5 s have passed, not after 180 s
    assert set(outcome.failed) == {m["MessageId"] for m in received}
    assert redelivery_seconds(1) == 5 and redelivery_seconds(2) == 10 and redelivery_seconds(9) == 60
    assert boto3.client("sqs").receive_message(QueueUrl=queue).get("Messages", []) == []
    again = eventually(
        lambda: boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"),
        timeout=10,
    )
    assert {m["MessageId"] for m in again} == set(outcome.failed)


def test_a_malformed_order_fails_its_message_and_writes_nothing(platform: Platform) -> None:
    outcome = platform.dispatch(platform.batch(bodies=['{"instance_id": "not-an-instance"}']), NOW)

    assert list(outcome.failed) == ["m-0"]
    assert platform.run_command.calls == [] and platform.table_items() == []


# --- completion --------------------------------------------------------------------------------
def _running(platform: Platform, sample: str = "lifecycle_terminate", at: datetime = NOW) -> DrainRecord:
    instance = member(platform, 1)
    platform.leave(sample, instance, at=at)
    platform.dispatch(platform.batch(), at)
    return platform.record(instance)


def _flush(
    platform: Platform, record: DrainRecord, files: dict[str, bytes], manifest: dict[str, Any] | None = None
) -> None:
    """What the document writes: the files with their SHA-256 checksums, then the manifest."""
    s3 = boto3.client("s3")
    prefix = f"{APP}/{record.instance_id}/{record.run_id}/"
    for name, body in files.items():
        s3.put_object(Bucket=platform.bucket, Key=prefix + name, Body=body, ChecksumAlgorithm="SHA256")
    document = manifest or {
        "instance_id": record.instance_id,
        "application": APP,
        "run_id": record.run_id,
        "mode": "drain",
        "created_at": NOW.isoformat(),
        "files": [
            {"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for n, b in files.items()
        ],
    }
    s3.put_object(Bucket=platform.bucket, Key=prefix + "manifest.json", Body=json.dumps(document).encode())


def _ended(
    record: DrainRecord, status: str = "Success", command: str | None = None
) -> CommandInvocationDetail:
    detail = load_event("drain_complete/command_invocation_success")["detail"]
    detail |= {
        "instance-id": record.instance_id,
        "status": status,
        "command-id": command or record.current_command,
    }
    return CommandInvocationDetail.model_validate(detail)


LOGS = {"app.log": b"GET / 200\n" * 50, "archive/app.1.log": b"\x00\x01" * 300}


def test_a_verified_manifest_ends_the_drain_drained_and_completes_the_hook(platform: Platform) -> None:
    record = _running(platform)
    _flush(platform, record, LOGS)

    result = platform.complete(_ended(record), NOW + timedelta(seconds=20))

    assert result.status == "drained"
    final = platform.record(record.instance_id)
    assert (final.outcome, final.bytes, final.file_count) == ("drained", 1100, 2)
    assert [f.name for f in final.manifest_files] == ["app.log", "archive/app.1.log"]
    assert final.duration_seconds == 20.0 and final.hook_completed_at is not None
    assert platform.hooks.completed == [record.instance_id]
    assert platform.notifier.sent == []


def test_a_missing_manifest_is_tried_once_more_under_a_heartbeat_and_a_later_run(platform: Platform) -> None:
    record = _running(platform)

    result = platform.complete(_ended(record), NOW)

    assert (result.status, result.reason) == (
        "retrying",
        f"no manifest at s3://{platform.bucket}/{record.manifest_key}",
    )
    retried = platform.record(record.instance_id)
    assert (retried.attempts, retried.status, retried.heartbeats) == (2, DrainStatus.RUNNING, 1)
    assert retried.run_id is not None and record.run_id is not None and retried.run_id > record.run_id
    assert platform.hooks.completed == [] and platform.hooks.heartbeats == [record.instance_id]


def test_a_second_failure_records_the_loss_alerts_and_still_completes_the_hook(platform: Platform) -> None:
    record = _running(platform)
    platform.complete(_ended(record, "Failed"), NOW)
    retried = platform.record(record.instance_id)

    result = platform.complete(_ended(retried, "Failed"), NOW + timedelta(seconds=5))

    assert result.status == "logs_lost"
    final = platform.record(record.instance_id)
    assert (final.outcome, final.reason) == ("logs_lost", "the drain document ended Failed (attempt 2 of 2)")
    assert platform.hooks.completed == [record.instance_id]
    ((kind, application, message),) = platform.notifier.sent
    assert (kind, application, message["termination_hook"]) == ("drain.logs_lost", APP, "completed")


def test_a_loss_notice_sns_throttles_leaves_the_loss_recorded_and_the_hook_completed(
    platform: Platform,
) -> None:
    # Given the notification topic throttled past botocore's retries (botocore sns,
    # ThrottledException: "Throttled", 429)
    platform.notifier = SnsNotifier("arn:aws:sns:us-east-1:123456789012:canaryfleet-notifications")  # type: ignore[assignment]
    record = _running(platform)
    platform.complete(_ended(record, "Failed"), NOW)
    retried = platform.record(record.instance_id)

    # When the second failure is recorded, its notice is best effort: the completion still ends
    # the drain lost and completes the hook, rather than failing to be retried whole
    with Stubber(client("sns")) as sns:
        sns.add_client_error("publish", service_error_code="Throttled", http_status_code=429)
        result = platform.complete(_ended(retried, "Failed"), NOW + timedelta(seconds=5))
        sns.assert_no_pending_responses()

    assert result.status == "logs_lost"
    assert platform.record(record.instance_id).outcome == "logs_lost"
    assert platform.hooks.completed == [record.instance_id]


def test_a_spot_drain_without_time_left_for_a_retry_is_lost_at_once(platform: Platform) -> None:
    record = _running(platform, "spot_interruption", at=NOW)

    result = platform.complete(_ended(record, "Failed"), NOW + timedelta(seconds=100))

    assert result.status == "logs_lost" and "no time left to try again (20 s" in (result.reason or "")
    assert len(platform.run_command.calls) == 1


def test_a_spot_run_that_timed_out_after_its_logs_were_in_s3_is_drained(platform: Platform) -> None:
    # Given a Spot drain whose document put its logs and manifest in S3 (logs first)
    record = _running(platform, "spot_interruption", at=NOW)
    _flush(platform, record, LOGS)

    # When the stop that follows outlasts the document's timeout, 100 s into the notice
    result = platform.complete(_ended(record, "TimedOut"), NOW + timedelta(seconds=100))

    # Then the manifest checked against S3 decides: drained, nothing told, nothing sent again
    final = platform.record(record.instance_id)
    assert (result.status, final.outcome, final.file_count) == ("drained", "drained", 2)
    assert result.reason == "the drain document ended TimedOut after its logs and manifest were in S3"
    assert final.reason == result.reason  # in the stored record, which `canaryfleet drains` lists
    assert platform.notifier.sent == [] and len(platform.run_command.calls) == 1


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (
            lambda m: m["files"].append({"name": "gone.log", "size": 3, "sha256": "0" * 64}),
            "gone.log is in the manifest",
        ),
        (lambda m: m["files"][0].update(size=1), "app.log has 500 bytes in S3, the manifest says 1"),
        (lambda m: m["files"][0].update(sha256="f" * 64), "app.log's SHA-256 in S3 differs"),
        (lambda m: m.update(instance_id="i-00000000000000bad"), "is for i-00000000000000bad"),
        (lambda m: m.update(mode="reboot"), "is unreadable"),
    ],
    ids=["missing-object", "wrong-size", "wrong-sha256", "other-instance", "unreadable"],
)
def test_a_manifest_that_does_not_match_s3_is_not_verified(
    platform: Platform, spoil: Any, problem: str
) -> None:
    record = _running(platform)
    body = b"GET / 200\n" * 50
    manifest = {
        "instance_id": record.instance_id,
        "application": APP,
        "run_id": record.run_id,
        "mode": "drain",
        "created_at": NOW.isoformat(),
        "files": [{"name": "app.log", "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}],
    }
    spoil(manifest)
    _flush(platform, record, {"app.log": body}, manifest)

    result = platform.complete(_ended(record), NOW)

    assert result.status == "retrying" and problem in (result.reason or "")


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"instance_id": ' + b"9" * 5_000 + b"}", b"\xff\xfe{}"],
    ids=["nested-too-deep", "number-too-long", "not-utf8"],
)
def test_a_manifest_no_json_reader_takes_is_unreadable_not_a_crash(platform: Platform, body: bytes) -> None:
    # The instance writes the manifest: whatever it wrote, the drain says why it is not verified
    record = _running(platform)
    s3 = boto3.client("s3")
    s3.put_object(Bucket=platform.bucket, Key=record.manifest_key, Body=body)

    result = platform.complete(_ended(record), NOW)

    assert result.status == "retrying" and "is unreadable" in (result.reason or "")


def test_a_status_event_after_the_drain_ended_changes_nothing(platform: Platform) -> None:
    record = _running(platform)
    _flush(platform, record, LOGS)
    platform.complete(_ended(record), NOW)

    again = platform.complete(_ended(record, "Failed"), NOW)

    assert again.status == "duplicate"
    assert platform.record(record.instance_id).outcome == "drained" and len(platform.hooks.completed) == 1


def test_the_log_sync_of_an_instance_that_is_not_leaving_is_ignored(platform: Platform) -> None:
    detail = CommandInvocationDetail.model_validate(
        load_event("drain_complete/command_invocation_success")["detail"]
    )

    result = platform.complete(detail, NOW)

    assert (result.status, result.reason) == ("ignored", "the instance is not draining")
    assert platform.table_items() == []


def test_a_status_event_before_its_command_is_recorded_asks_to_be_delivered_again(platform: Platform) -> None:
    instance = member(platform, 1)
    platform.leave("lifecycle_terminate", instance)
    platform.store.claim(APP, instance, NOW, NOW)
    record = platform.record(instance)

    with pytest.raises(DrainNotReady):
        platform.complete(_ended(record, command="e8d3c0e4-71f7-4491-898f-c9b35bee5f3b"), NOW)


def test_the_late_event_of_an_earlier_attempt_is_ignored(platform: Platform) -> None:
    record = _running(platform)
    platform.complete(_ended(record, "Failed"), NOW)

    late = platform.complete(_ended(record, "Failed"), NOW)

    assert (late.status, late.reason) == ("ignored", "an earlier attempt")
    assert platform.record(record.instance_id).status is DrainStatus.RUNNING


def test_a_status_that_is_not_final_is_ignored(platform: Platform) -> None:
    record = _running(platform)

    result = platform.complete(_ended(record, "InProgress"), NOW)

    assert result.status == "ignored" and platform.record(record.instance_id).status is DrainStatus.RUNNING


# --- the store ----------------------------------------------------------------------------------
def test_an_applications_drains_list_oldest_first(platform: Platform) -> None:
    for n, minutes in ((1, 5), (2, 1), (3, 3)):
        platform.leave("lifecycle_terminate", member(platform, n), at=NOW + timedelta(minutes=minutes))

    listed = platform.store.list_drains(APP)

    assert [r.instance_id for r in listed] == [instance_id(2), instance_id(3), instance_id(1)]


def test_s3_keeps_the_sha256_the_completion_compares(platform: Platform) -> None:
    boto3.client("s3").put_object(
        Bucket=platform.bucket, Key="a.log", Body=b"abc", ChecksumAlgorithm="SHA256"
    )

    stored = S3LogObjects().describe(platform.bucket, "a.log")

    assert stored is not None and (stored.size, stored.sha256) == (3, hashlib.sha256(b"abc").hexdigest())
    assert S3LogObjects().describe(platform.bucket, "missing.log") is None
