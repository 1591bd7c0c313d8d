"""The approval gate: one request for a person's decision, its signed links, and Slack's app.

An approval never holds the rollout's task token: the token stays on the rollout record and
only the decision path reads it. What is sent out (links, Slack buttons, emails) names the
approval by its random id.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from canaryfleet.models.app_config import SLACK_USER_ID_PATTERN, Approvers
from canaryfleet.models.artifact import AppName, Version
from canaryfleet.models.decision import (
    DECIDER_MAX_LENGTH,
    SLACK_USER_LABEL,
    SLACK_USER_NAME_MAX_LENGTH,
)
from canaryfleet.models.rollout import BUILD_URL_PATTERN, Verdict
from canaryfleet.models.text import PersonText

APPROVAL_ID_PATTERN = r"^[A-Za-z0-9_-]{22}$"
ApprovalId = Annotated[str, Field(pattern=APPROVAL_ID_PATTERN, description="128 random bits, URL-safe.")]
# An approver as a link names them: the email address the link was sent to, lowercased.
Approver = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
# A URL of printable ASCII with no space (RFC 3986 characters), as Slack's hooks are.
_PRINTABLE = re.compile(r"[!-~]+")
# base64url of an HMAC-SHA256, without padding.
Signature = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")]


def new_approval_id() -> str:
    return secrets.token_urlsafe(16)


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    DECIDING = "deciding"  # a decision claimed the approval and is ending the wait
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CLOSED = "closed"  # the rollout stopped waiting for it (aborted, promoted, ended)


FINAL_STATUSES = frozenset(
    {ApprovalStatus.APPROVED, ApprovalStatus.REJECTED, ApprovalStatus.EXPIRED, ApprovalStatus.CLOSED}
)

Channel = Literal["slack", "page"]
# Decisions can also reach a rollout without the gate (the CLI, the local simulator).
AnyChannel = Literal["slack", "page", "cli", "local"]
Action = Literal["approve", "reject"]


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    action: Action
    by: str = Field(min_length=1, max_length=DECIDER_MAX_LENGTH)
    channel: AnyChannel
    comment: str = Field(default="", max_length=2000)
    at: datetime


class SlackMessageRef(BaseModel):
    """Where the approval's Slack message is, to update it (a bot token's chat.update)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    channel: str = Field(min_length=1, max_length=40)
    ts: str = Field(min_length=1, max_length=40)


class Approval(BaseModel):
    """One request for a decision (pk ``APPROVAL#<approval id>`` in the state table)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    approval_id: ApprovalId
    application: AppName
    rollout_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")
    version: Version
    verdict: Verdict | None = Field(default=None, description="The canary analysis the approvers see.")
    commit: str | None = Field(default=None, max_length=200, description="The build's commit, if given.")
    build_url: str | None = Field(
        default=None, max_length=2048, pattern=BUILD_URL_PATTERN, description="The build's page (https only)."
    )
    live_version: str | None = Field(
        default=None, description="What live runs now; None: nothing released yet."
    )
    approvers: Approvers = Field(description="Who may decide, as listed when the request was made.")
    created_at: datetime
    expires_at: datetime = Field(description="When the rollout's wait times out (its policy applies).")
    status: ApprovalStatus = ApprovalStatus.PENDING
    decision: ApprovalDecision | None = None
    claimed_at: datetime | None = None
    # Whose claim the decision is (the store's conditional writes): an answer kept for a retried
    # request is finished by that request (``ApprovalGate.apply_kept_answer``). Decides nothing alone.
    claim_id: str | None = Field(default=None, max_length=64)
    closed_reason: str = ""
    slack_message: SlackMessageRef | None = None
    emails_sent: bool = False

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def expired_at(self, now: datetime) -> bool:
        return now >= self.expires_at

    def allows_email(self, email: str) -> bool:
        return email.lower() in {e.lower() for e in self.approvers.emails}


class TimelineViewLink(BaseModel):
    """The signed fields of a read-only link to a rollout's timeline, for a channel (Slack) where
    no one approver reads it: it shows the timeline until the approval expires and decides nothing;
    its signature is over another purpose than an approver's, so it never opens the approval page."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    approval_id: ApprovalId
    expires: int = Field(ge=0, description="Unix time the link stops working (the approval's expiry).")
    signature: Signature


