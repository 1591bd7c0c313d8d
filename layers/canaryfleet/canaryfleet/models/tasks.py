"""Payloads the rollout state machine sends its tasks (Parameters in rollout.asl.yaml).

Each carries the rollout it is about as one ``ref`` (``"ref.$": "$.ref"`` in the definition).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.policy import AnalysisSpec
from canaryfleet.models.rollout import Recovery, Revision, RolloutRef


class _Task(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class QueueTask(_Task):
    token: str = Field(repr=False)
    ref: RolloutRef
    arrival: str
    execution_arn: str


class ReleaseTask(_Task):
    ref: RolloutRef
    execution_arn: str
    arrival: str | None = Field(
        default=None,
        description="The rollout's place in the queue, given on the path of a failure before it"
        " changed anything: a wait for the turn that failed may have left its place there.",
    )


class CheckDeploymentTask(_Task):
    ref: RolloutRef
    purpose: str = Field(pattern=r"^(canary|live|canary-restore)$")


class VerifyTask(_Task):
    app: AppConfig


class ShiftTask(_Task):
    app: AppConfig
    ref: RolloutRef
    weight: int = Field(ge=0, le=100)
    seq: str = Field(pattern=r"^[a-z0-9-]{1,32}$", description="Step of the weight log this change is.")
    notify: bool = True
    step: int | None = Field(
        default=None,
        ge=0,
        description="The canary step's index; None outside the steps (release, final, rollback) and from"
        " a definition before it was sent: the shift is then told once per rollout.",
    )


class BakeTask(_Task):
    token: str = Field(repr=False)
    app: AppConfig
    ref: RolloutRef
    analysis: AnalysisSpec | None = Field(
        default=None, description="The analysis that follows the bake: its critical metrics get alarms."
    )
    extension: int = Field(
        default=0,
        ge=0,
        le=3,
        description="0: the step's bake; N: its Nth extension after an inconclusive verdict, whose analysis "
        "window continues the bake's (the ASL's $.extension; 0 from a definition before it was sent).",
    )


class AlarmCheckTask(_Task):
    app: AppConfig
    ref: RolloutRef
    analysis: AnalysisSpec | None = Field(
        default=None, description="The bake's analysis: the fail-fast alarms of its critical metrics."
    )


class AnalyseTask(_Task):
    app: AppConfig
    ref: RolloutRef
    analysis: AnalysisSpec
    step: int | None = Field(
        default=None,
        ge=0,
        description="The canary step's index; None from a definition before it was sent (the verdict is"
        " then told once per rollout).",
    )
    extension: int = Field(
        default=0,
        ge=0,
        le=3,
        description="0: the analysis of the step's bake; N: of its Nth extension, whose verdict is told too.",
    )


class ApprovalTask(_Task):
    token: str = Field(repr=False)
    app: AppConfig
    ref: RolloutRef
    timeout_seconds: int = Field(ge=1)
    step: int | None = Field(
        default=None, ge=0, description="The canary step's index; None from a definition before it was sent."
    )
    entered_at: AwareDatetime | None = Field(
        default=None,
        description="When the state machine entered the wait ($$.State.EnteredTime), which its timeout "
        "counts from; None from a definition before it was sent.",
    )


class FinalizeTask(_Task):
    ref: RolloutRef
    revision: Revision
    app: AppConfig | None = Field(
        default=None, description="blue/green: the rollout's app copy (its release color becomes live)."
    )


class CaughtError(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")


ColorAction = Literal[
    "choose", "empty", "bring_up", "check", "scale_down_release", "scale_down_old", "old_color_left_up"
]


class ColorTask(_Task):
    """The color task of a blue/green rollout (one function, one step of the colors each).

    ``choose`` resolves which color is live (the app copy the rest of the rollout carries);
    ``empty`` takes a warm idle color to zero through the drain; ``bring_up`` sizes the idle
    color like the live one; ``check`` waits (by Retry) for its healthy capacity until
    ``since`` + ``timeout_seconds``; ``scale_down_release`` (after a rollback) and
    ``scale_down_old`` (after the scale-down delay) take a color to zero; ``old_color_left_up``
    (``scale_down_old``'s Catch, with its ``error``) says the old color keeps its instances.
    """

    action: ColorAction
    ref: RolloutRef
    app: AppConfig
    since: datetime | None = Field(default=None, description="check: when the color was brought up.")
    timeout_seconds: int | None = Field(default=None, ge=1, description="check: the capacity timeout.")
    error: CaughtError | None = Field(
        default=None, description="old_color_left_up: why scale_down_old failed (its Catch's error)."
    )

    @model_validator(mode="after")
    def _an_error_only_for_a_color_left_up(self) -> ColorTask:
        if (self.action == "old_color_left_up") != (self.error is not None):
            raise ValueError("error: given for old_color_left_up, and only for it")
        return self


class RollbackTask(_Task):
    ref: RolloutRef
    error: CaughtError


_STATE_FIELDS_READ = frozenset({"value", "reason", "timestamp"})


class AlarmStateChange(BaseModel):
    """``detail`` of a CloudWatch "Alarm State Change" event (the fields canaryfleet reads)."""

    model_config = ConfigDict(defer_build=True)

    alarm_name: str = Field(alias="alarmName")
    state: dict[str, str] = Field(description="value, reason, timestamp: the string fields of the state.")
    configuration: dict[str, object] = Field(
        default_factory=dict, description="The alarm's description and metrics, as the event carries them."
    )

    @field_validator("state", mode="before")
    @classmethod
    def _string_fields(cls, state: object) -> object:
        """The fields canaryfleet reads (``value``, ``reason``, ``timestamp``), checked as
        strings, and the other string fields (``reasonData``...).

        A field of another type that CloudWatch may add later is left out, as unknown fields
        are elsewhere, rather than fail the whole event: an ALARM the handler cannot parse
        is retried and dead-lettered, and its bake would end only at its timeout.
        """
        if isinstance(state, dict):
            return {
                name: value
                for name, value in state.items()
                if name in _STATE_FIELDS_READ or isinstance(value, str)
            }
        return state


class DeployRequest(BaseModel):
    """The deploy task: create a CodeDeploy deployment and wait for it with ``token``."""

    model_config = ConfigDict(defer_build=True)

    token: str = Field(repr=False)
    ref: RolloutRef
    purpose: str = Field(pattern=r"^(canary|live|canary-restore|live-restore)$")
    app: AppConfig
    revision: Revision


class ExecutionStatusChange(BaseModel):
    """``detail`` of a "Step Functions Execution Status Change" event (Step Functions Developer
    Guide, "Automating Step Functions event delivery with EventBridge", Execution Status Change).
    It carries no error or cause, and ``input`` is left out when the event would be too large
    (``inputDetails``): both are read from the execution itself."""

    model_config = ConfigDict(defer_build=True)

    execution_arn: str = Field(alias="executionArn", pattern=r"^arn:aws[a-z-]*:states:[^\s]+$")
    state_machine_arn: str = Field(alias="stateMachineArn")
    status: str
    input: str | None = Field(
        default=None, description="The execution's input, None when the event leaves it out."
    )

    @model_validator(mode="before")
    @classmethod
    def _left_out(cls, data: object) -> object:
        """An input the event says it left out (``inputDetails.included`` false), or gives empty, is
        None: no execution's input is empty (StartExecution takes JSON, ``{}`` by default), so an
        empty one cannot be what the execution was given."""
        if not isinstance(data, dict):
            return data
        details = data.get("inputDetails")
        left_out = isinstance(details, dict) and details.get("included") is False
        if left_out or data.get("input") == "":
            return {**data, "input": None}
        return data


class TakeOverTask(_Task):
    """A recovery execution takes over the rollout whose execution ended outside its own paths."""

    action: Literal["take_over"]
    ref: RolloutRef
    arrival: str
    app: AppConfig
    execution_arn: str
    recovery: Recovery


class DeploymentStateChange(BaseModel):
    """``detail`` of a CodeDeploy "Deployment State-change Notification"."""

    model_config = ConfigDict(defer_build=True)

    deployment_id: str = Field(alias="deploymentId")
    state: str
    application: str
    deployment_group: str = Field(alias="deploymentGroup")
