"""The notifications function on moto: thread records, duplicates, retries and bad notices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from canaryfleet.adapters.slack_threads import DynamoSlackThreads
from canaryfleet.models.app_config import Approvers, registry_parameter
from canaryfleet.models.approval import SlackMessageRef
from canaryfleet.ports.notify import STALE_CLAIM

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.mailbox import LocalMailbox
from canaryfleet_local.slack import LocalSlack
from tests.helpers import load_event
from tests.integration.approval_gate import app_config

APP = "payments-api"
CHANNEL = "C0DEPLOYS"
APPROVERS = Approvers(emails=("alice@example.com",), slack_channel=CHANNEL)


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    with LocalSlack() as local:
        yield local


@pytest.fixture
def onboarded(cloud: LocalCloud, slack: LocalSlack) -> LocalCloud:
    slack.configure(cloud)
    cloud.client("ssm").put_parameter(
        Name=registry_parameter(APP),
        Value=app_config(APP, APPROVERS).model_dump_json(),
        Type="String",
        Overwrite=True,
    )
    return cloud


def test_a_thread_is_claimed_once_and_its_card_only_moves_forward(cloud: LocalCloud) -> None:
    threads = DynamoSlackThreads(cloud.output("StateTableName"))
    now = datetime.now(UTC)

    assert threads.find(APP, "r-1") is None
    assert threads.claim(APP, "r-1", now)
    assert not threads.claim(APP, "r-1", now)
    assert threads.claim(APP, "r-1", now + STALE_CLAIM + timedelta(seconds=1))  # its poster died
    message = SlackMessageRef(channel=CHANNEL, ts="1.000100")
    threads.started(APP, "r-1", message, rank=Decimal(2), card='{"text":"started"}')
    assert not threads.claim(APP, "r-1", now + timedelta(hours=1))

    # Progress within the canary steps is in thousandths (Notice.progress): kept exactly, with the
    # card of the furthest
    assert not threads.advance(APP, "r-1", Decimal(2), '{"text":"again"}')
    assert threads.advance(APP, "r-1", Decimal("3.009"), '{"text":"step 1"}')
    assert threads.advance(APP, "r-1", Decimal("3.024"), '{"text":"step 2"}')
    assert not threads.advance(APP, "r-1", Decimal("3.013"), '{"text":"late step 1"}')
    found = threads.find(APP, "r-1")
    assert found is not None and found.rank == Decimal("3.024") and found.message.ts == "1.000100"
    assert found.card == '{"text":"step 2"}'
    assert threads.advance(APP, "r-1", Decimal(9), '{"text":"rolled back"}')
    assert not threads.advance(APP, "r-1", Decimal("3.157"), '{"text":"late"}')


def test_a_thread_outlives_the_longest_rollout(cloud: LocalCloud) -> None:
    # DynamoDB's TTL deletes the item after expires_at; a rollout runs up to its execution's
    # year (holds of 120 days, approvals of 7): a thread gone mid-rollout starts a second card
    threads = DynamoSlackThreads(cloud.output("StateTableName"))
    assert threads.claim(APP, "r-long", datetime.now(UTC))
    item = cloud.client("dynamodb").get_item(
        TableName=cloud.output("StateTableName"), Key={"pk": {"S": f"APP#{APP}"}, "sk": {"S": "SLACK#r-long"}}
    )["Item"]

    expires = datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC)
    assert expires - datetime.now(UTC) > timedelta(days=366)


def test_a_released_claim_can_be_taken_again(cloud: LocalCloud) -> None:
    threads = DynamoSlackThreads(cloud.output("StateTableName"))
    now = datetime.now(UTC)

    assert threads.claim(APP, "r-2", now)
    threads.release(APP, "r-2")
    assert threads.claim(APP, "r-2", now)


def _batch(*bodies: dict[str, Any]) -> dict[str, Any]:
    """The sample batch's first record (a rollback notice), with the SNS envelopes given."""
    template = load_event("notify/notices")["Records"][0]
    return {
        "Records": [
            {**template, "messageId": f"m-{i}", "body": json.dumps(body)} for i, body in enumerate(bodies)
        ]
    }


