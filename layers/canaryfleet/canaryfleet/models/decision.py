"""A person's decision on a running rollout (approve, reject, abort, promote), and what it did."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from canaryfleet.models.artifact import AppName
from canaryfleet.models.text import PersonText


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    application: AppName
    action: Literal["approve", "reject", "abort", "promote"]
    by: str = Field(
        min_length=1, max_length=200, description="Who decided (email, Slack user, IAM identity)."
    )
    reason: PersonText = Field(
        default="", max_length=2000, description="What they said: printable text, several lines allowed."
    )
    channel: Literal["slack", "page", "cli", "local"] = "cli"
    rollout_id: str | None = Field(default=None, description="Act only if this rollout is the running one.")


class DecisionResult(BaseModel):
    rollout_id: str
    action: str
    outcome: Literal["applied", "recorded", "already_decided"]
    detail: str = ""
    approval_id: str | None = Field(
        default=None, description="The approval whose wait this decision ended, if it ended one."
    )
