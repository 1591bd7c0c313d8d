"""Hostile HTTP bodies through the local HTTP API: a clear 4xx, and the approval stays undecided."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.helpers import load_event
from tests.integration.approval_gate import (
    ALICE,
    Gate,
    Waiting,
    approval_gate,
    assert_nothing_changed,
    heading,
    http,
    link_fields,
    page_url,
    wait_for_approval,
)
from tests.integration.helpers import invoke

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def gate() -> Iterator[Gate]:
    with approval_gate(log_level="CRITICAL") as local:
        yield local


@pytest.fixture(scope="module")
def waiting(gate: Gate) -> Waiting:
    return wait_for_approval(gate)


def form(waiting: Waiting, **changes: str) -> str:
    return urlencode({**link_fields(waiting.link(ALICE)), "action": "approve", "comment": "", **changes})


def encoded(waiting: Waiting) -> bytes:
    return form(waiting).encode()


NOT_A_FORM = (415, "Not a form")
GARBLED = (400, "The form is garbled")


@pytest.mark.parametrize(
    ("body", "content_type", "refusal"),
    [
        pytest.param(
            lambda w: form(w, comment="x" * 40_000).encode(), FORM, (413, "The form is too large"), id="huge"
        ),
        pytest.param(encoded, "text/plain", NOT_A_FORM, id="text"),
        pytest.param(lambda w: encoded(w) + b"\xff\xfe", "text/plain", NOT_A_FORM, id="text-not-utf8"),
        pytest.param(encoded, "application/octet-stream", NOT_A_FORM, id="binary"),
        pytest.param(encoded, f"{FORM}; charset=iso-8859-1", NOT_A_FORM, id="latin-1"),
        pytest.param(lambda w: encoded(w) + b"&comment2=\xff\xfe", FORM, GARBLED, id="utf8"),
        pytest.param(lambda w: (form(w) + "%ZZ").encode(), FORM, GARBLED, id="percent"),
        pytest.param(
            lambda w: form(w).replace("comment=", "comment=%C3%28").encode(), FORM, (400, None), id="escape"
        ),
    ],
)
def test_a_hostile_body_to_the_approval_page_is_refused_and_decides_nothing(
    gate: Gate, waiting: Waiting, body: Any, content_type: str, refusal: tuple[int, str | None]
) -> None:
    status, title = refusal

    answer, html = http("POST", page_url(waiting.link(ALICE)), body(waiting), {"Content-Type": content_type})

    assert answer == status
    if title is not None:
        assert heading(html) == title
    assert_nothing_changed(gate, waiting)


@pytest.mark.parametrize(
    "body", ["not base64!", "YWJj=", "YQ", "////\u00e9"], ids=["chars", "padding", "short", "non-ascii"]
)
def test_invalid_base64_to_the_approval_page_is_refused_with_400(
    gate: Gate, waiting: Waiting, body: str
) -> None:
    event = copy.deepcopy(load_event("approval_page/decide"))
    event["pathParameters"] = {"approval_id": waiting.approval_id}
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/approvals/{waiting.approval_id}"
    event["body"] = body

    answer, error = invoke(gate.cloud, "ApprovalPageFunction", event)

    assert error is None and answer["statusCode"] == 400
    assert_nothing_changed(gate, waiting)


def test_a_signed_slack_request_that_is_too_large_or_broken_is_refused_and_decides_nothing(
    gate: Gate, waiting: Waiting
) -> None:
    assert waiting.message is not None
    pressed = gate.slack.button_press_body(waiting.message, "approval.approve", "U0ALICE")
    url = f"{gate.api.url}/slack/interactions"
    cases = {
        "huge": (pressed + "&pad=" + "a" * 300_000, 413),
        "cut-json": (urlencode({"payload": '{"type": "block_actions", "user": {"id": '}), 400),
        "deep-json": (urlencode({"payload": "[" * 5_000 + "]" * 5_000}), 400),
        "percent": (pressed + "%G1", 400),
    }

    answers = {
        name: gate.slack.send(url, body, gate.slack.signed_headers(body))[0]
        for name, (body, _) in cases.items()
    }

    assert answers == {name: status for name, (_, status) in cases.items()}
    assert_nothing_changed(gate, waiting)


def test_invalid_base64_to_the_slack_app_is_refused_with_400(gate: Gate, waiting: Waiting) -> None:
    event = copy.deepcopy(load_event("slack_interactions/block_actions"))
    event["body"] = "cGF5bG9hZD0=" + "!!"

    answer, error = invoke(gate.cloud, "SlackInteractionsFunction", event)

    assert error is None and answer["statusCode"] == 400
    assert_nothing_changed(gate, waiting)


# Headers not of Slack's form (digits of another script, a number too long to read, a signature
# that is not ASCII) are answered like any bad signature by the real handler, never with a crash.
NOW = "now"


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        ("²", None),  # a digit to str.isdigit, not to int()
        ("1" * 5000, None),  # more digits than int() reads
        (NOW, "v0=" + "é" * 64),  # hmac.compare_digest refuses to compare non-ASCII text
    ],
    ids=["superscript-digit", "5000-digits", "non-ascii-signature"],
)
def test_a_button_press_with_headers_slack_never_sends_gets_401_and_decides_nothing(
    gate: Gate, waiting: Waiting, timestamp: str, signature: str | None
) -> None:
    # Given a press of the approval's Approve button, signed, then its headers replaced
    assert waiting.message is not None
    body = gate.slack.button_press_body(waiting.message, "approval.approve", "U0ALICE")
    headers = gate.slack.signed_headers(body)
    if timestamp != NOW:
        headers["X-Slack-Request-Timestamp"] = timestamp
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    calls = len(gate.slack.calls)

    # When it reaches the Slack app through the HTTP API
    status, answer = gate.slack.send(f"{gate.api.url}/slack/interactions", body, headers)

    # Then it is refused as unsigned, and nothing changed
    assert (status, answer) == (401, "invalid signature")
    assert_nothing_changed(gate, waiting)
    assert len(gate.slack.calls) == calls, "the app answered in Slack"
