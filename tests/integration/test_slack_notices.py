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
        self.requests: list[str] = []
        slack = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                slack.requests.append(self.path)
                status, headers, body = slack.answers.get(self.path, (200, {}, b"ok"))
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


def webhook(slack: Slack) -> SlackSdkApi:
    return SlackSdkApi(SlackSecret(webhook_url=slack.url + WEBHOOK_PATH.lstrip("/"), hooks_url=slack.url))


def bot(slack: Slack) -> SlackSdkApi:
    return SlackSdkApi(SlackSecret(bot_token="xoxb-0", api_url=slack.url + "api/", hooks_url=slack.url))


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
