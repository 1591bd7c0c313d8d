"""The approval gate's sample events (events/) parse as their handlers read them."""

import base64
import json
from urllib.parse import parse_qs

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model
from canaryfleet.api.approval_page import _parse_form
from canaryfleet.api.slack_app import BlockActions, SlashCommand
from canaryfleet.models.approval import ApprovalLink, ExpireApprovalTask, RotationEvent
from canaryfleet.models.events import parse_event

from tests.helpers import load_event


@pytest.mark.parametrize(
    ("name", "route"),
    [
        ("approval_page/show", "GET /approvals/{approval_id}"),
        ("approval_page/decide", "POST /approvals/{approval_id}"),
        ("slack_interactions/block_actions", "POST /slack/interactions"),
        ("slack_interactions/slash_command", "POST /slack/commands"),
    ],
)
def test_http_samples_are_api_gateway_http_api_v2_events_of_their_route(name: str, route: str) -> None:
    event = parse_event(APIGatewayProxyEventV2Model, load_event(name))

    assert (event.version, event.routeKey, event.requestContext.routeKey) == ("2.0", route, route)


def body(name: str) -> str:
    event = load_event(name)
    assert event["isBase64Encoded"] is True, "HTTP APIs hand form bodies over base64-encoded"
    return base64.b64decode(event["body"]).decode()


def test_the_page_samples_carry_a_link_and_a_form() -> None:
    show = load_event("approval_page/show")
    link = ApprovalLink.model_validate(
        {**show["queryStringParameters"], "approval_id": show["pathParameters"]["approval_id"]}
    )
    form = _parse_form(body("approval_page/decide"))

    assert form is not None and (form.action, form.approver) == ("approve", link.approver)


def test_the_slack_samples_are_a_button_press_and_a_command() -> None:
    payload = json.loads(parse_qs(body("slack_interactions/block_actions"))["payload"][0])
    command = {k: v[0] for k, v in parse_qs(body("slack_interactions/slash_command")).items()}

    assert BlockActions.model_validate(payload).actions[0].action_id == "approval.approve"
    assert SlashCommand.model_validate(command).text.startswith("abort payments-api")


def test_the_task_samples_parse() -> None:
    assert parse_event(ExpireApprovalTask, load_event("expire_approval/task")).approval_id
    assert parse_event(RotationEvent, load_event("rotate_signing_key/create_secret")).step == "createSecret"
