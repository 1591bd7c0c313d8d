"""Requests to the Slack routes that Slack did not sign: 401 from the real handler, never a crash.

Headers not of Slack's form (digits of another script, a number too long to read, a signature
that is not ASCII) are answered like any bad signature, and decide nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.approval_gate import (
    Gate,
    Waiting,
    approval_gate,
    assert_nothing_changed,
    wait_for_approval,
)

NOW = "now"


@pytest.fixture(scope="module")
def gate() -> Iterator[Gate]:
    with approval_gate(log_level="CRITICAL") as local:
        yield local


@pytest.fixture(scope="module")
def waiting(gate: Gate) -> Waiting:
    return wait_for_approval(gate)


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
