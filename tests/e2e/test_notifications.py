"""Rollouts told to people on the local cloud: one Slack thread per rollout, an email at the end.

The notices go the way they go on AWS: record_stage and the others publish on the
notification topic, SNS delivers to the notifications queue, and Lambda's SQS event source
hands batches to NotifyFunction, which posts to Slack (on localhost) and emails through SNS.

The released build goes through two canary steps (10%, then 50%, each baked and analysed): the
thread tells each step's shift and verdict, once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from canaryfleet.models.app_config import Approvers, registry_parameter
from canaryfleet.models.policy import RolloutPolicy

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.mailbox import LocalMailbox
from canaryfleet_local.rollout_job import APPLICATION, scenario_cloud, upload_build
from canaryfleet_local.scenarios import Scenario, load_scenario
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

    def said(self, root: SlackMessage) -> list[str]:
        """What each reply of the thread says (its first block: the headline and the facts)."""
        return [m.blocks[0]["text"]["text"] for m in self.slack.thread(CHANNEL, root.ts)]


def two_canary_steps() -> Scenario:
    """failing-canary with a second canary step after its first bake: 50%, and a short analysed
    bake as healthy's (nothing ends it: src/canaryfleet_local/scenarios/README.md). 1.1.0's alarm
    rolls it back in the first bake, as before."""
    story = load_scenario("failing-canary")
    policy = story.policy.model_dump(mode="json")
    shift, bake, approval = policy["steps"]
    policy["steps"] = [shift, bake, {**shift, "weight": 50}, {**bake, "duration_seconds": 5}, approval]
    return story.model_copy(update={"policy": RolloutPolicy.model_validate(policy)})


@pytest.fixture(scope="module")
def told() -> Iterator[Told]:
    """failing-canary, two canary steps, Slack and email set up: 1.0.0 is released, then 1.1.0
    is rolled back."""
    with (
        LocalSlack() as slack,
        scenario_cloud(two_canary_steps(), parameters={"LogLevel": "ERROR"}) as (cloud, simulator),
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
                + "".join(
                    f" ({details.get('error')}: {str(details.get('cause'))[:300]})"
                    for key, details in e.items()
                    if key.endswith("FailedEventDetails") and isinstance(details, dict)
                )
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

    for said in (told.said(released), told.said(rolled_back)):
        assert len(said) == len(set(said))
    for stage in [*STAGES, "Canary analysed", "Waiting for approval", "Released"]:
        assert f"{APPLICATION} 1.0.0: {stage}" in first
    for stage in STAGES:
        assert f"{APPLICATION} 1.1.0: {stage}" in second
    assert any(text.startswith(f"{APPLICATION} 1.1.0: Rolled back: canary alarm") for text in second)


def test_each_canary_step_is_told_in_the_thread(told: Told) -> None:
    said = [reply.splitlines() for reply in told.said(told.roots()[0])]

    shifts = [lines[1] for lines in said if "*Canary takes traffic*" in lines[0]]
    steps = [lines[0] for lines in said if "(policy step" in lines[0]]

    assert shifts == ["canary 10%, live 90%", "canary 50%, live 50%"]
    assert steps == [
        ":twisted_rightwards_arrows: *Canary takes traffic* (policy step 1)",
        ":mag: *Canary analysed* (policy step 2)",
        ":twisted_rightwards_arrows: *Canary takes traffic* (policy step 3)",
        ":mag: *Canary analysed* (policy step 4)",
        ":raised_hand: *Waiting for approval* (policy step 5)",
    ]


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


@pytest.mark.parametrize(
    ("kind", "published"),
    [
        ("rollout.released", {"stage": "released"}),
        ("rollout.traffic_shifted", {"stage": "traffic_shifted", "step": 2}),
    ],
    ids=["released", "a-steps-shift"],
)
def test_a_notice_published_again_is_not_told_again(
    told: Told, kind: str, published: dict[str, object]
) -> None:
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
        Message=json.dumps({**notice, **published}),
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": kind},
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
