"""Slack's side: request signatures within five minutes, and when the Slack app is set up at all."""

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from canaryfleet.adapters.slack import slack_api, verify_request
from canaryfleet.models.app_config import APPROVER_EMAIL_MAX_LENGTH, SLACK_USER_ID_MAX_LENGTH, Approvers
from canaryfleet.models.approval import (
    ApprovalDecision,
    SlackSecret,
    SlackUser,
)
from canaryfleet.models.decision import SLACK_USER_NAME_MAX_LENGTH, Decision
from hypothesis import given
from hypothesis import strategies as st

SECRET = SlackSecret.model_validate(
    {"signing_secret": "8f742231b10e8888abcd99yyyzzz85a5", "bot_token": "xoxb-1"}
)
BODY = "payload=%7B%22type%22%3A%22block_actions%22%7D"


def signature(body: str, timestamp: int, secret: str = "8f742231b10e8888abcd99yyyzzz85a5") -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()


def test_a_request_signed_now_with_the_apps_secret_is_valid() -> None:
    now = int(time.time())

    assert verify_request(SECRET, BODY, str(now), signature(BODY, now))


@pytest.mark.parametrize(
    ("timestamp", "signed", "body"),
    [
        (-301, None, BODY),  # replayed after five minutes
        (0, "another secret", BODY),
        (0, None, BODY + "&x=1"),  # the body changed after signing
    ],
    ids=["too-old", "wrong-secret", "altered-body"],
)
def test_a_request_is_invalid_when(timestamp: int, signed: str | None, body: str) -> None:
    stamp = int(time.time()) + timestamp
    sign = signature(BODY, stamp, signed) if signed else signature(BODY, stamp)

    assert not verify_request(SECRET, body, str(stamp), sign)


# Well formed, so that the timestamp alone decides.
SOME_SIGNATURE = "v0=" + "0" * 64


@pytest.mark.parametrize(
    "timestamp",
    [None, "", "12ab", "-5", "²", "\u0661\u0667" * 5, "1" * 5000, "1" * 13, " 1700000000", "1700000000\n"],
    ids=[
        "none",
        "empty",
        "letters",
        "negative",
        "superscript-digit",
        "arabic-indic-digits",
        "5000-digits",
        "13-digits",
        "leading-space",
        "trailing-newline",
    ],
)
def test_a_missing_or_non_numeric_timestamp_is_invalid(timestamp: str | None) -> None:
    assert not verify_request(SECRET, BODY, timestamp, SOME_SIGNATURE)


@pytest.mark.parametrize(
    "changed",
    [
        lambda s: None,
        lambda s: "",
        lambda s: s[:-1] + "é",  # not ASCII: hmac.compare_digest would raise TypeError
        lambda s: "v0=" + "é" * 64,
        lambda s: s.upper().replace("V0=", "v0="),  # Slack writes lowercase hex
        lambda s: s.replace("v0=", "v1="),
        lambda s: s[:-1],
        lambda s: s + "0",
        lambda s: s.removeprefix("v0="),
    ],
    ids=["none", "empty", "non-ascii", "all-non-ascii", "upper-case", "v1", "short", "long", "no-version"],
)
def test_a_signature_not_of_slacks_form_is_invalid(changed: Any) -> None:
    now = int(time.time())

    assert not verify_request(SECRET, BODY, str(now), changed(signature(BODY, now)))


# Digits of any script (str.isdigit takes them all, int() only some), any text after "v0=".
DIGITS = st.text(st.characters(categories=("Nd", "No")), min_size=1)
NOW = str(int(time.time()))


@given(
    timestamp=st.one_of(st.none(), st.just(NOW), st.text(), DIGITS),
    sign=st.one_of(st.none(), st.text(), st.text().map(lambda text: "v0=" + text)),
)
def test_whatever_headers_a_caller_sends_the_answer_is_valid_or_not_never_an_error(
    timestamp: str | None, sign: str | None
) -> None:
    assert verify_request(SECRET, BODY, timestamp, sign) is False


