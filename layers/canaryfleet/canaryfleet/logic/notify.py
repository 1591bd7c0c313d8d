"""Tell people: each rollout as one Slack thread in its application's channel, and an email at the end.

A rollout's first notice (whichever arrives first) posts the thread's first message, a card
that is updated as the rollout gets further; every notice is a reply in the thread. The
final outcome (released, rolled back, rejected) is also emailed to the application's
approvers, with the reason for a rollback. A drain that lost logs is a message of its own.

Each of the two deliveries happens once per notice (the wiring wraps each in Powertools
idempotency, keyed on the notice's :attr:`~canaryfleet.models.notification.Notice.key`), so a
duplicate or a retry posts nothing twice; a delivery that fails raises, and the queue
delivers the notice again. The email goes once per recipient too (:class:`SummaryMail`): a
send that failed half-way is finished by the retry, not sent again to those already mailed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from canaryfleet.errors import (
    NoticeLeftForLater,
    NotificationNotDelivered,
    SlackThreadBeingStarted,
    UnknownApplication,
)
from canaryfleet.logic.notify_messages import card_blocks, reply_blocks, summary_email
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.notification import Notice, NoticeRecord
from canaryfleet.models.thread import Thread
from canaryfleet.observability import logger, tracer
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.notify import NoticeRegistry, RolloutRecords, SlackPoster, SlackThreads, SummaryEmail

# Without a thread (an incoming webhook), only these reach the channel: a start and an end.
_UNTHREADED_KINDS = frozenset(
    {"rollout.started", "rollout.released", "rollout.rolled_back", "rollout.rejected", "drain.logs_lost"}
)


@dataclass(frozen=True)
class SummaryMail:
    """One recipient's copy of a notice's email; ``key`` tells it from every other copy sent."""

    key: str
    recipient: str
    subject: str
    body: str


MailSender = Callable[..., None]  # called as ``send(mail=SummaryMail(...))``


@dataclass
class NotifyChannels:
    """Where notices go, and what the notifications function reads to address them.

    Built by ``canaryfleet.wiring.notify`` (AWS and Slack) or from the unit tests' fakes.
    """

    registry: NoticeRegistry
    threads: SlackThreads
    rollouts: RolloutRecords
    slack: SlackPoster | None
    email: SummaryEmail
    clock: Clock
    # How each copy of the email is sent; the wiring makes it once per SummaryMail.key. None: sent
    # straight through ``email`` (the unit tests' fakes).
    send_mail: MailSender | None = None


def _application(notice: Notice, channels: NotifyChannels) -> AppConfig | None:
    try:
        return channels.registry.get(notice.application)
    except UnknownApplication:
        # e.g. an upload under a prefix nobody onboarded: there is nobody to tell.
        logger.info("notice for an application not in the registry", extra={"kind": notice.kind})
        return None


@tracer.capture_method
def tell_slack(*, notice: Notice, channels: NotifyChannels) -> dict[str, Any]:
    """Post the notice in its application's channel: in the rollout's thread where there is one."""
    app = _application(notice, channels)
    channel = app.approvers.slack_channel if app else None
    slack = channels.slack
    if slack is None or not channel:
        return {"slack": "not configured"}
    if notice.rollout_id and notice.rank is not None and slack.threads:
        thread = _thread(notice, notice.rollout_id, channel, slack, channels)
        text, blocks = reply_blocks(notice, _bundle_notes(notice, notice.rollout_id, channels))
        if slack.post(channel, text, blocks, thread_ts=thread.message.ts) is None:
            raise NotificationNotDelivered(f"slack did not take the {notice.kind} reply")
        return {"slack": "replied", "thread_ts": thread.message.ts}
    text, blocks = reply_blocks(notice)
    if slack.threads:  # a notice of no rollout thread: a drain, an upload that named no rollout
        if not slack.announce(channel, text, blocks):
            raise NotificationNotDelivered(f"slack did not take the {notice.kind} message")
        return {"slack": "posted"}
    if notice.kind in _UNTHREADED_KINDS:
        # An incoming webhook answers 200 or refuses (429, a channel archived): a refusal comes back.
        if not slack.announce(channel, text, blocks):
            raise NotificationNotDelivered(f"slack's incoming webhook did not take the {notice.kind} message")
        return {"slack": "posted by webhook"}
    return {"slack": "left out without a thread"}


def _bundle_notes(notice: Notice, rollout_id: str, channels: NotifyChannels) -> list[str]:
    """What the bundle check noted (on the rollout record): told once, in the started reply."""
    if notice.kind != "rollout.started":
        return []
    record = channels.rollouts.get(notice.application, rollout_id)
    return record.bundle_notes if record is not None else []


def _thread(
    notice: Notice, rollout_id: str, channel: str, slack: SlackPoster, channels: NotifyChannels
) -> Thread:
    """The rollout's thread, its card brought up to this notice; started here if it has none.

    A card a step behind is no reason to retry: the next notice brings it up. The outcome has no
    next notice, so its card is updated on every delivery of it (the outcome is the top rank, and
    a rollout has one), and an update Slack did not take this time (rate limited, down) makes the
    notice come back before its reply is posted. A card deleted from the channel stays so.
    """
    rank = notice.progress or Decimal(0)
    threads = channels.threads
    text, blocks = card_blocks(notice)
    card = json.dumps({"text": text, "blocks": blocks}, separators=(",", ":"))
    thread = threads.find(notice.application, rollout_id)
    if thread is not None:
        if threads.advance(notice.application, rollout_id, rank, card) or notice.final:
            updated = slack.update(thread.message, text, blocks)
            if updated == "failed" and notice.final:
                raise NotificationNotDelivered("slack did not update the rollout's card to its outcome")
            if updated == "updated":
                _catch_up(notice.application, rollout_id, rank, slack, threads)
        return thread
    if not threads.claim(notice.application, rollout_id, channels.clock.now()):
        raise SlackThreadBeingStarted(f"another notice is starting rollout {rollout_id}'s thread")
    message = slack.post(channel, text, blocks)
    if message is None:
        threads.release(notice.application, rollout_id)
        raise NotificationNotDelivered("slack did not take the rollout's first message")
    threads.started(notice.application, rollout_id, message, rank, card)
    return Thread(message, rank, card)


# How many times a card is set back to the furthest stage in a row (each set is a later notice's).
_CATCH_UP_TIMES = 3


def _catch_up(
    application: str, rollout_id: str, shown: Decimal, slack: SlackPoster, threads: SlackThreads
) -> None:
    """Set the card back to the furthest stage, if a later notice moved it there while this one's
    update was on its way and landed first.

    Notices of one rollout may be told at the same time (a queue batch's, concurrent
    invocations): the rank is checked in DynamoDB and the card updated in Slack, two steps, so the
    earlier stage's update may land last. After its update lands, a notice reads the stored
    rank again and, if it is further, shows the card stored with it; and again, in case that
    update landed after a still later one.
    """
    for _ in range(_CATCH_UP_TIMES):
        latest = threads.find(application, rollout_id)
        if latest is None or latest.rank <= shown or latest.card is None:
            return
        stored = json.loads(latest.card)
        if slack.update(latest.message, stored["text"], stored["blocks"]) != "updated":
            return
        shown = latest.rank


@tracer.capture_method
def email_summary(*, notice: Notice, channels: NotifyChannels) -> dict[str, Any]:
    """Email the final outcome to the application's approvers (SNS, one filtered copy each)."""
    if not notice.final:
        return {"email": "not final"}
    app = _application(notice, channels)
    recipients = app.approvers.emails if app else ()
    if not recipients:
        return {"email": "nobody to tell"}
    record = channels.rollouts.get(notice.application, notice.rollout_id) if notice.rollout_id else None
    subject, body = summary_email(notice, record)
    channels.email.ensure_subscribed(recipients)
    send = channels.send_mail or partial(send_straight, channels.email)
    for recipient in recipients:
        # A publish that fails (SNS throttled past botocore's retries) fails the delivery after
        # the earlier recipients were mailed; the retry sends only the copies not yet sent.
        send(mail=SummaryMail(f"{notice.key}/to/{recipient}", recipient, subject, body))
    return {"email": "sent", "recipients": len(recipients)}


