"""The Slack app's request URLs: Approve and Reject buttons, and the /canaryfleet command.

Every request is checked against Slack's signature (the app's signing secret, five minutes
at most) before anything in it is read, and is used once: a replay of a signed request has no
second effect. The user must be an approver: of the approval for the buttons, of the
application (its registry entry) for ``abort`` and ``promote``. A command acts on one rollout:
the one whose version it names, or, without a version, the one its confirm button carries.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from canaryfleet.adapters.slack import verify_request
from canaryfleet.api.bodies import Refusal, form_fields, form_text
from canaryfleet.errors import RolloutNotRunning, UnknownApplication
from canaryfleet.logic.approval_gate import ApprovalGate, settle_ended_approval
from canaryfleet.logic.approval_messages import APPROVE_ACTION
from canaryfleet.logic.decisions import decide
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.approval import APPROVAL_ID_PATTERN, SlackSecret, SlackUser
from canaryfleet.models.artifact import APP_NAME_PATTERN, VERSION_PATTERN, AppName
from canaryfleet.models.decision import Decision, DecisionResult, recorded_words
from canaryfleet.models.text import PersonText, non_printing, slack_cut, slack_escape, slack_unescape
from canaryfleet.observability import logger
from canaryfleet.ports.approvals import SlackChannel
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.fleet import AppRegistry
from canaryfleet.ports.rollouts import RolloutStore
from canaryfleet.ports.workflow import Callbacks

_MAX_FIELDS = 30
# A block_actions payload carries the whole message it came from (at most 50 blocks).
_MAX_BODY_BYTES = 256 * 1024
USAGE = (
    "Usage: /canaryfleet abort <application> [version] [reason]"
    " | /canaryfleet promote <application> [version] [reason]"
)
REPLAYED = "This Slack request was already handled once; nothing was done again."
ABORT_ACTION, PROMOTE_ACTION = "rollout.abort", "rollout.promote"
# A word after the application is its version if it looks like one (1.2.0, v2, 2026.11.26-3):
# a reason ("checkout errors rising") does not start with a digit.
_VERSION_WORD = re.compile(r"v?[0-9][A-Za-z0-9._+-]*")
# Slack's limit on a button's value (which carries the reason along with the rollout).
_MAX_BUTTON_VALUE = 2000
_MAX_REASON = 1500


class _Action(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    action_id: Literal["approval.approve", "approval.reject"]  # APPROVE_ACTION, REJECT_ACTION
    value: str = Field(pattern=APPROVAL_ID_PATTERN)


class RolloutCommand(BaseModel):
    """What a confirm button carries: one rollout of one application, and the reason given."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    application: AppName
    rollout_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")
    reason: PersonText = Field(default="", max_length=_MAX_REASON)