def test_without_a_signing_secret_nothing_verifies_and_there_is_no_slack() -> None:
    empty = SlackSecret()
    now = int(time.time())

    assert not verify_request(empty, BODY, str(now), signature(BODY, now))
    assert slack_api(empty) is None
    assert slack_api(SlackSecret.model_validate({"signing_secret": "s"})) is None
    assert slack_api(SECRET) is not None


def test_the_secret_never_shows_in_its_repr() -> None:
    assert "xoxb-1" not in repr(SECRET) and "8f742231" not in repr(SECRET)


def test_a_slack_user_is_labelled_by_email_when_known() -> None:
    user = SlackUser(id="U024BE7LH", name="maria")

    assert (user.label("maria@example.com"), user.label(None)) == (
        "maria@example.com (Slack U024BE7LH)",
        "maria (Slack U024BE7LH)",
    )


def longest_approver_email() -> str:
    """An address as long as the registry accepts (APPROVER_EMAIL_MAX_LENGTH characters)."""
    local, domain = "maria.lopez", ".payments.example.com"
    return f"{local}@{'d' * (APPROVER_EMAIL_MAX_LENGTH - len(local) - 1 - len(domain))}{domain}"


@pytest.mark.parametrize("known_as", ["email", "name", "id"])
def test_the_longest_slack_label_of_an_approver_is_recorded_as_who_decided(known_as: str) -> None:
    # Given an approver listed by the longest address the registry accepts, who presses a button
    # with the longest Slack user id and name a signed request carries
    [email] = Approvers(emails=(longest_approver_email(),)).emails
    name = "" if known_as == "id" else "m" * SLACK_USER_NAME_MAX_LENGTH
    user = SlackUser(id="U" + "0" * (SLACK_USER_ID_MAX_LENGTH - 1), name=name)

    # When the gate records their answer and the decision path's request names them
    by = user.label(email if known_as == "email" else None)
    decision = ApprovalDecision(action="approve", by=by, channel="slack", at=datetime.now(UTC))
    request = Decision(application="payments-api", action="approve", by=by, channel="slack")

    # Then both keep the label whole: the click decides instead of failing the request
    assert decision.by == request.by == by
    assert by.endswith(f" (Slack {user.id})")


@pytest.mark.parametrize(
    ("action", "said"),
    [("abort", "recorded; the rollout stops before its build goes further"), ("promote", "next wait")],
)
def test_a_slack_decision_recorded_without_a_wait_says_when_it_takes_effect(action: str, said: str) -> None:
    from canaryfleet.api.slack_app import RolloutCommand, _said  # noqa: PLC0415
    from canaryfleet.models.decision import DecisionResult  # noqa: PLC0415

    command = RolloutCommand(application="payments-api", rollout_id="r-1", reason="card network incident")
    result = DecisionResult(rollout_id="r-1", action=action, outcome="recorded")

    assert said in _said(action, command, SlackUser(id="U024BE7LH", name="maria"), result)


def test_a_slack_abort_refused_as_too_late_says_why_once() -> None:
    from canaryfleet.api.slack_app import RolloutCommand, _said  # noqa: PLC0415
    from canaryfleet.models.decision import DecisionResult, too_late_to_abort  # noqa: PLC0415

    command = RolloutCommand(application="payments-api", rollout_id="r-1", reason="card network incident")
    detail = too_late_to_abort("2.7.0")
    result = DecisionResult(rollout_id="r-1", action="abort", outcome="already_decided", detail=detail)

    said = _said("abort", command, SlackUser(id="U024BE7LH", name="maria"), result)

    assert said.startswith(
        "Abort of payments-api rollout r-1 by <@U024BE7LH> not done (too late to abort: 2.7.0"
    )
    assert "the wait had ended" not in said
