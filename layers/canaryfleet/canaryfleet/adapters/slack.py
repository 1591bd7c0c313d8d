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
from slack_sdk.http_retry import (
    HttpRequest,
    HttpResponse,
    RateLimitErrorRetryHandler,
    RetryHandler,
    RetryState,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from canaryfleet.adapters.secrets import SlackSecretSource
from canaryfleet.errors import ConfigurationError
from canaryfleet.models.approval import SlackMessageRef, SlackSecret
from canaryfleet.observability import logger, untraced_host
from canaryfleet.ports.approvals import CardUpdate
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
# What a call that got no answer may raise: Slack's errors, the network's, and what urllib raises
# on a URL it will not send (http.client.InvalidURL, ValueError("unknown url type: ...")).
_UNSENT = (SlackApiError, SlackClientError, OSError, HTTPException, ValueError)
# chat.update's errors for a message that can never be updated: deleted, not the app's, or past
# the workspace's edit window (Slack API, chat.update, "Errors").
_CANNOT_BE_UPDATED = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


# Slack answers a burst past a method's rate (chat.postMessage: about one message a second per
# channel) with HTTP 429 and a Retry-After header of the seconds to wait (Slack API, "Rate
# limits"). A wait of this long or less is waited out once, within the call; a longer one fails
# the call as before, and its notice comes back from its queue.
RATE_LIMIT_WAIT_SECONDS = 2


class _ShortRateLimitWait(RateLimitErrorRetryHandler):
    """slack-sdk's rate-limit retry (it sleeps Retry-After and a random second, then calls again),
    taken once and only when Slack asks for at most ``RATE_LIMIT_WAIT_SECONDS``."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        values = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        try:
            seconds = int(values[0]) if values else 1
        except (TypeError, ValueError):
            return False
        return 0 <= seconds <= RATE_LIMIT_WAIT_SECONDS


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
    """A bot token (chat.postMessage, chat.update, users.info) or an incoming webhook (post only).

    ``wait_out_rate_limits``: wait out a short rate limit once within the call (the notices, which
    have the time); off where Slack waits for an answer within three seconds (its interactions).
    """

    def __init__(self, secret: SlackSecret, *, wait_out_rate_limits: bool = False) -> None:
        self._secret = secret
        self._wait = wait_out_rate_limits

    def _retries(self) -> list[RetryHandler]:
        return [_ShortRateLimitWait(max_retry_count=1)] if self._wait else []

    def _web(self) -> WebClient | None:
        token = self._secret.bot_token
        if token is None:
            return None
        return WebClient(
            token=token.get_secret_value(),
            base_url=self._secret.api_url,
            timeout=_TIMEOUT_SECONDS,
            retry_handlers=self._retries(),
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
        if web is None or not channel:
            if self._secret.webhook_url is not None:  # an incoming webhook says not where it posted
                self._send_by_webhook(self._secret.webhook_url.get_secret_value(), text, blocks)
            else:
                logger.info("no slack channel to post to")
            return None
        try:
            response = web.chat_postMessage(channel=channel, text=text, blocks=blocks, thread_ts=thread_ts)
        except _UNSENT as exc:
            logger.warning("slack message not posted", extra={"error": _describe(exc)})
            return None
        return SlackMessageRef(channel=str(response["channel"]), ts=str(response["ts"]))

    def announce(self, channel: str | None, text: str, blocks: list[dict[str, Any]]) -> bool:
        if self.threads and channel:  # a bot token: post builds its Web API client
            return self.post(channel, text, blocks) is not None
        if self._secret.webhook_url is not None:
            return self._send_by_webhook(self._secret.webhook_url.get_secret_value(), text, blocks)
        logger.info("no slack channel to post to")
        return False

    def _send_by_webhook(self, url: str, text: str, blocks: list[dict[str, Any]]) -> bool:
        """Post through the incoming webhook: Slack answers 200, and any other answer is a failure
        (400 invalid_payload, 404 channel_not_found, 410 channel_is_archived, 429 with a
        Retry-After: Slack API changelog 2016-05-17, "Changes to errors for incoming webhooks")."""
        untraced_host(url)
        try:
            sent = WebhookClient(url, timeout=_TIMEOUT_SECONDS, retry_handlers=self._retries()).send(
                text=text, blocks=blocks
            )
        except _UNSENT as exc:
            logger.warning("slack webhook not called", extra={"error": _describe(exc)})
            return False
        if sent.status_code != 200:
            logger.warning("slack webhook refused the message", extra={"status": sent.status_code})
            return False
        return True

    def update(self, message: SlackMessageRef, text: str, blocks: list[dict[str, Any]]) -> CardUpdate:
        web = self._web()
        if web is None:
            return "failed"
        try:
            web.chat_update(channel=message.channel, ts=message.ts, text=text, blocks=blocks)
        except _UNSENT as exc:
            said = _describe(exc)
            logger.warning("slack message not updated", extra={"error": said})
            return "gone" if said in _CANNOT_BE_UPDATED else "failed"
        return "updated"

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
        except _UNSENT as exc:
            # An answer is never what decides, so it never fails the call.
            logger.warning("slack response not sent", extra={"error": _describe(exc)})
            return False
        return sent.status_code == 200

    def email_of(self, user_id: str) -> str | None:
        web = self._web()
        if web is None:
            return None
        try:
            response = web.users_info(user=user_id)
        except _UNSENT as exc:
            logger.warning("slack user not looked up", extra={"error": _describe(exc)})
            return None
        email = (response.get("user") or {}).get("profile", {}).get("email")
        return str(email).lower() if email else None


def slack_api(secret: SlackSecret) -> SlackApi | None:
    """The Slack app, or None when its secret does not set it up (approvers get email only)."""
    return SlackSdkApi(secret) if secret.configured else None


def notice_slack(source: SlackSecretSource) -> SlackPoster | None:
    """Slack for the notices: a bot token or an incoming webhook is enough (the signing secret
    verifies Slack's requests, which notices never get); ``{}`` means no Slack.

    A secret that cannot be read as one (broken JSON, a webhook URL not Slack's) is no reason to
    drop notices for good: each one for a channel fails and comes back from the queue, and after
    five tries waits in the dead-letter queue (whose alarm tells on-call) until the secret is
    mended and the queue redriven.
    """
    try:
        secret = source.load()
    except ConfigurationError as exc:
        logger.error("slack secret not usable: notices for a channel come back", extra={"error": str(exc)})
        return UnusableSlack(str(exc))
    return SlackSdkApi(secret, wait_out_rate_limits=True) if secret.posts else None


class UnusableSlack(SlackPoster):
    """The Slack of a secret that could not be read: every call raises its ConfigurationError."""

    def __init__(self, why: str) -> None:
        self._why = why

    @property
    def threads(self) -> bool:
        raise ConfigurationError(self._why)

    def post(
        self, channel: str | None, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None
    ) -> SlackMessageRef | None:
        raise ConfigurationError(self._why)

    def announce(self, channel: str | None, text: str, blocks: list[dict[str, Any]]) -> bool:
        raise ConfigurationError(self._why)

    def update(self, message: SlackMessageRef, text: str, blocks: list[dict[str, Any]]) -> CardUpdate:
        raise ConfigurationError(self._why)


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