def send_straight(email: SummaryEmail, *, mail: SummaryMail) -> None:
    """Send one copy of a notice's email to its recipient alone."""
    email.send(mail.recipient, mail.subject, mail.body)


Delivery = Callable[..., dict[str, Any]]

# The longest one notice may take: a few Slack calls (the thread's first message, its card, the
# reply), each up to the Slack client's 5-second timeout, then SNS and the idempotency writes.
# A Lambda that times out returns no batch item failures: "If your function throws an exception,
# the entire batch is considered a complete failure" (Lambda Developer Guide, "Handling errors
# for an SQS event source"), so every notice of the batch would come back, counted a try each.
NOTICE_BUDGET_SECONDS = 20.0


@dataclass
class Notifications:
    """Both deliveries of a notice; the wiring makes each at most once per notice key.

    ``time_left``: seconds left in the invocation. A notice begun with less than
    NOTICE_BUDGET_SECONDS left is not begun: it fails alone and comes back, while the ones told
    stay told (when Slack is slow, a batch of ten cannot all be told in one invocation).
    """

    channels: NotifyChannels
    slack: Delivery = tell_slack
    email: Delivery = email_summary
    time_left: Callable[[], float] | None = None

    def tell(self, record: NoticeRecord) -> dict[str, Any]:
        """One message of the notifications queue (Powertools' batch record handler)."""
        if self.time_left is not None and (left := self.time_left()) < NOTICE_BUDGET_SECONDS:
            logger.warning("notice left for its next delivery: too little time left", extra={"left": left})
            raise NoticeLeftForLater(f"{left:.1f} s left in the invocation, under {NOTICE_BUDGET_SECONDS} s")
        return self.handle(record.notice())

    @tracer.capture_method
    def handle(self, notice: Notice) -> dict[str, Any]:
        """Make both deliveries; if either failed, raise its error (after trying the other)."""
        logger.append_keys(notice_kind=notice.kind, application=notice.application)
        told: dict[str, Any] = {}
        failed: Exception | None = None
        for delivery in (self.slack, self.email):
            try:
                told.update(delivery(notice=notice, channels=self.channels))
            except Exception as exc:
                logger.warning("notice not delivered", extra={"error": type(exc).__name__})
                failed = failed or exc
        if failed is not None:
            raise failed
        logger.info("notice told", extra=told)
        return told
