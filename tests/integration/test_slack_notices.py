"""Slack for the notices, as Slack answers: what it refused comes back, what cannot be read never posts.

Slack is a small HTTP server on loopback answering as Slack's Web API and incoming webhooks do
when they refuse (Slack API: chat.update's errors; the 2016-05-17 changelog, "Changes to errors
for incoming webhooks"; rate limits answer 429 with a Retry-After). The secret is read from
Secrets Manager on moto, as NotifyFunction reads it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from canaryfleet.adapters.secrets import SecretsManagerSlackSecret, forget_secrets
from canaryfleet.adapters.slack import SlackSdkApi, UnusableSlack, notice_slack
from canaryfleet.errors import ConfigurationError
from canaryfleet.models.approval import SlackMessageRef, SlackSecret

from tests.integration.helpers import moto_account

WEBHOOK_PATH = "/services/T0PAY/B0PAY/WEBHOOKSECRET0123456789"


class Slack:
    """Answers each path with the status and body set for it (200 "ok" by default)."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.first_answers: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}  # before answers
        self.requests: list[str] = []
        slack = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                slack.requests.append(self.path)
                first = slack.first_answers.get(self.path)
                answer = first.pop(0) if first else slack.answers.get(self.path, (200, {}, b"ok"))
                status, headers, body = answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/"

    def api_error(self, method: str, error: str) -> None:
        body = json.dumps({"ok": False, "error": error}).encode()
        self.answers[f"/api/{method}"] = (200, {"content-type": "application/json"}, body)


@pytest.fixture
def slack() -> Iterator[Slack]:
    served = Slack()
    yield served
    served.server.shutdown()
    served.server.server_close()


def webhook_secret(slack: Slack) -> SlackSecret:
    return SlackSecret(webhook_url=slack.url + WEBHOOK_PATH.lstrip("/"), hooks_url=slack.url)


def bot_secret(slack: Slack) -> SlackSecret:
    return SlackSecret(bot_token="xoxb-0", api_url=slack.url + "api/", hooks_url=slack.url)


def webhook(slack: Slack) -> SlackSdkApi:
    return SlackSdkApi(webhook_secret(slack))


def bot(slack: Slack) -> SlackSdkApi:
    return SlackSdkApi(bot_secret(slack))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, b"rate_limited"),
        (410, b"channel_is_archived"),
        (404, b"channel_not_found"),
        (500, b"rollup_error"),
    ],
)
def test_a_webhook_that_refuses_says_it_did_not_take_the_message(
    slack: Slack, status: int, body: bytes
) -> None:
    slack.answers[WEBHOOK_PATH] = (status, {"Retry-After": "30"} if status == 429 else {}, body)
    assert webhook(slack).announce("C0PAY", "payments-api 1.4.2: Released", []) is False


def test_a_webhook_that_answers_ok_took_the_message(slack: Slack) -> None:
    assert webhook(slack).announce("C0PAY", "payments-api 1.4.2: Released", []) is True
    assert slack.requests == [WEBHOOK_PATH]


def test_an_update_slack_rate_limited_is_worth_trying_again_and_a_deleted_card_is_not(slack: Slack) -> None:
    card = SlackMessageRef(channel="C0PAY", ts="1.2")
    slack.answers["/api/chat.update"] = (
        429,
        {"Retry-After": "30", "content-type": "application/json"},
        b"{}",
    )
    assert bot(slack).update(card, "payments-api 1.4.2: Released", []) == "failed"
    for gone in ("message_not_found", "cant_update_message", "edit_window_closed"):
        slack.api_error("chat.update", gone)
        assert bot(slack).update(card, "payments-api 1.4.2: Released", []) == "gone"
    slack.answers["/api/chat.update"] = (200, {"content-type": "application/json"}, b'{"ok": true}')
    assert bot(slack).update(card, "payments-api 1.4.2: Released", []) == "updated"


class _Source:
    """The Slack secret as NotifyFunction's source gives it."""

    def __init__(self, secret: SlackSecret) -> None:
        self.secret = secret

    def load(self) -> SlackSecret:
        return self.secret


POSTED = (200, {"content-type": "application/json"}, b'{"ok": true, "channel": "C0PAY", "ts": "1.2"}')


def _limited(seconds: str) -> tuple[int, dict[str, str], bytes]:
    return (429, {"Retry-After": seconds, "content-type": "application/json"}, b'{"ok": false}')


