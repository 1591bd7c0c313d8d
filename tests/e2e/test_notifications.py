"""Rollouts told to people on the local cloud: one Slack thread per rollout, an email at the end.

The notices go the way they go on AWS: record_stage and the others publish on the
notification topic, SNS delivers to the notifications queue, and Lambda's SQS event source
hands batches to NotifyFunction, which posts to Slack (on localhost) and emails through SNS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from canaryfleet.models.app_config import Approvers, registry_parameter

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.mailbox import LocalMailbox
from canaryfleet_local.rollout_job import APPLICATION, scenario_cloud, upload_build
from canaryfleet_local.slack import LocalSlack, SlackMessage
from tests.integration.helpers import eventually

CHANNEL = "C0DEPLOYS"
APPROVERS = Approvers(emails=("alice@example.com", "bob@example.com"), slack_channel=CHANNEL)
STAGES = ["Rollout started", "Canary deployed", "Canary takes traffic"]


@dataclass
class Told:
    cloud: LocalCloud
    slack: LocalSlack
    inbox: LocalMailbox

    def roots(self) -> list[SlackMessage]:
        """The first message of each thread (the approval request is a message of its own)."""
        messages = self.slack.posted(CHANNEL)
        threads = {m.thread_ts for m in messages if m.thread_ts}
        return sorted((m for m in messages if m.ts in threads), key=lambda m: float(m.ts))

    def replies(self, root: SlackMessage) -> list[str]:
        return [m.text for m in self.slack.thread(CHANNEL, root.ts)]


@pytest.fixture(scope="module")
def told() -> Iterator[Told]:
    """failing-canary with Slack and email set up: 1.0.0 is released, then 1.1.0 is rolled back."""
    with (
        LocalSlack() as slack,
        scenario_cloud("failing-canary", parameters={"LogLevel": "ERROR"}) as (cloud, simulator),
    ):
        slack.configure(cloud)
        app = simulator.apps[APPLICATION].app.model_copy(update={"approvers": APPROVERS})
        cloud.client("ssm").put_parameter(
            Name=registry_parameter(APPLICATION), Value=app.model_dump_json(), Type="String", Overwrite=True
        )
        inbox = LocalMailbox(cloud)
        for version in ("1.0.0", "1.1.0"):
            upload_build(cloud, APPLICATION, version, bundle())

        def both_ended() -> bool:
            sfn = cloud.client("stepfunctions")
            arns = cloud.executions("RolloutStateMachine")
            statuses = [sfn.describe_execution(executionArn=a)["status"] for a in arns]
            return len(arns) == 2 and "RUNNING" not in statuses

        try:
            eventually(both_ended, timeout=600)
        except AssertionError as stuck:
            raise AssertionError(f"{stuck}; where each rollout stands: {_where_they_stand(cloud)}") from None
        cloud.wait_idle()
        yield Told(cloud, slack, inbox)


def _where_they_stand(cloud: LocalCloud) -> list[str]:
    """Each rollout execution's status and latest history events, for a rollout that never ended."""
    sfn = cloud.client("stepfunctions")
    said = []
    for arn in cloud.executions("RolloutStateMachine"):
        status = sfn.describe_execution(executionArn=arn)["status"]
        # The local cloud's history comes whole, oldest first: its last events are where it stands.
        events = sfn.get_execution_history(executionArn=arn)["events"][-6:]
        said.append(
            f"{arn.rsplit(':', 1)[1]} {status}: "
            + " > ".join(
                e["type"]
                + (f" {e['stateEnteredEventDetails']['name']}" if "stateEnteredEventDetails" in e else "")
                for e in events
            )
        )
    return said


def test_each_rollout_is_one_thread_and_its_card_ends_on_the_outcome(told: Told) -> None:
    released, rolled_back = told.roots()

    assert released.text == f"{APPLICATION} 1.0.0: Released"
    assert rolled_back.text.startswith(f"{APPLICATION} 1.1.0: Rolled back: canary alarm {APPLICATION}-canary")
    assert "Rolled back" in json.dumps(rolled_back.blocks)


def test_the_thread_tells_every_stage_once(told: Told) -> None:
    released, rolled_back = told.roots()
    first, second = told.replies(released), told.replies(rolled_back)

    assert len(first) == len(set(first)) and len(second) == len(set(second))
    for stage in [*STAGES, "Canary analysed", "Waiting for approval", "Released"]:
        assert f"{APPLICATION} 1.0.0: {stage}" in first
    for stage in STAGES:
        assert f"{APPLICATION} 1.1.0: {stage}" in second
    assert any(text.startswith(f"{APPLICATION} 1.1.0: Rolled back: canary alarm") for text in second)


def test_the_outcome_is_emailed_to_each_approver_with_the_reason(told: Told) -> None:
    summaries = [m for m in told.inbox.read() if m["Subject"].startswith("canaryfleet ")]
    by_subject: dict[str, list[str]] = {}
    for message in summaries:
        by_subject.setdefault(message["Subject"], []).append(
            message["MessageAttributes"]["approver"]["Value"]
        )

    assert by_subject == {
        f"canaryfleet {APPLICATION} 1.0.0: released": ["alice@example.com", "bob@example.com"],
        f"canaryfleet {APPLICATION} 1.1.0: rolled back": ["alice@example.com", "bob@example.com"],
    }
    rollback = next(m for m in summaries if m["Subject"].endswith("rolled back"))
    assert f"Reason: canary alarm {APPLICATION}-canary" in rollback["Message"]


def test_a_notice_published_again_is_not_told_again(told: Told) -> None:
    released = told.roots()[0]
    before = told.replies(released)
    record = next(
        r
        for r in told.cloud.client("dynamodb").scan(TableName=told.cloud.output("StateTableName"))["Items"]
        if r["sk"]["S"].startswith("ROLLOUT#") and r["version"]["S"] == "1.0.0"
    )
    notice = {"rollout_id": record["rollout_id"]["S"], "application": APPLICATION, "version": "1.0.0"}

    told.cloud.client("sns").publish(  # a publisher retried after its first publish went through
        TopicArn=told.cloud.output("NotificationTopicArn"),
        Message=json.dumps({**notice, "stage": "released"}),
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "rollout.released"},
            "application": {"DataType": "String", "StringValue": APPLICATION},
        },
    )
    told.cloud.wait_idle()

    assert told.replies(released) == before


def test_nothing_waits_in_the_dead_letter_queue(told: Told) -> None:
    sqs = told.cloud.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=told.cloud.output("NotifyDeadLetterQueueUrl"), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]

    deliveries = [d for d in told.cloud.fleet_operations.sqs.deliveries if "Notify" in d.function]
    failures = [(d.size, d.failed, d.function_error) for d in deliveries if d.failed]
    assert attributes["ApproximateNumberOfMessages"] == "0", failures
    assert told.cloud.queue.failed == []