def _invoke(cloud: LocalCloud, event: dict[str, Any]) -> dict[str, Any]:
    """What the SQS event source reads: the failed records, or all of them if the function failed."""
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.resource("NotifyFunction"), Payload=json.dumps(event).encode()
    )
    payload: dict[str, Any] = json.loads(response["Payload"].read())
    if "FunctionError" in response:  # Powertools fails the invocation when every record failed
        assert payload["errorType"] == "BatchProcessingError", payload
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
    return payload


def test_a_notice_delivered_twice_and_published_twice_is_told_once(
    onboarded: LocalCloud, slack: LocalSlack
) -> None:
    envelope = json.loads(load_event("notify/notices")["Records"][0]["body"])
    republished = {**envelope, "MessageId": "a-second-publication"}
    inbox = LocalMailbox(onboarded)

    first = _invoke(onboarded, _batch(envelope, envelope))
    second = _invoke(onboarded, _batch(republished))

    assert first == {"batchItemFailures": []} and second == {"batchItemFailures": []}
    messages = slack.posted(CHANNEL)
    roots = [m for m in messages if not m.thread_ts]
    assert len(roots) == 1 and "Rolled back" in roots[0].text
    assert len(slack.thread(CHANNEL, roots[0].ts)) == 1
    emails = [m for m in inbox.read() if m["Subject"].endswith(": rolled back")]
    assert len(emails) == 1 and emails[0]["MessageAttributes"]["approver"]["Value"] == "alice@example.com"


def test_a_bad_notice_comes_back_alone_and_tells_nobody(onboarded: LocalCloud, slack: LocalSlack) -> None:
    envelope = json.loads(load_event("notify/notices")["Records"][0]["body"])
    broken = {**envelope, "MessageId": "broken", "Message": "not json"}

    result = _invoke(onboarded, _batch(broken, envelope))

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert len([m for m in slack.posted(CHANNEL) if m.thread_ts]) == 1  # the good one


def test_slack_refusing_a_notice_sends_it_back_and_the_retry_posts_it_once(
    onboarded: LocalCloud, slack: LocalSlack
) -> None:
    envelope = json.loads(load_event("notify/notices")["Records"][0]["body"])
    token = slack.bot_token
    slack.bot_token = "xoxb-revoked"  # every Web API call now answers invalid_auth

    assert _invoke(onboarded, _batch(envelope)) == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert slack.posted(CHANNEL) == []

    slack.bot_token = token
    assert _invoke(onboarded, _batch(envelope)) == {"batchItemFailures": []}
    assert len(slack.posted(CHANNEL)) == 2  # the card and its one reply


def test_an_email_that_failed_half_way_is_finished_by_the_retry_without_mailing_anyone_twice(
    onboarded: LocalCloud, slack: LocalSlack
) -> None:
    # SNS refuses bob's copy past botocore's retries: the notice comes back, alice already mailed
    onboarded.client("ssm").put_parameter(
        Name=registry_parameter(APP),
        Value=app_config(
            APP, Approvers(emails=("alice@example.com", "bob@example.com"), slack_channel=CHANNEL)
        ).model_dump_json(),
        Type="String",
        Overwrite=True,
    )
    envelope = json.loads(load_event("notify/notices")["Records"][0]["body"])
    message = {**json.loads(envelope["Message"]), "rollout_id": "payments-api-1_4_3-half-way"}
    envelope = {**envelope, "MessageId": "half-way", "Message": json.dumps(message)}
    inbox = LocalMailbox(onboarded)
    make_api_call = BaseClient._make_api_call
    refused: list[str] = []

    def bob_throttled_once(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        # The function's own sandbox has its own copy of the layer: the refusal is SNS's, below it
        approver = params.get("MessageAttributes", {}).get("approver", {}).get("StringValue")
        if operation == "Publish" and approver == "bob@example.com" and not refused:
            refused.append(approver)
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, operation)
        return make_api_call(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", bob_throttled_once):
        assert _invoke(onboarded, _batch(envelope)) == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
        assert _invoke(onboarded, _batch(envelope)) == {"batchItemFailures": []}

    assert refused == ["bob@example.com"]
    emails = [m for m in inbox.read() if m["Subject"].endswith(": rolled back")]
    assert sorted(m["MessageAttributes"]["approver"]["Value"] for m in emails) == [
        "alice@example.com",
        "bob@example.com",
    ]
    assert len([m for m in slack.posted(CHANNEL) if m.thread_ts]) == 1  # and Slack told once