def test_a_notice_waits_out_a_short_rate_limit_once_and_is_posted(slack: Slack) -> None:
    # Given Slack limits a burst to the channel for a second (Retry-After: 1)
    poster = notice_slack(_Source(bot_secret(slack)))
    slack.first_answers["/api/chat.postMessage"] = [_limited("1")]
    slack.answers["/api/chat.postMessage"] = POSTED

    # When a notice posts, Then it is posted on the second call
    assert poster is not None
    assert poster.post("C0PAY", "payments-api 1.4.2: Released", []) == SlackMessageRef(
        channel="C0PAY", ts="1.2"
    )
    assert slack.requests == ["/api/chat.postMessage"] * 2


def test_a_notice_by_webhook_waits_out_a_short_rate_limit_too(slack: Slack) -> None:
    poster = notice_slack(_Source(webhook_secret(slack)))
    slack.first_answers[WEBHOOK_PATH] = [(429, {"Retry-After": "1"}, b"rate_limited")]

    assert poster is not None
    assert poster.announce("C0PAY", "payments-api 1.4.2: Released", []) is True
    assert slack.requests == [WEBHOOK_PATH] * 2


def test_a_long_rate_limit_is_not_waited_out_in_the_call(slack: Slack) -> None:
    # Given Slack asks for 30 s: longer than a notice may wait within its invocation
    poster = notice_slack(_Source(bot_secret(slack)))
    slack.first_answers["/api/chat.postMessage"] = [_limited("30")]
    slack.answers["/api/chat.postMessage"] = POSTED

    # Then the call fails at once (its notice comes back from the queue)
    assert poster is not None
    assert poster.post("C0PAY", "payments-api 1.4.2: Released", []) is None
    assert slack.requests == ["/api/chat.postMessage"]


def test_slack_interactions_never_wait_for_a_rate_limit(slack: Slack) -> None:
    # Given the Slack of the approvals, which must answer Slack within three seconds
    slack.first_answers["/api/chat.update"] = [_limited("1")]

    card = SlackMessageRef(channel="C0PAY", ts="1.2")
    assert bot(slack).update(card, "payments-api 1.4.2: Approved", []) == "failed"
    assert slack.requests == ["/api/chat.update"]


# --- the secret, as NotifyFunction reads it -------------------------------------------------


@pytest.fixture
def secret() -> Iterator[Any]:
    """Put a value in the Slack app's secret on moto; NotifyFunction's source for it."""
    with moto_account("eu-west-1"):
        sm = boto3.client("secretsmanager")
        arn = sm.create_secret(Name="canaryfleet-slack", SecretString="{}")["ARN"]

        def put(value: str) -> SecretsManagerSlackSecret:
            sm.put_secret_value(SecretId=arn, SecretString=value)
            forget_secrets()
            return SecretsManagerSlackSecret(arn)

        yield put
        forget_secrets()


@pytest.mark.parametrize(
    "value",
    [
        '{"signing_secret": "s", "bot_token": "xoxb-1",}',  # a trailing comma left by a hand edit
        '{"webhook_url": "hooks.slack.com/services/T0PAY/B0PAY/WEBHOOKSECRET0123456789"}',  # no scheme
        '{"webhook_url": "https://example.com/services/T0PAY/B0PAY/WEBHOOKSECRET0123456789"}',  # not Slack's
    ],
)
def test_a_secret_that_cannot_be_read_fails_each_notice_without_quoting_it(secret: Any, value: str) -> None:
    poster = notice_slack(secret(value))

    assert isinstance(poster, UnusableSlack)
    with pytest.raises(ConfigurationError) as refused:
        poster.announce("C0PAY", "payments-api 1.4.2: Released", [])
    assert "WEBHOOKSECRET" not in str(refused.value) and "xoxb" not in str(refused.value)
    with pytest.raises(ConfigurationError):
        _ = poster.threads


def test_a_bot_token_posts_notices_without_the_signing_secret_that_approvals_need(secret: Any) -> None:
    poster = notice_slack(secret('{"bot_token": "xoxb-1"}'))

    assert isinstance(poster, SlackSdkApi) and poster.threads
    assert not SlackSecret(bot_token="xoxb-1").configured  # approvals still go by email only


def test_an_empty_secret_is_no_slack(secret: Any) -> None:
    assert notice_slack(secret("{}")) is None
    assert notice_slack(secret('{"signing_secret": "s"}')) is None


def test_what_is_wrong_with_the_secret_is_said_by_key_and_never_by_value(secret: Any) -> None:
    source = secret('{"bot_token": "xoxb-1", "xoxb-PASTEDTOKEN": "", "api_url": "ftp://SECRETHOST/"}')
    with pytest.raises(ConfigurationError) as wrong:
        source.load()

    said = str(wrong.value)
    assert "api_url" in said and "a key of another name" in said
    assert "PASTEDTOKEN" not in said and "SECRETHOST" not in said
