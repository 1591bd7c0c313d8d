"""What canaryfleet sends to Slack is what Slack takes: Block Kit's limits at the models' limits.

Slack refuses a whole message (``invalid_blocks``) for one text over its limit: an approval
request that does not reach Slack cannot be decided there, and an outcome that does not replace
the card leaves its buttons. The messages are checked with the local Slack's own validator.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from canaryfleet.logic import approval_messages, notify_messages
from canaryfleet.models.text import slack_cut, slack_escape
from hypothesis import given
from hypothesis import strategies as st

from canaryfleet_local.slack import block_errors
from tests.unit import slack_worst_case as worst

Blocks = list[dict[str, Any]]
# In escaped mrkdwn every "&" begins one of Slack's three escapes.
BROKEN_ESCAPE = re.compile(r"&(?!amp;|lt;|gt;)")


def texts(node: object) -> list[str]:
    """The text of every text object in ``node``."""
    if isinstance(node, list):
        return [t for item in node for t in texts(item)]
    if not isinstance(node, dict):
        return []
    if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
        return [node["text"]]
    return [t for value in node.values() for t in texts(value)]


def mrkdwn(blocks: Blocks) -> list[str]:
    return [t for block in blocks for t in texts(block) if block.get("type") != "header"]


def section_text(blocks: Blocks) -> str:
    return str(next(b for b in blocks if b["type"] == "section" and "text" in b)["text"]["text"])


MESSAGES = {
    "request": lambda: approval_messages.slack_request(worst.approval(), worst.TIMELINE),
    "request-without-timeline": lambda: approval_messages.slack_request(worst.approval()),
    "rejected-in-slack": lambda: approval_messages.slack_outcome(worst.decided("reject")),
    "approved-on-the-page": lambda: approval_messages.slack_outcome(worst.decided("approve", "page")),
    "expired": lambda: approval_messages.slack_outcome(worst.approval(status="expired")),
    "closed": lambda: approval_messages.slack_outcome(worst.approval(status="closed")),
    **{
        f"reply-{n.kind}": (lambda n=n: notify_messages.reply_blocks(n, [worst.COMMENT] * 20))
        for n in worst.notices()
    },
    **{f"card-{n.kind}": (lambda n=n: notify_messages.card_blocks(n)) for n in worst.notices()},
}


@pytest.mark.parametrize("name", MESSAGES)
def test_the_longest_messages_are_ones_slack_takes(name: str) -> None:
    # Given the longest message of its kind
    text, blocks = MESSAGES[name]()

    # Then Slack takes its blocks, every section's text within 3,000 characters
    assert block_errors(blocks) == []
    assert all(len(t) <= 3000 for t in texts(blocks))
    # And no cut split an escape (Slack would show "&am" literally)
    assert [t for t in [text, *mrkdwn(blocks)] if BROKEN_ESCAPE.search(t)] == []


def test_the_longest_verdict_shows_whole_reasons_then_says_how_many_more() -> None:
    # Given an approval whose 50 metrics are all inconclusive, named with characters mrkdwn escapes
    approval = worst.approval()
    reasons = approval.verdict.reasons if approval.verdict else []

    # When its request is built
    _, blocks = approval_messages.slack_request(approval)

    # Then the verdict's section shows the first reasons whole and counts the others
    text = section_text(blocks)
    lines = text.split("\n")
    shown = [line for line in lines if line.startswith("• ") and "more on the approval page" not in line]
    assert shown == [f"• {slack_escape(r)}" for r in reasons[: len(shown)]]
    assert 0 < len(shown) < len(reasons)
    assert f"• and {len(reasons) - len(shown)} more on the approval page" in lines
    assert lines[-1] == "◦ and 50 more metric(s) on the approval page"
    assert len(text) <= 3000


def test_a_short_verdict_is_shown_whole() -> None:
    approval = worst.approval(
        verdict=worst.inconclusive_verdict(metrics=2).model_copy(update={"reasons": ["a & b"]})
    )

    text = section_text(approval_messages.slack_request(approval)[1])

    assert "• a &amp; b" in text.split("\n")
    assert "more" not in text


def test_many_approvers_are_named_whole_then_counted() -> None:
    _, blocks = approval_messages.slack_request(worst.approval())

    [people] = [t for t in mrkdwn(blocks) if t.startswith("Approvers: ")]
    names = people.removeprefix("Approvers: ").split(", ")
    assert names[:2] == ["<@U0000000000>", "<@U0000000001>"]
    assert re.fullmatch(r"and \d+ more", names[-1])
    assert len(names) - 1 + int(names[-1].split()[1]) == 100 + 100
    assert len(people) <= 3000


@given(text=st.text(alphabet="ab&<>\n", max_size=80), limit=st.integers(min_value=2, max_value=60))
def test_a_cut_of_escaped_text_fits_and_never_splits_an_escape(text: str, limit: int) -> None:
    escaped = slack_escape(text)

    cut = slack_cut(escaped, limit)

    assert len(cut) <= limit
    assert cut == escaped or (cut.endswith("…") and escaped.startswith(cut[:-1]))
    assert not BROKEN_ESCAPE.search(cut.removesuffix("…"))


def test_a_cut_never_leaves_half_a_mention_or_link() -> None:
    text = "approvers: <@U024BE7LH> and <https://example.com/x?a=1&amp;b=2|the page>"

    assert slack_cut(text, 20) == "approvers: …"
    assert slack_cut(text, 57) == "approvers: <@U024BE7LH> and …"  # inside the link's "&amp;"
    assert slack_cut(text, len(text) - 1) == "approvers: <@U024BE7LH> and …"
    assert slack_cut(text, len(text)) == text
    assert slack_cut("a &amp; b", 5) == "a …"


# --- the local Slack's validator (what the tests above rely on) ------------------------------
def section(characters: int) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": "x" * characters}}


@pytest.mark.parametrize(
    ("blocks", "refused"),
    [
        ([section(3000)], False),
        ([section(3001)], True),
        ([section(0)], True),
        ([section(1)] * 50, False),
        ([section(1)] * 51, True),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2000}]}], False),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}], True),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "x"}] * 11}], True),
        ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * 3001}]}], True),
        ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], True),
        ([{"type": "no such block"}], True),
        ("not a list", True),
    ],
    ids=[
        "3000",
        "3001",
        "empty-text",
        "50-blocks",
        "51-blocks",
        "field-2000",
        "field-2001",
        "11-fields",
        "context-3001",
        "header-151",
        "unknown-type",
        "not-a-list",
    ],
)
def test_the_local_slack_refuses_what_block_kit_refuses(blocks: object, refused: bool) -> None:
    errors = block_errors(blocks)

    assert bool(errors) is refused
    assert all("[json-pointer:/blocks" in e for e in errors)
