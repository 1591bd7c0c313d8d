"""The local Slack refuses what Slack refuses (Block Kit's limits), and the platform's longest
approval messages get through it: posted, then replaced by their outcome without buttons."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from canaryfleet.adapters.slack import SlackSdkApi
from canaryfleet.logic import approval_messages
from canaryfleet.models.approval import SlackMessageRef, SlackSecret
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from canaryfleet_local.slack import LocalSlack
from tests.unit import slack_worst_case as worst

CHANNEL = "C0PAY"


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    with LocalSlack() as local:
        yield local


def web(slack: LocalSlack) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=f"{slack.url}/api/")


def platform(slack: LocalSlack) -> SlackSdkApi:
    """The platform's own Slack adapter, set up as the platform's Slack secret sets it up."""
    return SlackSdkApi(
        SlackSecret.model_validate(
            {"bot_token": slack.bot_token, "api_url": f"{slack.url}/api/", "hooks_url": f"{slack.url}/"}
        )
    )


def section(characters: int) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * characters}}]


def test_a_section_of_3000_characters_is_posted_and_one_of_3001_is_refused(slack: LocalSlack) -> None:
    # When a message with a section of 3,000 characters and one with 3,001 are posted
    posted = web(slack).chat_postMessage(channel=CHANNEL, text="fits", blocks=section(3000))
    with pytest.raises(SlackApiError) as refused:
        web(slack).chat_postMessage(channel=CHANNEL, text="too long", blocks=section(3001))

    # Then the first is kept, the second refused as Slack refuses it, and not kept
    assert posted["ok"]
    answer = refused.value.response.data
    assert isinstance(answer, dict)
    assert (answer["ok"], answer["error"]) == (False, "invalid_blocks")
    assert answer["errors"] == ["text attribute cannot exceed 3000 characters [json-pointer:/blocks/0]"]
    assert [m.text for m in slack.posted(CHANNEL)] == ["fits"]
    assert [c.text for c in slack.calls] == ["fits"]


def test_an_update_with_invalid_blocks_is_refused_and_the_message_keeps_its_own(slack: LocalSlack) -> None:
    posted = web(slack).chat_postMessage(channel=CHANNEL, text="asked", blocks=section(10))

    with pytest.raises(SlackApiError) as refused:
        web(slack).chat_update(channel=CHANNEL, ts=posted["ts"], text="decided", blocks=section(3001))

    assert refused.value.response["error"] == "invalid_blocks"
    [message] = slack.posted(CHANNEL)
    assert (message.text, message.blocks, message.history) == ("asked", section(10), [])
    assert [c.kind for c in slack.calls] == ["chat.postMessage"]


def test_a_response_url_refuses_invalid_blocks_with_400_and_changes_nothing(slack: LocalSlack) -> None:
    web(slack).chat_postMessage(channel=CHANNEL, text="asked", blocks=section(10))
    [message] = slack.posted(CHANNEL)
    url = slack.response_url(message)

    refused = platform(slack).respond(url, "decided", section(3001), replace=True)
    taken = platform(slack).respond(url, "decided", section(3000), replace=True)

    assert (refused, taken) == (False, True)
    assert [c.kind for c in slack.calls] == ["chat.postMessage", "response_url"]
    assert message.history == ["asked"] and message.blocks == section(3000)


def test_the_longest_approval_request_reaches_slack_and_its_outcome_replaces_the_buttons(
    slack: LocalSlack,
) -> None:
    # Given an approval at the models' limits: 50 inconclusive metrics, 200 approvers
    api = platform(slack)

    # When the platform asks for a decision in Slack, then the approver rejects with the longest comment
    text, blocks = approval_messages.slack_request(worst.approval(), worst.TIMELINE)
    ref = api.post(CHANNEL, text, blocks)
    assert ref is not None, "Slack refused the approval request: nobody can decide in Slack"
    decided = worst.decided("reject").model_copy(update={"slack_message": ref})
    updated = api.update(ref, *approval_messages.slack_outcome(decided))

    # Then the card holds the outcome, and no button is left to press
    assert updated
    [card] = slack.posted(CHANNEL)
    assert isinstance(ref, SlackMessageRef) and card.ts == ref.ts
    assert not any(block["type"] == "actions" for block in card.blocks)
    assert "Rejected by" in json.dumps(card.blocks)
