"""What the notifications function reads: the platform's notices, as SNS delivers them through SQS.

Every rollout stage, rejected upload and drain that lost its logs is published once on the
notification topic (``adapters/notifier.py``); the topic's queue hands them to the
notifications function in SQS batches, each body being SNS's envelope around the notice.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from types import MappingProxyType
from typing import Any

from aws_lambda_powertools.utilities.parser.models import SnsNotificationModel, SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json, computed_field, field_validator

from canaryfleet.models.artifact import AppName

ROLLOUT_ID_PATTERN = r"^[A-Za-z0-9_-]+$"


class Rank(IntEnum):
    """How far a rollout has come: a rollout's card never goes back to an earlier stage."""

    STARTED = 1
    CANARY_DEPLOYED = 2
    TRAFFIC_SHIFTED = 3
    VERDICT = 4
    AWAITING_APPROVAL = 5
    ENDED = 9  # released, rolled back or rejected


_RANKS = MappingProxyType(
    {
        "rollout.started": Rank.STARTED,
        # A reply in the rollout's thread that moves its card nowhere (the lowest rank).
        "rollout.window_overridden": Rank.STARTED,
        "rollout.canary_deployed": Rank.CANARY_DEPLOYED,
        "rollout.traffic_shifted": Rank.TRAFFIC_SHIFTED,
        "rollout.verdict": Rank.VERDICT,
        "rollout.awaiting_approval": Rank.AWAITING_APPROVAL,
        "rollout.released": Rank.ENDED,
        "rollout.rolled_back": Rank.ENDED,
        "rollout.rejected": Rank.ENDED,
    }
)
# A stage met at each canary step: its place within the step (a verdict's extensions follow it).
_PER_STEP = MappingProxyType({Rank.TRAFFIC_SHIFTED: 0, Rank.VERDICT: 1, Rank.AWAITING_APPROVAL: 5})
FINAL_KINDS = frozenset({"rollout.released", "rollout.rolled_back", "rollout.rejected"})
KNOWN_KINDS = frozenset({*_RANKS, "drain.logs_lost"})


def _whole(value: object) -> int | None:
    """A whole number the body carries, or None (bool is an int to Python: true would pass for 1)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Notice(BaseModel):
    """One notice of the notification topic: its kind, its application and what it says."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    kind: str = Field(pattern=r"^(rollout|drain)\.[a-z_]{3,40}$")
    application: AppName
    body: dict[str, Any] = Field(description="The published message (JSON object).")
    message_id: str = Field(min_length=1, max_length=100, description="SNS's id: one per publication.")
    published_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        """What makes two notices the same news: the rollout's stage (at its canary step, for a
        stage met at each step), or the drain's run.

        A notice published twice (a retried publisher) or delivered twice (SNS and SQS are
        at least once) has the same key, so it is told once; each step's is told once.
        """
        subject = self.body.get("rollout_id") or self.body.get("run_id") or self.body.get("instance_id")
        key = f"{self.application}/{subject or self.message_id}/{self.kind}"
        if self.step is None:
            return key
        return f"{key}/step-{self.step}" + (f"/extension-{self.extension}" if self.extension else "")

    @property
    def step(self) -> int | None:
        """The canary step's index, for a stage met at each step (record_stage's ``step``)."""
        return _whole(self.body.get("step"))

    @property
    def extension(self) -> int:
        """The extension of the step's bake a verdict follows (0: the bake itself)."""
        value = _whole(self.body.get("extension"))
        return value if value is not None and value > 0 else 0

    @property
    def rollout_id(self) -> str | None:
        value = self.body.get("rollout_id")
        return str(value) if value else None

    @property
    def rank(self) -> Rank | None:
        return _RANKS.get(self.kind)

    @property
    def progress(self) -> Decimal | None:
        """How far the rollout had come when this was published: its rank, and for a stage met
        at each canary step, the step (and the bake's extension) in thousandths above
        TRAFFIC_SHIFTED, below VERDICT's whole rank. So step 2's shift is past step 1's verdict
        and approval, and the rollout's card (which shows the furthest notice) follows the steps.
        A policy has at most 20 steps and 3 extensions (models/policy.py), 8 places a step; a
        body saying more stays below VERDICT all the same."""
        rank = self.rank
        if rank is None or rank not in _PER_STEP:
            return None if rank is None else Decimal(int(rank))
        place = _PER_STEP[rank] + (min(self.extension, 3) if rank is Rank.VERDICT else 0)
        step = min(self.step or 0, 99)
        return Decimal(int(Rank.TRAFFIC_SHIFTED)) + Decimal(step * 8 + place) / 1000

    @property
    def final(self) -> bool:
        return self.kind in FINAL_KINDS

    @property
    def version(self) -> str:
        return str(self.body.get("version") or "")

    @property
    def reason(self) -> str:
        """Why the rollout ended the way it did (rolled back, rejected), or why logs were lost."""
        detail = self.body.get("detail") or {}
        return str(self.body.get("reason") or detail.get("reason") or "")

    @classmethod
    def from_sns(cls, sns: SnsNotificationModel) -> Notice:
        """The notice in SNS's envelope; its attributes name the kind and the application."""
        attributes = sns.MessageAttributes or {}
        message = sns.Message if isinstance(sns.Message, str) else "null"
        body = json.loads(message)
        if not isinstance(body, dict):
            raise ValueError("the notice is not a JSON object")
        return cls(
            kind=attributes["kind"].Value if "kind" in attributes else "",
            application=attributes["application"].Value if "application" in attributes else "",
            body=body,
            message_id=sns.MessageId,
            published_at=sns.Timestamp,
        )


class NoticeRecord(SqsRecordModel):
    """One message of the notifications queue: SNS's envelope (not raw delivery) as its body."""

    model_config = ConfigDict(defer_build=True)

    body: Json[SnsNotificationModel]

    @field_validator("body", mode="before")
    @classmethod
    def _an_envelope(cls, value: Any) -> Any:
        # SNS's model reads its keys before validating: anything but an object would fail
        # there with a TypeError instead of a validation error.
        parsed = json.loads(value) if isinstance(value, str | bytes) else value
        if not isinstance(parsed, dict):
            raise ValueError("the body is not SNS's envelope (a JSON object)")
        return value

    def notice(self) -> Notice:
        return Notice.from_sns(self.body)


class NoticeBatch(BaseModel):
    """A batch of the notifications queue, as Lambda's SQS event source sends it."""

    model_config = ConfigDict(defer_build=True)

    Records: list[NoticeRecord]
