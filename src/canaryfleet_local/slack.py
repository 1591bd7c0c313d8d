"""Slack on localhost, for the approval gate and the notifications.

:class:`LocalSlack` stands in for Slack: its Web API (chat.postMessage, chat.update,
users.info), incoming webhooks and response URLs answer as Slack does and record each
call, and it signs the requests Slack sends the app (button presses, slash commands) with
the app's signing secret. Nothing here reaches the internet.

Like Slack, it refuses blocks that break Block Kit's limits (:func:`block_errors`): the Web API
answers ``invalid_blocks`` and a response URL HTTP 400, and neither keeps anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from canaryfleet.models.text import slack_escape
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.local_server import ServedInThread

# Block Kit's limits. https://docs.slack.dev/reference/block-kit/blocks: "You can include up to 50
# blocks in each message"; https://api.slack.com/reference/block-kit/blocks#section, fields:
# "Maximum number of items is 10. Maximum length for the text in each item is 2000 characters";
# https://docs.slack.dev/reference/block-kit/composition-objects/text-object, text: "The minimum
# length is 1 and maximum length is 3000 characters".
MAX_BLOCKS = 50
MAX_FIELD_TEXT = 2000
MAX_TEXT = 3000
_TEXT_TYPES = ("plain_text", "mrkdwn")


def block_errors(blocks: object) -> list[str]:
    """What Slack says is wrong with a message's ``blocks`` (empty: it takes them), as the
    ``errors`` of its ``invalid_blocks`` answer: "<what> [json-pointer:/blocks/<i>/...]".

    slack_sdk's Block Kit models check each block's own limits (a section's text 3,000 and 10
    fields, a header's 150, a button's text 75, value 2,000 and action_id 255, a confirm dialog's,
    an actions block's 25 elements, a context's 10); the rest is checked here.
    """
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for index, block in enumerate(blocks):
        where = f"/blocks/{index}"
        try:
            parsed = Block.parse(block) if isinstance(block, dict) else None
            if parsed is None:
                errors.append(f"unsupported block [json-pointer:{where}]")
                continue
            parsed.to_dict()  # runs slack_sdk's validators
        except (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError) as error:
            errors.append(f"{error} [json-pointer:{where}]")
            continue
        errors += _text_errors(block, where)
        fields = block.get("fields") if block.get("type") == "section" else None
        for number, item in enumerate(fields if isinstance(fields, list) else []):
            text = item.get("text") if isinstance(item, dict) else None
            if isinstance(text, str) and len(text) > MAX_FIELD_TEXT:
                too_long = f"must be less than {MAX_FIELD_TEXT + 1} characters"
                errors.append(f"{too_long} [json-pointer:{where}/fields/{number}/text]")
    return errors


def _text_errors(node: object, where: str) -> list[str]:
    """Every text object under ``node``: a string of 1 to 3,000 characters."""
    if isinstance(node, list):
        return [e for i, item in enumerate(node) for e in _text_errors(item, f"{where}/{i}")]
    if not isinstance(node, dict):
        return []
    if node.get("type") in _TEXT_TYPES:
        text = node.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
            return [f"must be 1 to {MAX_TEXT} characters [json-pointer:{where}/text]"]
        return []
    return [e for key, value in node.items() for e in _text_errors(value, f"{where}/{key}")]


def _invalid_blocks(errors: list[str]) -> dict[str, Any]:
    """The Web API's answer to blocks it refuses (chat.postMessage and chat.update alike).

    ``invalid_blocks`` with an ``errors`` list is the shape Slack documents for a refused payload
    (https://docs.slack.dev/reference/methods/blocks.validate); chat.postMessage's errors are
    strings, as Slack sent them to users who reported them: "must be less than 3001 characters
    [json-pointer:/blocks/0/text/text]".
    """
    return {
        "ok": False,
        "error": "invalid_blocks",
        "errors": errors,
        "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
    }


@dataclass(frozen=True)
class SlackCall:
    """One call the platform made to Slack (tokens are checked, never kept)."""

    kind: str  # chat.postMessage, chat.update, users.info, webhook, response_url
    channel: str = ""
    ts: str = ""
    text: str = ""
    blocks: tuple[dict[str, Any], ...] = ()
    replace_original: bool = False
    response_type: str = ""
    thread_ts: str = ""


@dataclass
class SlackMessage:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    thread_ts: str = ""  # the message it replies to, if it is in a thread


class LocalSlack(ServedInThread):
    """Slack on localhost (see the module's docstring). Use as a context manager.

    ``users`` maps Slack user ids to their email addresses (what users.info tells an app
    with the users:read.email scope).
    """

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = dict(users or {})
        self.signing_secret = secrets.token_hex(16)
        self.bot_token = "xoxb-local-" + secrets.token_hex(12)
        self.calls: list[SlackCall] = []
        self.messages: dict[tuple[str, str], SlackMessage] = {}
        self._response_urls: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        super().__init__(self._handler_class(), "local-slack", "127.0.0.1", 0)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def configure(self, cloud: LocalCloud, output: str = "SlackAppSecretArn") -> None:
        """Put this Slack's app credentials in the platform's Slack secret (as a platform team would)."""
        value = {
            "signing_secret": self.signing_secret,
            "bot_token": self.bot_token,
            "api_url": f"{self.url}/api/",
            "hooks_url": f"{self.url}/",
        }
        cloud.client("secretsmanager").put_secret_value(
            SecretId=cloud.output(output), SecretString=json.dumps(value)
        )

    # -- what the platform posted -------------------------------------------------------
    def posted(self, channel: str) -> list[SlackMessage]:
        with self._lock:
            return [m for (c, _), m in self.messages.items() if c == channel]

    def thread(self, channel: str, ts: str) -> list[SlackMessage]:
        """The replies to one message, oldest first."""
        with self._lock:
            replies = [m for (c, _), m in self.messages.items() if c == channel and m.thread_ts == ts]
        return sorted(replies, key=lambda m: float(m.ts))

    # -- Slack's side: signed requests to the app ------------------------------------------
    def signed_headers(self, body: str, timestamp: int | None = None) -> dict[str, str]:
        """The headers Slack sends: its timestamp and the v0 signature of timestamp and body."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        digest = hmac.new(self.signing_secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256)
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest.hexdigest()}",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }

    def response_url(self, message: SlackMessage) -> str:
        token = secrets.token_hex(8)
        with self._lock:
            self._response_urls[token] = (message.channel, message.ts)
        return f"{self.url}/actions/{token}"

    def button_press_body(self, message: SlackMessage, action_id: str, user_id: str) -> str:
        """The form body of a block_actions request: a user pressed a button of ``message``."""
        button = next(
            element
            for block in message.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("action_id") == action_id
        )
        payload = {
            "type": "block_actions",
            "user": {"id": user_id, "username": self._name(user_id), "name": self._name(user_id)},
            "api_app_id": "A0LOCAL",
            "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel},
            "channel": {"id": message.channel},
            "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
            "response_url": self.response_url(message),
            "trigger_id": f"{int(time.time())}.local",
            "actions": [
                {
                    "type": "button",
                    "action_id": button["action_id"],
                    "block_id": "approval",
                    "value": button["value"],
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return urlencode({"payload": json.dumps(payload)})

    def command_body(
        self, user_id: str, text: str, command: str = "/canaryfleet", *, typed: bool = True
    ) -> str:
        """The form body of a slash command whose ``text`` the person typed, escaped as Slack
        sends all text: ``&``, ``<`` and ``>`` as ``&amp;``, ``&lt;`` and ``&gt;`` (Slack API,
        Formatting text: Escaping). ``typed=False``: ``text`` is already as Slack sends it (a
        mention Slack resolved, ``<@U0ALICE|alice>``, keeps its brackets)."""
        if typed:
            text = slack_escape(text)
        return urlencode(
            {
                "command": command,
                "text": text,
                "user_id": user_id,
                "user_name": self._name(user_id),
                "team_id": "T0LOCAL",
                "channel_id": "C0LOCAL",
                "response_url": f"{self.url}/commands/{secrets.token_hex(8)}",
                "trigger_id": f"{int(time.time())}.local",
            }
        )

    def send(self, url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
        """POST a request the way Slack does; the status and body the app answered."""
        if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
            raise ValueError(f"LocalSlack only calls local endpoints, not {url}")
        request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310
                return int(answer.status), answer.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode()

    def press(self, endpoint: str, message: SlackMessage, action_id: str, user_id: str) -> tuple[int, str]:
        """A user pressed a button: the signed request Slack sends to the app's interactivity URL."""
        body = self.button_press_body(message, action_id, user_id)
        return self.send(f"{endpoint}/slack/interactions", body, self.signed_headers(body))

    def _name(self, user_id: str) -> str:
        email = self.users.get(user_id, "")
        return email.split("@")[0] if email else user_id.lower()

    # -- Slack's Web API, webhooks and response URLs ----------------------------------------
    def _api(self, method: str, token: str | None, args: dict[str, Any]) -> dict[str, Any]:
        if token != self.bot_token:
            return {"ok": False, "error": "invalid_auth"}
        methods = {
            "chat.postMessage": self._post_message,
            "chat.update": self._update_message,
            "users.info": self._user_info,
        }
        with self._lock:
            call = methods.get(method)
            return call(args) if call else {"ok": False, "error": "unknown_method"}

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        thread = str(args.get("thread_ts") or "")
        if thread and (channel, thread) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        errors = block_errors(args.get("blocks") or [])
        if errors:
            return _invalid_blocks(errors)
        ts = f"{time.time():.6f}"
        while (channel, ts) in self.messages:  # Slack's ts is unique within a channel
            ts = f"{float(ts) + 0.000001:.6f}"
        text, blocks = str(args.get("text", "")), list(args.get("blocks") or [])
        message = SlackMessage(channel, ts, text, blocks, thread_ts=thread)
        self.messages[(channel, ts)] = message
        self.calls.append(
            SlackCall("chat.postMessage", channel, ts, message.text, tuple(message.blocks), thread_ts=thread)
        )
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": message.text, "ts": ts}}

    def _update_message(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (str(args.get("channel", "")), str(args.get("ts", "")))
        found = self.messages.get(key)
        if found is None:
            return {"ok": False, "error": "message_not_found"}
        errors = block_errors(args.get("blocks") or [])
        if errors:
            return _invalid_blocks(errors)  # the message keeps its blocks
        found.history.append(found.text)
        found.text, found.blocks = str(args.get("text", "")), list(args.get("blocks") or [])
        self.calls.append(SlackCall("chat.update", key[0], key[1], found.text, tuple(found.blocks)))
        return {"ok": True, "channel": key[0], "ts": key[1], "text": found.text}

    def _user_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user", ""))
        self.calls.append(SlackCall("users.info"))
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        profile = {"email": self.users[user]}
        return {"ok": True, "user": {"id": user, "name": self._name(user), "profile": profile}}

    def _response(self, token: str, args: dict[str, Any]) -> tuple[int, str]:
        """A post to a response URL: the HTTP status and body Slack answers."""
        if block_errors(args.get("blocks") or []):
            # A response URL answers as an incoming webhook does, an HTTP status and one word:
            # 400 for a payload Slack cannot take (https://api.slack.com/changelog/2016-05-17-
            # changes-to-errors-for-incoming-webhooks), with "invalid_blocks" for its blocks.
            return 400, "invalid_blocks"
        with self._lock:
            where = self._response_urls.get(token)
            replace = bool(args.get("replace_original"))
            text, blocks = str(args.get("text", "")), list(args.get("blocks") or [])
            channel, ts = where or ("", "")
            self.calls.append(
                SlackCall(
                    "response_url",
                    channel,
                    ts,
                    text,
                    tuple(blocks),
                    replace,
                    str(args.get("response_type", "")),
                )
            )
            if where is None:
                return 404, "expired_url"
            if replace and where in self.messages:
                message = self.messages[where]
                message.history.append(message.text)
                message.text, message.blocks = text, blocks
            return 200, "ok"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        slack = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _args(self) -> dict[str, Any]:
                split = urlsplit(self.path)
                args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(split.query).items()}
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                if raw and (self.headers.get("content-type") or "").startswith("application/json"):
                    args.update(json.loads(raw))
                elif raw:
                    for name, values in parse_qs(raw).items():
                        value = values[-1]
                        args[name] = json.loads(value) if name == "blocks" else value
                return args

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _serve(self) -> None:
                path = urlsplit(self.path).path
                args = self._args()
                if path.startswith("/api/"):
                    auth = self.headers.get("authorization") or ""
                    token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
                    result = slack._api(path.removeprefix("/api/"), token, args)
                    self._answer(200, json.dumps(result).encode(), "application/json; charset=utf-8")
                elif path.startswith("/actions/"):
                    status, said = slack._response(path.removeprefix("/actions/"), args)
                    self._answer(status, said.encode(), "text/plain")
                elif path.startswith("/commands/"):
                    status, said = slack._response(path.removeprefix("/commands/"), args)
                    if status == 404:  # a command's response URL belongs to no message
                        status, said = 200, "ok"
                    self._answer(status, said.encode(), "text/plain")
                else:
                    self._answer(404, b"no_service", "text/plain")

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Silent."""

        return Handler
