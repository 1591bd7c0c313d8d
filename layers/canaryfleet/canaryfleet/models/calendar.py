"""The release calendar: platform-wide freezes, and what the window task of a rollout says.

A freeze (sk ``FREEZE#<id>`` under pk ``FREEZES`` in the state table) stops every guarded step
of every application from ``start`` to ``end``; operators declare and remove them with
``canaryfleet freeze`` (no redeploy). A removed freeze stays stored with who removed it: the
calendar's audit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.policy import WindowGuard
from canaryfleet.models.rollout import RolloutRef, WindowPlan
from canaryfleet.models.text import PersonText

FREEZE_ID_PATTERN = r"^[a-z0-9-]{4,40}$"
# Step Functions' longest task timeout (TimeoutSeconds: "must be a positive, non-zero integer";
# the service caps it at 99999999 seconds, https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html).
# A rollout never waits that long: its execution lives at most a year, and the calendar refuses a
# hold beyond logic.calendar.MAX_HOLD (120 days).
MAX_WAIT_SECONDS = 99_999_999


class Freeze(BaseModel):
    """No guarded step runs from ``start`` to ``end`` (a sale day, an incident, a holiday)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    freeze_id: str = Field(pattern=FREEZE_ID_PATTERN)
    start: AwareDatetime
    end: AwareDatetime
    reason: PersonText = Field(min_length=1, max_length=500)
    declared_by: str = Field(min_length=1, max_length=200)
    declared_at: AwareDatetime
    removed_by: str | None = Field(default=None, description="Who ended it early; None while it stands.")
    removed_at: AwareDatetime | None = None
    removed_reason: str | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> Freeze:
        if self.end <= self.start:
            raise ValueError("a freeze must end after it starts")
        return self

    def in_force(self, at: datetime) -> bool:
        """Whether it holds guarded steps at ``at``."""
        return self.removed_at is None and self.start <= at < self.end

    def stored(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude_none=True)


class Hold(BaseModel):
    """A guarded step may not run now: it may at ``until``; ``reason`` says what holds it."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    until: datetime
    kind: Literal["window", "freeze"] = Field(description="What holds it first: a closed window or a freeze.")
    reason: str
    timezone: str = Field(default="UTC", description="Where ``until`` is shown (the window's zone).")


class WindowCheckTask(BaseModel):
    """The state machine asks: may ``guard`` run now? (Payload of "Check window before ...")."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    ref: RolloutRef
    guard: WindowGuard
    window: WindowPlan


class WindowHoldTask(BaseModel):
    """The state machine waits for the calendar (a ``.waitForTaskToken`` task until ``until``)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    token: str = Field(repr=False)
    ref: RolloutRef
    guard: WindowGuard
    window: WindowPlan
    until: AwareDatetime = Field(description="When the check said the step may run.")
    app: AppConfig | None = Field(
        default=None, description="Before going live: the application whose canary alarms end the wait."
    )


class WindowCheck(BaseModel):
    """What the check tells the state machine (``$.window``)."""

    model_config = ConfigDict(defer_build=True)

    open: bool
    until: str | None = Field(default=None, description="ISO 8601; None when open.")
    wait_seconds: int = Field(default=0, ge=0, le=MAX_WAIT_SECONDS, description="The hold's timeout.")
    reason: str = ""
