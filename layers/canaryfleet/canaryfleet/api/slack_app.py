"""The Slack app's request URLs: Approve and Reject buttons, and the /canaryfleet command.

Every request is checked against Slack's signature (the app's signing secret, five minutes
at most) before anything in it is read; the user must be an approver: of the approval for
the buttons, of the application (its registry entry) for ``abort`` and ``promote``.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from canaryfleet.adapters.slack import verify_request
from canaryfleet.api.bodies import Refusal, form_fields, form_text
from canaryfleet.errors import RolloutNotRunning, UnknownApplication
from canaryfleet.logic.approval_gate import ApprovalGate, settle_ended_approval
from canaryfleet.logic.approval_messages import APPROVE_ACTION, slack_escape
from canaryfleet.logic.decisions import Decision, decide
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.approval import APPROVAL_ID_PATTERN, SlackSecret, SlackUser
from canaryfleet.models.artifact import APP_NAME_PATTERN
from canaryfleet.observability import logger
from canaryfleet.ports.approvals import SlackChannel
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.fleet import AppRegistry
from canaryfleet.ports.rollouts import RolloutStore
from canaryfleet.ports.workflow import Callbacks

_MAX_FIELDS = 30
# A block_actions payload carries the whole message it came from (at most 50 blocks).
_MAX_BODY_BYTES = 256 * 1024
USAGE = "Usage: /canaryfleet abort <application> [reason] | /canaryfleet promote <application> [reason]"


class _Action(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action_id: Literal["approval.approve", "approval.reject"]  # APPROVE_ACTION, REJECT_ACTION
    value: str = Field(pattern=APPROVAL_ID_PATTERN)


class _PayloadUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str = Field(default="", validation_alias=AliasChoices("username", "name"))


class BlockActions(BaseModel):
    """The part of Slack's block_actions payload the app reads."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["block_actions"]
    user: _PayloadUser
    actions: list[_Action] = Field(min_length=1, max_length=1)
    response_url: str | None = Field(default=None, pattern=r"^https?://")


class SlashCommand(BaseModel):
    model_config = ConfigDict(extra="ignore")

    command: str = Field(min_length=2, max_length=40)
    text: str = Field(default="", max_length=2000)
    user_id: str
    user_name: str = ""


def _plain(status: int, text: str) -> Response[str]:
    return Response(status_code=status, content_type="text/plain; charset=utf-8", body=text)


def _ephemeral(text: str, visible_to_channel: bool = False) -> Response[str]:
    body = {"response_type": "in_channel" if visible_to_channel else "ephemeral", "text": text}
    return Response(status_code=200, content_type="application/json", body=json.dumps(body))


def slack_app_api(
    secret: SlackSecret,
    gate: ApprovalGate,
    slack: SlackChannel | None,
    registry: AppRegistry,
    rollouts: RolloutStore,
    callbacks: Callbacks,
    clock: Clock,
) -> APIGatewayHttpResolver:
    """POST /slack/interactions (buttons) and POST /slack/commands (abort, promote)."""
    app = APIGatewayHttpResolver()

    def verified_form() -> dict[str, str] | Response[str]:
        event = app.current_event
        body = form_text(event, _MAX_BODY_BYTES)
        if isinstance(body, Refusal):
            logger.warning("slack request refused", extra={"route": event.path, "status": body.status})
            return _plain(body.status, body.reason)
        headers = event.headers or {}
        signed = verify_request(
            secret, body, headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
        )
        if not signed:
            logger.warning("slack request refused: bad or old signature", extra={"route": event.path})
            return _plain(401, "invalid signature")
        form = form_fields(body, _MAX_FIELDS)
        return form if form is not None else _plain(400, "malformed form body")

    @app.post("/slack/interactions")
    def interaction() -> Response[str]:
        form = verified_form()
        if isinstance(form, Response):
            return form
        try:
            payload = BlockActions.model_validate(json.loads(form.get("payload", "")))
            user = SlackUser(id=payload.user.id, name=payload.user.name)
        except (ValueError, ValidationError, RecursionError):  # RecursionError: JSON nested too deep
            return _plain(400, "malformed payload")
        action = payload.actions[0]
        verb: Literal["approve", "reject"] = "approve" if action.action_id == APPROVE_ACTION else "reject"
        gate.decide_by_slack(action.value, user, verb, payload.response_url)
        return _plain(200, "")

    @app.post("/slack/commands")
    def command() -> Response[str]:
        form = verified_form()
        if isinstance(form, Response):
            return form
        try:
            request = SlashCommand.model_validate(form)
            user = SlackUser(id=request.user_id, name=request.user_name)
        except ValidationError:
            return _plain(400, "malformed command")
        return _ephemeral(*_run_command(request, user, slack, registry, rollouts, callbacks, clock, gate))

    @app.not_found
    def not_found(_: Exception) -> Response[str]:
        return _plain(404, "not found")

    return app


def _allowed(app: AppConfig, user: SlackUser, slack: SlackChannel | None) -> tuple[bool, str | None]:
    if user.id in app.approvers.slack_user_ids:
        return True, None
    email = slack.email_of(user.id) if slack is not None and app.approvers.emails else None
    allowed = email is not None and email in {e.lower() for e in app.approvers.emails}
    return allowed, email


def _run_command(
    request: SlashCommand,
    user: SlackUser,
    slack: SlackChannel | None,
    registry: AppRegistry,
    rollouts: RolloutStore,
    callbacks: Callbacks,
    clock: Clock,
    gate: ApprovalGate,
) -> tuple[str, bool]:
    """What to tell the user, and whether the channel should see it too."""
    words = request.text.split(maxsplit=2)
    if len(words) < 2 or words[0] not in ("abort", "promote"):
        return USAGE, False
    verb: Literal["abort", "promote"] = "abort" if words[0] == "abort" else "promote"
    application, reason = words[1], words[2] if len(words) > 2 else ""
    if not re.match(APP_NAME_PATTERN, application):
        return f"{USAGE}\n(not an application name)", False
    try:
        app = registry.get(application)
    except UnknownApplication:
        return f"{application} is not onboarded.", False
    allowed, email = _allowed(app, user, slack)
    if not allowed:
        logger.warning("slack user may not act on this application", extra={"application": application})
        return f"You are not an approver of {application}; nothing was changed.", False
    decision = Decision(
        application=application, action=verb, by=user.label(email), reason=reason, channel="slack"
    )
    try:
        result = decide(decision, rollouts, callbacks, clock)
    except RolloutNotRunning:
        return f"{application} has no running rollout.", False
    if result.approval_id is not None:  # an abort or promote that ended an approval wait
        settle_ended_approval(lambda: gate, result.approval_id)
    detail = f" ({result.detail})" if result.detail else ""
    done = {
        "applied": "done",
        "recorded": "recorded; it applies at the rollout's next wait",
        "already_decided": "too late, the wait had ended",
    }[result.outcome]
    said = f": {slack_escape(reason)}" if reason else ""
    rollout = f"{application} rollout {result.rollout_id}"
    return (
        f"{verb.capitalize()} of {rollout} by <@{user.id}> {done}{detail}{said}",
        result.outcome != "already_decided",
    )
