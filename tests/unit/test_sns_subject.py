"""SNS subjects: every subject canaryfleet publishes is one SNS accepts (fewer than 100 characters,
one line, no control characters, beginning with a letter, number or punctuation mark)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from canaryfleet.logic.notify_messages import summary_email
from canaryfleet.models.notification import Notice
from canaryfleet.models.sns_subject import FALLBACK_SUBJECT, SNS_SUBJECT_MAX_CHARACTERS, sns_subject
from hypothesis import given
from hypothesis import strategies as st

# The longest names canaryfleet allows: APP_NAME_PATTERN (40) and VERSION_PATTERN (64).
LONGEST_APP = "a" + "b" * 38 + "c"
LONGEST_VERSION = "1" + "0" * 63


def accepted_by_sns(subject: str) -> bool:
    """The Publish API's rule, written out here independently of the helper under test."""
    return (
        0 < len(subject) < 100
        and not any(unicodedata.category(c) in {"Cc", "Cs", "Zl", "Zp"} for c in subject)
        and unicodedata.category(subject[0])[0] in "LNPS"
    )


def test_a_short_subject_is_kept_as_it_is() -> None:
    text = "canaryfleet payments-api 1.4.2: released"
    assert sns_subject(text) == text


def test_a_long_subject_is_cut_to_99_ascii_characters_ending_in_three_dots() -> None:
    # Given the subject of a rollout of the longest application name and version
    text = f"canaryfleet {LONGEST_APP} {LONGEST_VERSION}: rolled back"

    # When it is made a subject
    subject = sns_subject(text)

    # Then it has 99 ASCII characters (the API reference's earlier wording asked for ASCII), the
    # last three dots, and begins as the text did
    assert len(subject) == SNS_SUBJECT_MAX_CHARACTERS
    assert subject.isascii()
    assert subject.endswith("...")
    assert text.startswith(subject[:-3])


def test_a_subject_of_exactly_100_characters_is_cut_as_sns_wants_fewer() -> None:
    assert len(sns_subject("x" * 100)) == 99


def test_line_breaks_and_control_characters_become_one_space() -> None:
    assert sns_subject("rolled back:\r\n  canary\talarm\x00fired\u2028again") == (
        "rolled back: canary alarm fired again"
    )


def test_a_subject_begins_with_a_letter_number_or_punctuation_mark() -> None:
    assert sns_subject("  \u0301\n released") == "released"


def test_a_subject_with_nothing_printable_says_it_is_a_canaryfleet_notification() -> None:
    assert sns_subject(" \n\x07 ") == FALLBACK_SUBJECT


def test_characters_are_counted_not_bytes() -> None:
    # Given 99 characters of three bytes each (297 bytes of UTF-8)
    text = "\u00e9\u20ac" * 49 + "\u20ac"

    # Then the subject keeps them all: SNS's limit is in characters
    assert sns_subject(text) == text


@given(st.text(max_size=300))
def test_whatever_text_goes_in_sns_accepts_the_subject(text: str) -> None:
    assert accepted_by_sns(sns_subject(text))


def _notice(application: str, version: str) -> Notice:
    return Notice(
        kind="rollout.rolled_back",
        application=application,
        body={"rollout_id": "r-1", "application": application, "version": version},
        message_id="m-1",
        published_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
    )


def test_the_summary_email_of_the_longest_names_has_a_subject_sns_accepts() -> None:
    # Given a rolled-back rollout of the longest application name and version canaryfleet allows
    notice = _notice(LONGEST_APP, LONGEST_VERSION)

    # When its summary email is written
    subject, _ = summary_email(notice, None)

    # Then SNS would accept its subject (it used to be cut to 100 characters, which SNS refuses)
    assert accepted_by_sns(subject)
    assert subject.startswith(f"canaryfleet {LONGEST_APP} ")
