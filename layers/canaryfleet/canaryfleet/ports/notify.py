"""What notify logic needs from the outside world: Slack, where each rollout's thread is, the
approvers' email, the registry and the rollout record.

``canaryfleet.adapters`` implements these on AWS and Slack's Web API (``slack``,
``slack_threads``, ``approval_email``, ``registry``, ``rollout_store``); the unit tests'
fakes (``tests/unit/drain_fakes.py``) implement them in memory, with the same conditions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.approval import SlackMessageRef
from canaryfleet.models.rollout_record import RolloutRecord
from canaryfleet.models.thread import Thread
from canaryfleet.ports.approvals import CardUpdate, EmailReach

# A thread's claim older than this belongs to a poster that died before saying where its
# first message is: the next notice may take it over.
STALE_CLAIM = timedelta(minutes=2)


class SlackPoster(Protocol):
    """What notices need of Slack's API: a post, a reply in a thread, an update of the card."""

    @property
    def threads(self) -> bool:
        """Whether posts say where they are, so replies can go in their thread (a bot token)."""
        ...

    def post(
        self,
        channel: str | None,
        text: str,
        blocks: list[dict[str, Any]],
        thread_ts: str | None = None,
    ) -> SlackMessageRef | None:
        """Post a message (in ``thread_ts``'s thread if given); where it is, if the API says so."""
        ...

    def announce(self, channel: str | None, text: str, blocks: list[dict[str, Any]]) -> bool:
        """Post a message of no thread (a bot token's post, or an incoming webhook's); whether
        Slack took it."""
        ...

    def update(self, message: SlackMessageRef, text: str, blocks: list[dict[str, Any]]) -> CardUpdate:
        """Replace a posted message."""
        ...


class SlackThreads(Protocol):
    """Where each rollout's thread is: claimed once, started once, its card only moving forward."""

    def find(self, application: str, rollout_id: str) -> Thread | None:
        """The rollout's thread, once its first message is posted."""
        ...

    def claim(self, application: str, rollout_id: str, now: datetime) -> bool:
        """Take the right to post the thread's first message; False if another notice has it.

        A claim older than ``STALE_CLAIM`` may be taken over; a started thread never is.
        """
        ...

    def release(self, application: str, rollout_id: str) -> None:
        """Give the claim up (the first message was not posted): the next notice may try."""
        ...

    def started(
        self, application: str, rollout_id: str, message: SlackMessageRef, rank: Decimal, card: str
    ) -> None:
        """Record where the first message is (and the stage it shows, and how: ``card``)."""
        ...

    def advance(self, application: str, rollout_id: str, rank: Decimal, card: str) -> bool:
        """Move the card to ``rank`` (showing ``card``) if it shows an earlier stage; False if it is
        already as far."""
        ...


class SummaryEmail(Protocol):
    """The approvers' email topic: one filtered copy a recipient."""

    def ensure_subscribed(self, emails: tuple[str, ...]) -> EmailReach:
        """Subscribe the addresses not yet subscribed; who is new and who cannot be emailed yet."""
        ...

    def send(self, approver: str, subject: str, body: str) -> None: ...


class NoticeRegistry(Protocol):
    """What a notice reads from the registry: who its application's approvers and channel are."""

    def get(self, application: str) -> AppConfig:
        """The application's configuration; UnknownApplication if it is not onboarded."""
        ...


class RolloutRecords(Protocol):
    """What a notice reads from the rollout store: the record the final email summarises."""

    def get(self, application: str, rollout_id: str) -> RolloutRecord | None:
        """The rollout record (stages, verdict, audit), if there is one."""
        ...