class _RolloutAction(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    action_id: Literal["rollout.abort", "rollout.promote"]  # ABORT_ACTION, PROMOTE_ACTION
    value: str = Field(max_length=_MAX_BUTTON_VALUE)

    def command(self) -> RolloutCommand:
        return RolloutCommand.model_validate_json(self.value)


class _PayloadUser(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    id: str
    name: str = Field(default="", validation_alias=AliasChoices("username", "name"))


class BlockActions(BaseModel):
    """The part of Slack's block_actions payload the app reads."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    type: Literal["block_actions"]
    user: _PayloadUser
    actions: list[Annotated[_Action | _RolloutAction, Field(discriminator="action_id")]] = Field(
        min_length=1, max_length=1
    )
    # A URL as Slack sends them (https://hooks.slack.com/actions/...): printable ASCII, no
    # space. Anything else is refused with the payload before any decision is taken.
    response_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://[!-~]+$")


class SlashCommand(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    command: str = Field(min_length=2, max_length=40)
    text: str = Field(default="", max_length=2000)
    user_id: str
    user_name: str = ""


def _plain(status: int, text: str) -> Response[str]:
    return Response(status_code=status, content_type="text/plain; charset=utf-8", body=text)


def _ephemeral(
    text: str, visible_to_channel: bool = False, blocks: list[dict[str, object]] | None = None
) -> Response[str]:
    body: dict[str, object] = {
        "response_type": "in_channel" if visible_to_channel else "ephemeral",
        "text": text,
    }
    if blocks:
        body["blocks"] = blocks
    return Response(status_code=200, content_type="application/json", body=json.dumps(body))


@dataclass(frozen=True)
class _Outside:
    """What the commands and their confirm buttons act through."""

    gate: ApprovalGate
    slack: SlackChannel | None
    registry: AppRegistry
    rollouts: RolloutStore
    callbacks: Callbacks
    clock: Clock


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
    outside = _Outside(gate, slack, registry, rollouts, callbacks, clock)

    def verified_form(replayed: Response[str]) -> dict[str, str] | Response[str]:
        """The signed request's form, once: ``replayed`` answers a request already handled."""
        event = app.current_event
        body = form_text(event, _MAX_BODY_BYTES)
        if isinstance(body, Refusal):
            logger.warning("slack request refused", extra={"route": event.path, "status": body.status})
            return _plain(body.status, body.reason)
        headers = event.headers or {}
        signature = headers.get("x-slack-signature")
        signed = verify_request(secret, body, headers.get("x-slack-request-timestamp"), signature)
        if not signed or signature is None:
            logger.warning("slack request refused: bad or old signature", extra={"route": event.path})
            return _plain(401, "invalid signature")
        form = form_fields(body, _MAX_FIELDS)
        if form is None:
            return _plain(400, "malformed form body")
        if not gate.first_slack_use(signature):
            logger.warning("slack request replayed; refused", extra={"route": event.path})
            return replayed
        return form

    @app.post("/slack/interactions")
    def interaction() -> Response[str]:
        form = verified_form(_plain(200, REPLAYED))
        if isinstance(form, Response):
            return form
        try:
            payload = BlockActions.model_validate(json.loads(form.get("payload", "")))
            user = SlackUser(id=payload.user.id, name=payload.user.name)
            action = payload.actions[0]
            command = action.command() if isinstance(action, _RolloutAction) else None
        except (ValueError, ValidationError, RecursionError):  # RecursionError: JSON nested too deep
            return _plain(400, "malformed payload")
        if isinstance(action, _RolloutAction) and command is not None:
            verb: Literal["abort", "promote"] = "abort" if action.action_id == ABORT_ACTION else "promote"
            said = _confirmed(verb, command, user, outside)
            if slack is not None and payload.response_url is not None:
                slack.respond(payload.response_url, said, None, replace=True)
            return _plain(200, "")
        choice: Literal["approve", "reject"] = "approve" if action.action_id == APPROVE_ACTION else "reject"
        gate.decide_by_slack(action.value, user, choice, payload.response_url)
        return _plain(200, "")

    def ssl_check() -> bool:
        """Slack's check of a slash command's certificate: a POST of ``ssl_check=1`` (and a
        token), sent when the command's URL is set or changed, to be answered 200 and otherwise
        ignored (Slack API, Slash commands; Bolt answers it before verifying anything, in its
        SslCheck middleware). Nothing is read or changed for it, so it needs no signature."""
        body = form_text(app.current_event, _MAX_BODY_BYTES)
        form = None if isinstance(body, Refusal) else form_fields(body, _MAX_FIELDS)
        return form is not None and form.get("ssl_check") == "1"

    @app.post("/slack/commands")
    def command() -> Response[str]:
        if ssl_check():
            return _plain(200, "")
        form = verified_form(_ephemeral(REPLAYED))
        if isinstance(form, Response):
            return form
        try:
            request = SlashCommand.model_validate(form)
            user = SlackUser(id=request.user_id, name=request.user_name)
        except ValidationError:
            return _plain(400, "malformed command")
        return _run_command(request, user, outside)

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


@dataclass(frozen=True)
class _Parsed:
    """A command's words: what to do, to which application, the version named (if any), why."""

    verb: Literal["abort", "promote"]
    application: str
    version: str | None
    reason: str


def _parse(text: str) -> _Parsed | str:
    """The command's words, or what to answer instead."""
    # A reason is kept, emailed and shown as the person typed it.
    words = slack_unescape(text).split(maxsplit=2)
    if len(words) < 2 or words[0] not in ("abort", "promote"):
        return USAGE
    verb: Literal["abort", "promote"] = "abort" if words[0] == "abort" else "promote"
    application, rest = words[1], words[2] if len(words) > 2 else ""
    if not re.fullmatch(APP_NAME_PATTERN, application):
        return f"{USAGE}\n(not an application name)"
    first, _, after = rest.partition(" ")
    is_version = bool(_VERSION_WORD.fullmatch(first) and re.fullmatch(VERSION_PATTERN, first))
    version, reason = (first, after.strip()) if is_version else (None, rest)
    bad = non_printing(reason.replace("\r\n", "\n"))
    if bad:
        return f"The reason holds characters that do not print ({', '.join(bad[:5])}); nothing was changed."
    return _Parsed(verb, application, version, reason[:_MAX_REASON])


def _approver_of(
    application: str, user: SlackUser, slack: SlackChannel | None, registry: AppRegistry
) -> AppConfig | str:
    """The application's registry entry if ``user`` approves it; else what to answer."""
    try:
        app = registry.get(application)
    except UnknownApplication:
        return f"{application} is not onboarded."
    if not _allowed(app, user, slack)[0]:
        logger.warning("slack user may not act on this application", extra={"application": application})
        return f"You are not an approver of {application}; nothing was changed."
    return app


def _run_command(request: SlashCommand, user: SlackUser, outside: _Outside) -> Response[str]:
    """The command's answer: done (for the version it names), or a button to confirm the rollout."""
    slack, registry, rollouts = outside.slack, outside.registry, outside.rollouts
    parsed = _parse(request.text)
    if isinstance(parsed, str):
        return _ephemeral(parsed)
    app = _approver_of(parsed.application, user, slack, registry)
    if isinstance(app, str):
        return _ephemeral(app)
    lock = rollouts.lock(parsed.application)
    record = rollouts.get(parsed.application, lock.rollout_id) if lock is not None else None
    if lock is None or record is None:
        return _ephemeral(f"{parsed.application} has no running rollout.")
    command = RolloutCommand(application=parsed.application, rollout_id=lock.rollout_id, reason=parsed.reason)
    if parsed.version is None:
        return _confirm_prompt(parsed.verb, command, slack_escape(record.version))
    if parsed.version != record.version:
        return _ephemeral(
            f"{parsed.application} is rolling out {slack_escape(record.version)}, "
            f"not {slack_escape(parsed.version)}; nothing was changed."
        )
    return _ephemeral(*_act(parsed.verb, command, user, app, outside))


def _confirm_prompt(
    verb: Literal["abort", "promote"], command: RolloutCommand, version: str
) -> Response[str]:
    """Without a version, the command names no rollout: a button carrying the running one's id
    asks the user to confirm, and acts on that rollout only."""
    question = f"{verb.capitalize()} {command.application} {version} (rollout `{command.rollout_id}`)?"
    if command.reason:
        question += f"\nReason: {slack_escape(command.reason)}"
    value = command.model_dump_json()
    if len(value) > _MAX_BUTTON_VALUE:
        # JSON writes a quote, a backslash or a line break in two characters: a reason within
        # _MAX_REASON can still overflow the button, and Slack would refuse the whole prompt.
        return _ephemeral(
            f"That reason is too long to carry on a confirm button (Slack allows {_MAX_BUTTON_VALUE:,} "
            f"characters); nothing was changed. Shorten it, or name the version "
            f"(`/canaryfleet {verb} {command.application} {version} <reason>`) to act without confirming."
        )
    button: dict[str, object] = {
        "type": "button",
        "action_id": ABORT_ACTION if verb == "abort" else PROMOTE_ACTION,
        "style": "danger" if verb == "abort" else "primary",
        "text": {"type": "plain_text", "text": f"{verb.capitalize()} {version}"[:75]},
        "value": value,
    }
    blocks: list[dict[str, object]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": slack_cut(question, 3000)}},
        {"type": "actions", "block_id": "rollout", "elements": [button]},
    ]
    return _ephemeral(question, blocks=blocks)


def _confirmed(
    verb: Literal["abort", "promote"], command: RolloutCommand, user: SlackUser, outside: _Outside
) -> str:
    """A confirm button pressed: the same checks as the command, on the rollout it carries."""
    app = _approver_of(command.application, user, outside.slack, outside.registry)
    if isinstance(app, str):
        return app
    return _act(verb, command, user, app, outside)[0]


def _act(
    verb: Literal["abort", "promote"],
    command: RolloutCommand,
    user: SlackUser,
    app: AppConfig,
    outside: _Outside,
) -> tuple[str, bool]:
    """Abort or promote exactly ``command.rollout_id``; what to say, and whether the channel sees it."""
    slack, rollouts, callbacks, clock, gate = (
        outside.slack,
        outside.rollouts,
        outside.callbacks,
        outside.clock,
        outside.gate,
    )
    _, email = _allowed(app, user, slack)
    decision = Decision(
        application=command.application,
        action=verb,
        by=user.label(email),
        reason=command.reason,
        channel="slack",
        rollout_id=command.rollout_id,
    )
    try:
        result = decide(decision, rollouts, callbacks, clock)
    except RolloutNotRunning:
        gone = f"Rollout {command.rollout_id} of {command.application} is no longer running"
        return f"{gone}; nothing was changed.", False
    if result.approval_id is not None:  # an abort or promote that ended an approval wait
        settle_ended_approval(lambda: gate, result.approval_id)
    return _said(verb, command, user, result), result.outcome != "already_decided"


def _said(verb: str, command: RolloutCommand, user: SlackUser, result: DecisionResult) -> str:
    detail = f" ({slack_escape(result.detail)})" if result.detail else ""
    done = {
        "applied": "done",
        "recorded": recorded_words(result.action),
        # A too-late abort says why in its detail; any other, that the wait had ended.
        "already_decided": "not done" if result.detail else "too late, the wait had ended",
    }[result.outcome]
    said = f": {slack_escape(command.reason)}" if command.reason else ""
    rollout = f"{command.application} rollout {result.rollout_id}"
    return f"{verb.capitalize()} of {rollout} by <@{user.id}> {done}{detail}{said}"
