"""Slack's Web API, incoming webhooks and response URLs, behind one small class (slack-sdk).

Slack being down never blocks a decision: calls that fail are logged (without their
arguments, which may hold a token or a webhook URL) and reported as not done.
"""

from __future__ import annotations

import re
from http.client import HTTPException
from typing import Any, Protocol
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from canaryfleet.adapters.secrets import SlackSecretSource
from canaryfleet.errors import ConfigurationError
from canaryfleet.models.approval import SlackMessageRef, SlackSecret
from canaryfleet.observability import logger, untraced_host
from canaryfleet.ports.notify import SlackPoster

_TIMEOUT_SECONDS = 5
# Slack sends its interactivity payloads and slash commands as its signature allows: five minutes.
MAX_REQUEST_AGE_SECONDS = 300
# The headers as Slack writes them: Unix seconds, and "v0=" with HMAC-SHA256's hex digest. Checked
# before slack_sdk reads them, which would raise on what a caller can send: int() on "²" (a digit
# to str.isdigit) or on 5,000 digits, hmac.compare_digest on a non-ASCII signature. [0-9] is ASCII
# only, where \d takes any script's digits.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class SlackApi(SlackPoster, Protocol):
    """Slack for notices (``SlackPoster``) and for approvals: answering an interaction, reading an email."""

    def respond(
        self, response_url: str, text: str, blocks: list[dict[str, Any]] | None, replace: bool
    ) -> bool:
        """Answer an interaction through its response URL (replace the message, or tell only the user)."""
        ...

    def email_of(self, user_id: str) -> str | None:
        """The user's email address, if the app may read it (users:read.email)."""
        ...


def verify_request(secret: SlackSecret, body: str, timestamp: str | None, signature: str | None) -> bool:
    """Slack's request signature (v0, HMAC-SHA256 of the body) within five minutes of now.

    Any header not of Slack's form is simply invalid: this never raises on what a caller sent.
    """
    if secret.signing_secret is None or timestamp is None or signature is None:
        return False
    if not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        return False
    verifier = SignatureVerifier(secret.signing_secret.get_secret_value())
    return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)


class SlackSdkApi(SlackApi):
    """A bot token (chat.postMessage, chat.update, users.info) or an incoming webhook (post only)."""

    def __init__(self, secret: SlackSecret) -> None:
        self._secret = secret

    def _web(self) -> WebClient | None:
        token = self._secret.bot_token
        if token is None:
            return None
        return WebClient(
            token=token.get_secret_value(), base_url=self._secret.api_url, timeout=_TIMEOUT_SECONDS
        )

    @property
    def threads(self) -> bool:
        return self._secret.bot_token is not None

    def post(
        self,
        channel: str | None,
        text: str,
        blocks: list[dict[str, Any]],
        thread_ts: str | None = None,
    ) -> SlackMessageRef | None:
        web = self._web()
        try:
            if web is not None and channel:
                response = web.chat_postMessage(
                    channel=channel, text=text, blocks=blocks, thread_ts=thread_ts
                )
                return SlackMessageRef(channel=str(response["channel"]), ts=str(response["ts"]))
            if self._secret.webhook_url is not None:
                url = self._secret.webhook_url.get_secret_value()
                untraced_host(url)
                hook = WebhookClient(url, timeout=_TIMEOUT_SECONDS)
                sent = hook.send(text=text, blocks=blocks)
                if sent.status_code != 200:
                    logger.warning("slack webhook refused the message", extra={"status": sent.status_code})
                return None
        except (SlackApiError, SlackClientError, OSError) as exc:
            logger.warning("slack message not posted", extra={"error": _describe(exc)})
            return None
        logger.info("no slack channel to post to")
        return None

    def update(self, message: SlackMessageRef, text: str, blocks: list[dict[str, Any]]) -> bool:
        web = self._web()
        if web is None:
            return False
        try:
            web.chat_update(channel=message.channel, ts=message.ts, text=text, blocks=blocks)
        except (SlackApiError, SlackClientError, OSError) as exc:
            logger.warning("slack message not updated", extra={"error": _describe(exc)})
            return False
        return True

    def respond(
        self, response_url: str, text: str, blocks: list[dict[str, Any]] | None, replace: bool
    ) -> bool:
        if not response_url.startswith(self._secret.hooks_url):
            # Whoever holds the signing secret could point the function at any host (an internal
            # one included); Slack's own response URLs are all under its hooks host.
            logger.warning(
                "response_url is not Slack's; not called", extra={"host": urlsplit(response_url).hostname}
            )
            return False
        untraced_host(response_url)
        try:
            sent = WebhookClient(response_url, timeout=_TIMEOUT_SECONDS).send(
                text=text,
                blocks=blocks,
                replace_original=replace,
                response_type=None if replace else "ephemeral",
            )
        except (SlackClientError, OSError, HTTPException, ValueError) as exc:
            # HTTPException and ValueError: a URL urllib will not send (http.client.InvalidURL,
            # UnicodeEncodeError). An answer is never what decides, so it never fails the call.
            logger.warning("slack response not sent", extra={"error": _describe(exc)})
            return False
        return sent.status_code == 200

    def email_of(self, user_id: str) -> str | None:
        web = self._web()
        if web is None:
            return None
        try:
            response = web.users_info(user=user_id)
        except (SlackApiError, SlackClientError, OSError) as exc:
            logger.warning("slack user not looked up", extra={"error": _describe(exc)})
            return None
        email = (response.get("user") or {}).get("profile", {}).get("email")
        return str(email).lower() if email else None


def slack_api(secret: SlackSecret) -> SlackApi | None:
    """The Slack app, or None when its secret does not set it up (approvers get email only)."""
    return SlackSdkApi(secret) if secret.configured else None


def optional_slack(source: SlackSecretSource) -> SlackApi | None:
    """For work that must go on without Slack (the page, the expiry): a broken secret means none."""
    try:
        return slack_api(source.load())
    except ConfigurationError as exc:
        logger.warning("slack is not usable", extra={"error": str(exc)})
        return None


def _describe(exc: Exception) -> str:
    """An error in words Slack chose (e.g. "channel_not_found"), never the request it came from."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "slack_api_error"))
    return type(exc).__name__
