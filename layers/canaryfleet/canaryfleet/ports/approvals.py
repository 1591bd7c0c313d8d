"""What the approval gate needs: the approval store, signing keys, Slack and email.

Implemented on AWS by ``canaryfleet.adapters`` (``approval_store``, ``secrets``, ``slack``,
``approval_email``) and in memory by the unit tests' fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from canaryfleet.models.approval import Approval, ApprovalDecision, ApprovalStatus, SlackMessageRef

# What became of a message's update: made; impossible for good (the message was deleted, or the
# workspace's edit window closed); or not made this time (rate limited, Slack down).
CardUpdate = Literal["updated", "gone", "failed"]


class ApprovalStore(Protocol):
    """Approvals, each decided once: a conditional claim, then finish (or release)."""

    def create(self, approval: Approval) -> bool:
        """Store a new approval; False if it exists already (a retried request)."""
        ...

    def get(self, approval_id: str) -> Approval | None: ...

    def claim(
        self, approval_id: str, decision: ApprovalDecision, claim_id: str, stale_before: datetime
    ) -> bool:
        """Take a pending approval (or one whose claim went stale) for ``decision``; False if taken."""
        ...

    def finish(
        self,
        approval_id: str,
        claim_id: str,
        status: ApprovalStatus,
        reason: str = "",
        decision: ApprovalDecision | None = None,
    ) -> bool:
        """Record how a claimed decision ended."""
        ...

    def release(self, approval_id: str, claim_id: str) -> None:
        """Give a claim back: the approval is pending again."""
        ...

    def settle(
        self,
        approval_id: str,
        status: ApprovalStatus,
        at: datetime,
        stale_before: datetime,
        decision: ApprovalDecision | None = None,
        reason: str = "",
    ) -> bool:
        """End a pending approval without a claim (expired, or decided elsewhere); False if taken."""
        ...

    def set_slack_message(self, approval_id: str, message: SlackMessageRef) -> None: ...

    def mark_emails_sent(self, approval_id: str) -> bool:
        """True the first time only: the emails go out once per approval."""
        ...

    def first_use(self, request_digest: str, keep_until: datetime) -> bool:
        """True the first time a Slack request (by its signature's digest) is seen; False for a replay."""
        ...


class SigningKeys(Protocol):
    """The approval links' HMAC keys: the current one signs, current and previous verify."""

    def current(self) -> bytes: ...

    def accepted(self, refresh: bool = False) -> list[bytes]: ...


class SlackChannel(Protocol):
    """The Slack app: messages, their updates, interaction answers, and approvers' emails."""

    @property
    def threads(self) -> bool:
        """Whether posts say where they are, so replies can go in their thread (a bot token)."""
        ...

    def post(
        self, channel: str | None, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None
    ) -> SlackMessageRef | None: ...

    def update(self, message: SlackMessageRef, text: str, blocks: list[dict[str, Any]]) -> CardUpdate: ...

    def respond(
        self, response_url: str, text: str, blocks: list[dict[str, Any]] | None, replace: bool
    ) -> bool: ...

    def email_of(self, user_id: str) -> str | None: ...


@dataclass(frozen=True)
class EmailReach:
    """Who an approval email can reach: SNS emails nobody before they confirm their subscription."""

    subscribed_now: tuple[str, ...] = ()  # SNS has just sent each its confirmation email
    awaiting_confirmation: tuple[str, ...] = ()  # those and older ones not confirmed: no email yet
    refused: tuple[str, ...] = ()  # not subscribed at all (SNS's filter policy quota): none of the above


class EmailChannel(Protocol):
    """Approval emails, one per approver (subscribed once to the approval email topic)."""

    def ensure_subscribed(self, emails: tuple[str, ...]) -> EmailReach:
        """Subscribe the addresses not subscribed yet; who is new and who cannot be emailed yet."""
        ...

    def send(self, approver: str, subject: str, body: str) -> None: ...


# Secrets Manager's staging labels: the version that signs, the one before it, the one rotating in.
CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"


class SecretVersions(Protocol):
    """One secret's versions and staging labels, as a rotation function handles them."""

    def stages(self) -> tuple[bool, dict[str, list[str]]]:
        """Whether rotation is on, and each version's staging labels."""
        ...

    def value(self, version_id: str, stage: str) -> str | None: ...

    def put_pending(self, version_id: str, value: str) -> None: ...

    def make_current(self, version_id: str, current_version_id: str) -> None: ...

    def release_pending(self, version_id: str) -> None:
        """Takes AWSPENDING off ``version_id``, once it is current."""
        ...
