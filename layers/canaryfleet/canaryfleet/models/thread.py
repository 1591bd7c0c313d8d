"""A rollout's Slack thread, apart from the notices so that Slack's callers need not load their parsing.

Every function that talks to Slack knows threads (``ports.notify``); only the notifications
function parses notices (Powertools' SQS and SNS models, ``models.notification``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from canaryfleet.models.approval import SlackMessageRef


@dataclass(frozen=True)
class Thread:
    """A rollout's Slack thread: its first message (the card) and the furthest stage it shows."""

    message: SlackMessageRef
    rank: Decimal  # the furthest notice's progress (models.notification, Notice.progress)
    # What the card shows at that rank: {"text": ..., "blocks": [...]} as JSON (None on a thread
    # started before cards were kept).
    card: str | None = None
