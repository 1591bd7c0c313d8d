"""Rollout state machine inputs and the stages a rollout goes through."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from canaryfleet.models.artifact import AppName, ArtifactRef, Version


class Stage(StrEnum):
    """Stages that are recorded and notified, in the order a released rollout meets them."""

    STARTED = "started"
    CANARY_DEPLOYED = "canary_deployed"
    TRAFFIC_SHIFTED = "traffic_shifted"
    VERDICT = "verdict"
    AWAITING_APPROVAL = "awaiting_approval"
    RELEASED = "released"
    ROLLED_BACK = "rolled_back"


class RolloutInput(BaseModel):
    """Input of one rollout execution (what start_rollout sends to StartExecution)."""

    model_config = ConfigDict(frozen=True)

    rollout_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")
    application: AppName
    version: Version
    artifact: ArtifactRef
    commit: str | None = Field(default=None, max_length=128, description="From object metadata.")
    build_url: str | None = Field(default=None, max_length=2048, description="From object metadata.")


class RecordStageRequest(BaseModel):
    """Payload of the record_stage task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rollout_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")
    application: AppName
    version: Version
    stage: Stage
    at: datetime = Field(description="When the state machine entered the stage ($$.State.EnteredTime).")
    detail: dict[str, Any] = Field(default_factory=dict, description="Stage facts worth notifying.")


class RecordStageResult(BaseModel):
    stage: Stage
    first_time: bool = Field(description="False when this stage was already recorded (a retry or duplicate).")
    previous_stage: Stage | None = None
    previous_stage_seconds: float | None = None
