"""What approvers read: the Slack message (Block Kit), the email, and an approval's state in words.

Nothing here holds a secret: an approval carries no token, and links are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from canaryfleet.logic.analysis.words import metric_lines, score_line
from canaryfleet.models.app_config import SLACK_USER_ID_PATTERN
from canaryfleet.models.approval import Approval, ApprovalStatus
from canaryfleet.models.rollout import Verdict
from canaryfleet.models.text import slack_cut, slack_escape

APPROVE_ACTION, REJECT_ACTION = "approval.approve", "approval.reject"
_SLACK_USER_ID = re.compile(SLACK_USER_ID_PATTERN)
_CHANNEL_NAMES = {"slack": "Slack", "page": "the approval page", "cli": "the CLI", "local": "the simulator"}


def slack_mention(user_id: str) -> str:
    """A Slack user id as a mention (mrkdwn); anything else escaped like any text, so that a
    value read from a notice can never become ``<!channel>`` or a link."""
    return f"<@{user_id}>" if _SLACK_USER_ID.fullmatch(user_id) else slack_escape(user_id)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def verdict_summary(verdict: Verdict | None) -> str:
    if verdict is None:
        return "no canary analysis ran"
    score = score_line(verdict)
    result = f"{verdict.result} ({score})" if score else verdict.result
    return (
        f"{result}: canary {verdict.canary_error_rate:.2%} errors over "
        f"{verdict.canary_requests:,.0f} requests, {_ms(verdict.canary_latency)} "
        f"(live {verdict.live_error_rate:.2%}, {_ms(verdict.live_latency)})"
    )


# Block Kit: a section's text, like any text object, holds at most 3,000 characters, and Slack
# refuses the whole message for one more (invalid_blocks), so what is long is cut at whole lines:
# https://api.slack.com/reference/block-kit/blocks#section. A long verdict shows its first metrics.
MAX_TEXT = 3000
MAX_METRIC_LINES = 10


def verdict_metric_lines(verdict: Verdict | None) -> list[str]:
    """Each metric's numbers, at most MAX_METRIC_LINES and a line saying how many more."""
    lines = metric_lines(verdict)
    if len(lines) > MAX_METRIC_LINES:
        more = len(lines) - MAX_METRIC_LINES
        lines = [*lines[:MAX_METRIC_LINES], f"and {more} more metric(s) on the approval page"]
    return lines


def title(approval: Approval) -> str:
    return f"{approval.application} {approval.version} is waiting for approval"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _slack_date(at: datetime) -> str:
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|{_when(at)}>"


def outcome(approval: Approval) -> str:
    """What became of the approval, in one sentence (plain text)."""
    decision = approval.decision
    if approval.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED) and decision is not None:
        verb = "Approved" if approval.status is ApprovalStatus.APPROVED else "Rejected"
        said = f': "{decision.comment}"' if decision.comment else ""
        return f"{verb} by {decision.by} via {_CHANNEL_NAMES[decision.channel]} at {_when(decision.at)}{said}"
    if approval.status is ApprovalStatus.EXPIRED:
        return (
            f"Expired at {_when(approval.expires_at)}: nobody decided in time, "
            "so the rollout followed its timeout policy"
        )
    if approval.status is ApprovalStatus.CLOSED:
        return f"No longer waiting: {approval.closed_reason or 'the rollout stopped waiting for it'}"
    if approval.status is ApprovalStatus.DECIDING and decision is not None:
        return f"Being decided by {decision.by} via {_CHANNEL_NAMES[decision.channel]}"
    return f"Waiting for a decision until {_when(approval.expires_at)}"


def _within(
    items: Sequence[str], room: int, more: Callable[[int], str], most: int | None = None
) -> list[str]:
    """The first of ``items`` (at most ``most``) that fit whole in ``room`` characters, then
    ``more(n)`` for the n left out, which fits too if ``more(len(items))`` does."""
    kept: list[str] = []
    for index, item in enumerate(items):
        left = len(items) - index - 1
        if (most is not None and index >= most) or len(item) + (len(more(left)) if left else 0) > room:
            return [*kept, more(len(items) - index)]
        kept.append(item)
        room -= len(item)
    return kept