class ApprovalLink(BaseModel):
    """The signed fields of an approver's link; the page's form carries them back on POST."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    approval_id: ApprovalId
    approver: Approver
    expires: int = Field(ge=0, description="Unix time the link stops working (the approval's expiry).")
    signature: Signature

    @field_validator("approver")
    @classmethod
    def _lowercase(cls, value: str) -> str:
        return value.lower()


class PageDecisionForm(BaseModel):
    """The approval page's POST body (application/x-www-form-urlencoded)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    action: Action
    approver: Approver
    expires: int = Field(ge=0)
    signature: Signature
    comment: PersonText = Field(default="", max_length=2000)


class ExpireApprovalTask(BaseModel):
    """Input of the expiry state machine's task."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    approval_id: ApprovalId


class SlackSecret(BaseModel):
    """The Slack app's secret (SlackAppSecret in template.yaml); ``{}`` means no Slack."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    signing_secret: SecretStr | None = Field(default=None, description="Verifies Slack's requests.")
    bot_token: SecretStr | None = Field(default=None, description="xoxb-: post, update, look up emails.")
    webhook_url: SecretStr | None = Field(default=None, description="An incoming webhook: post only.")
    api_url: str = Field(
        default="https://slack.com/api/",
        pattern=r"^https?://[^\s]+/$",
        description="Slack's Web API (GovSlack: https://slack-gov.com/api/).",
    )
    hooks_url: str = Field(
        default="https://hooks.slack.com/",
        pattern=r"^https?://[^\s/]+/$",
        description=(
            "Where Slack's response URLs point (GovSlack: https://hooks.slack-gov.com/). A request's"
            " response_url elsewhere is never called: the signed request names it, not Slack."
        ),
    )

    @model_validator(mode="after")
    def _webhook_under_hooks(self) -> SlackSecret:
        # An incoming webhook's URL is Slack's (https://hooks.slack.com/services/...): one pasted
        # without its scheme made urllib raise "unknown url type: '<the URL>'" at every post, and
        # its path is the secret. The error names the field, never the value.
        url = self.webhook_url.get_secret_value() if self.webhook_url is not None else None
        if url is not None and not (url.startswith(self.hooks_url) and _PRINTABLE.fullmatch(url)):
            raise ValueError("webhook_url is not an incoming webhook under hooks_url")
        return self

    @property
    def configured(self) -> bool:
        """Set up for approvals: Slack's requests can be verified and the app can post."""
        return self.signing_secret is not None and self.posts

    @property
    def posts(self) -> bool:
        """Can post notices: a bot token or an incoming webhook (the signing secret is for requests)."""
        return self.bot_token is not None or self.webhook_url is not None


class SlackUser(BaseModel):
    """Who pressed a button or typed a command, as Slack's signed request says."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    id: str = Field(pattern=SLACK_USER_ID_PATTERN)
    name: str = Field(default="", max_length=SLACK_USER_NAME_MAX_LENGTH)

    def label(self, email: str | None) -> str:
        """Who decided, as recorded: ``email`` is an approver's address (the registry's), or None."""
        return SLACK_USER_LABEL.format(who=email or self.name or self.id, user_id=self.id)


class RotationEvent(BaseModel):
    """What Secrets Manager sends a rotation function."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    step: Literal["createSecret", "setSecret", "testSecret", "finishSecret"] = Field(alias="Step")
    secret_id: str = Field(alias="SecretId", min_length=1)
    token: str = Field(alias="ClientRequestToken", min_length=32, max_length=64)
