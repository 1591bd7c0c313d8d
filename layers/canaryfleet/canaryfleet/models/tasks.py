"""Payloads the rollout state machine sends its tasks (Parameters in rollout.asl.json)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.artifact import AppName, Version
from canaryfleet.models.policy import AnalysisSpec
from canaryfleet.models.rollout import Revision


class _Task(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QueueTask(_Task):
    token: str = Field(repr=False)
    application: AppName
    rollout_id: str
    arrival: str
    execution_arn: str


class ReleaseTask(_Task):
    application: AppName
    execution_arn: str


class CheckDeploymentTask(_Task):
    rollout_id: str
    purpose: str = Field(pattern=r"^(canary|live|canary-restore)$")


class VerifyTask(_Task):
    app: AppConfig


class ShiftTask(_Task):
    app: AppConfig
    rollout_id: str
    version: Version
    weight: int = Field(ge=0, le=100)
    seq: str = Field(pattern=r"^[a-z0-9-]{1,32}$", description="Step of the weight log this change is.")
    notify: bool = True


class BakeTask(_Task):
    token: str = Field(repr=False)
    app: AppConfig
    rollout_id: str


class AnalyseTask(_Task):
    app: AppConfig
    rollout_id: str
    version: Version
    analysis: AnalysisSpec


class ApprovalTask(_Task):
    token: str = Field(repr=False)
    app: AppConfig
    rollout_id: str
    version: Version
    timeout_seconds: int = Field(ge=1)


class FinalizeTask(_Task):
    application: AppName
    rollout_id: str
    revision: Revision


class CaughtError(BaseModel):
    model_config = ConfigDict(frozen=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")


class RollbackTask(_Task):
    application: AppName
    rollout_id: str
    version: Version
    error: CaughtError


class AlarmStateChange(BaseModel):
    """``detail`` of a CloudWatch "Alarm State Change" event (the fields canaryfleet reads)."""

    alarm_name: str = Field(alias="alarmName")
    state: dict[str, str]
