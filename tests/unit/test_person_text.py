"""What people type (decision reasons, page comments): printable text only, refused at the edge."""

import pytest
from canaryfleet.errors import InvalidEvent
from canaryfleet.models.approval import PageDecisionForm
from canaryfleet.models.decision import Decision
from canaryfleet.models.events import parse_event
from canaryfleet.models.text import quoted, slack_escape
from pydantic import ValidationError

FORM = {"action": "approve", "approver": "alice@example.com", "expires": 1, "signature": "a" * 43}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("ok\x1b[2J\x1b[31mFAKE", "U+001B"),  # a terminal escape
        ("ok\x00", "U+0000"),
        ("approved \u202eevil", "U+202E"),  # right-to-left override
        ("zero\u200bwidth", "U+200B"),
        ("line\u2028separator", "U+2028"),
        ("tab\there", "U+0009"),
    ],
    ids=["escape", "nul", "bidi-override", "zero-width-space", "line-separator", "tab"],
)
def test_a_reason_with_a_character_that_does_not_print_is_a_typed_error_naming_it(
    text: str, named: str
) -> None:
    event = {"application": "payments-api", "action": "abort", "by": "oncall", "reason": text}

    with pytest.raises(InvalidEvent) as refused:
        parse_event(Decision, event)

    assert refused.value.problems == [
        f"reason: must hold only printable characters, spaces and line breaks; found {named}"
    ]


@pytest.mark.parametrize(
    ("by", "named"),
    [
        # a terminal link drawn over the real name, then the line erased and the cursor moved up
        ("alice@example.com\x1b]8;;https://evil.example/\x1b\\ (verified)\x1b]8;;\x1b\\\x1b[2K", "U+001B"),
        ("alice@example.com\u202emoc.elpmaxe@bob", "U+202E"),
        ("alice@example.com\nbob@example.com", "U+000A"),
    ],
    ids=["escape", "bidi-override", "second-line"],
)
def test_a_decider_name_that_does_not_print_as_one_line_is_refused_and_nothing_is_decided(
    by: str, named: str
) -> None:
    # Given a decision whose "by" would read as someone else in the audit and on terminals
    event = {"application": "payments-api", "action": "approve", "by": by}

    # When the decide function parses it, Then it is a typed error naming the character
    with pytest.raises(InvalidEvent) as refused:
        parse_event(Decision, event)

    assert refused.value.problems == [
        f"by: must be one line of printable characters and spaces; found {named}"
    ]


def test_a_page_comment_with_a_control_character_is_refused_with_its_own_error_type() -> None:
    with pytest.raises(ValidationError) as refused:
        PageDecisionForm.model_validate({**FORM, "comment": "fine\x07"})

    assert [e["type"] for e in refused.value.errors()] == ["non_printing_characters"]


def test_a_comment_of_several_lines_is_kept_with_its_line_breaks_made_plain() -> None:
    form = PageDecisionForm.model_validate({**FORM, "comment": "p99 is fine\r\nship it — ✅ ünïcode"})

    assert form.comment == "p99 is fine\nship it — ✅ ünïcode"


def test_slack_text_is_escaped_and_an_email_quote_prefixes_every_line() -> None:
    assert (
        slack_escape("<!channel> & <https://x.example|y>")
        == "&lt;!channel&gt; &amp; &lt;https://x.example|y&gt;"
    )
    assert quoted("one\ntwo") == "> one\n> two"