def _verdict_text(verdict: Verdict | None) -> str:
    """The verdict in one section's text: its reasons, then its metrics, as many as fit."""
    text = f"*Canary analysis* {slack_escape(verdict_summary(verdict))}"
    reasons = [f"\n• {slack_escape(r)}" for r in (verdict.reasons if verdict else [])]
    metrics = [f"\n◦ {slack_escape(line)}" for line in metric_lines(verdict)]

    def more_reasons(n: int) -> str:
        return f"\n• and {n} more on the approval page"

    def more_metrics(n: int) -> str:
        return f"\n◦ and {n} more metric(s) on the approval page"

    # The reasons first, leaving room to say how many metrics there are.
    room = MAX_TEXT - len(text) - (len(more_metrics(len(metrics))) if metrics else 0)
    text += "".join(_within(reasons, room, more_reasons))
    return text + "".join(_within(metrics, MAX_TEXT - len(text), more_metrics, MAX_METRIC_LINES))


def _summary_blocks(approval: Approval) -> list[dict[str, Any]]:
    verdict = approval.verdict
    # A Slack user id becomes a mention; anything else is escaped like any text.
    people = [slack_mention(u) for u in approval.approvers.slack_user_ids] + [
        slack_escape(e) for e in approval.approvers.emails
    ]
    # Each name whole (a mention cut short is no mention), as many as a context's text holds.
    label = "Approvers: "
    shown = _within([f", {p}" for p in people], MAX_TEXT - len(label) + 2, lambda n: f", and {n} more")
    return [
        {"type": "header", "text": {"type": "plain_text", "text": title(approval)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _verdict_text(verdict)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Rollout*\n`{approval.rollout_id}`"},
                {"type": "mrkdwn", "text": f"*Decide before*\n{_slack_date(approval.expires_at)}"},
            ],
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": label + ("".join(shown)[2:] or "-")}],
        },
    ]


def slack_request(approval: Approval, timeline: str = "") -> tuple[str, list[dict[str, Any]]]:
    """The message asking for a decision: the summary, the verdict, Approve and Reject, and a
    read-only link to the rollout's timeline (``timeline``, signed for the card)."""
    buttons = {
        "type": "actions",
        "block_id": "approval",
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "style": "primary",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": approval.approval_id,
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION,
                "style": "danger",
                "text": {"type": "plain_text", "text": "Reject"},
                "value": approval.approval_id,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Reject this build?"},
                    "text": {"type": "plain_text", "text": "The canary is rolled back."},
                    "confirm": {"type": "plain_text", "text": "Reject"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
        ],
    }
    blocks = [*_summary_blocks(approval), buttons]
    if timeline:
        # mrkdwn: the URL's "&" written as "&amp;", as Slack writes it (its control characters).
        link = timeline.replace("&", "&amp;")
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"<{link}|The rollout's timeline>: charts and stages, read only, "
                        f"until {_when(approval.expires_at)}",
                    }
                ],
            }
        )
    return slack_escape(title(approval)), blocks


def slack_outcome(approval: Approval) -> tuple[str, list[dict[str, Any]]]:
    """The same message once decided, expired or closed: who, how and when, without buttons."""
    said = outcome(approval)
    # A comment (2,000 characters) escaped can be five times as long: cut to what a section holds.
    bold = slack_cut(slack_escape(said), MAX_TEXT - 2)
    section = {"type": "section", "text": {"type": "mrkdwn", "text": f"*{bold}*"}}
    # The fallback text (notifications, screen readers) is mrkdwn too: escaped like the blocks.
    fallback = slack_escape(f"{approval.application} {approval.version}: {said}")
    return fallback, [*_summary_blocks(approval), section]


def email(approval: Approval, url: str, timeline: str = "") -> tuple[str, str]:
    """Subject and body of one approver's email; ``url`` is the link signed for them, ``timeline``
    the read-only view link of the rollout's timeline (it decides nothing, so it may be forwarded)."""
    verdict = approval.verdict
    reasons = "".join(f"\n  - {r}" for r in (verdict.reasons if verdict else []))
    reasons += "".join(f"\n    {line}" for line in metric_lines(verdict))
    body = (
        f"{title(approval)}.\n\n"
        f"Canary analysis: {verdict_summary(verdict)}{reasons}\n"
        f"Rollout: {approval.rollout_id}\n"
        f"Decide before: {_when(approval.expires_at)}\n\n"
        f"Review it and approve or reject it here (this link is yours alone; opening it decides nothing):\n"
        f"{url}\n"
        + (
            f"\nThe rollout's timeline, charts and stages (read only: anyone with this link can see it, "
            f"not decide):\n{timeline}\n"
            if timeline
            else ""
        )
    )
    return f"Approve {approval.application} {approval.version}?", body
