"""Rollout state machine inputs and the stages a rollout goes through."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canaryfleet.models.analysis import MetricVerdict
from canaryfleet.models.app_config import AppConfig, Strategy
from canaryfleet.models.artifact import AppName, ArtifactRef, Version
from canaryfleet.models.chart import AlarmThreshold, BakeSamples
from canaryfleet.models.policy import (
    AnalysisSpec,
    Approval,
    Bake,
    DeploymentWindow,
    OnTimeout,
    RolloutPolicy,
    SetWeight,
    WindowGuard,
)

BUILD_URL_PATTERN = r"^https://[^\s<>\"']+$"
MAX_BUNDLE_NOTES = 20
# The commit an upload names in its metadata (a SHA, a tag): one line, at most this long.
MAX_COMMIT = 128
MAX_BUILD_URL = 2048


def commit_kept(value: str) -> bool:
    """A commit the rollout record keeps: one printable line of at most MAX_COMMIT characters."""
    return len(value) <= MAX_COMMIT and value.isprintable()


def build_url_kept(value: str) -> bool:
    """A build URL the rollout record keeps (and shows as a link): https, at most MAX_BUILD_URL,
    printable (no control character or bidi override can make it read as another address)."""
    return (
        len(value) <= MAX_BUILD_URL
        and value.isprintable()
        and re.fullmatch(BUILD_URL_PATTERN, value) is not None
    )


class Stage(StrEnum):
    """Stages that are recorded and notified, in the order a released rollout meets them."""

    STARTED = "started"
    CANARY_DEPLOYED = "canary_deployed"
    TRAFFIC_SHIFTED = "traffic_shifted"
    VERDICT = "verdict"
    AWAITING_APPROVAL = "awaiting_approval"
    RELEASED = "released"
    ROLLED_BACK = "rolled_back"


# The stages a rollout meets at each canary step of its policy: each step's is its own news.
PER_STEP_STAGES = frozenset({Stage.TRAFFIC_SHIFTED, Stage.VERDICT, Stage.AWAITING_APPROVAL})


RolloutId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=80,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The rollout's name: also its Step Functions execution name (80 characters at most).",
    ),
]


class RolloutRef(BaseModel):
    """Which rollout: the identity every task payload and logic call carries, validated once."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    application: AppName
    rollout_id: RolloutId
    version: Version


class RolloutInput(BaseModel):
    """The uploaded build a rollout ships (what start_rollout records about it)."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    rollout_id: RolloutId
    application: AppName
    version: Version
    artifact: ArtifactRef
    commit: str | None = Field(default=None, max_length=MAX_COMMIT, description="From object metadata.")
    # Shown as a link in notices and the CLI: only https (never javascript:, data: or plain http).
    build_url: str | None = Field(
        default=None, max_length=MAX_BUILD_URL, pattern=BUILD_URL_PATTERN, description="From object metadata."
    )
    bundle_notes: list[str] = Field(
        default_factory=list,
        max_length=MAX_BUNDLE_NOTES,
        description="What the upload check noted: bakes too short for their analysis to fail a build, what "
        "CodeDeploy's agent ignores in the bundle, and metadata that was dropped.",
    )
    policy: RolloutPolicy | None = Field(
        default=None, description="The policy it runs by: the application's, or its rollout.yaml's."
    )


class RecordStageRequest(BaseModel):
    """Payload of the record_stage task."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    ref: RolloutRef
    stage: Stage
    at: datetime = Field(description="When the state machine entered the stage ($$.State.EnteredTime).")
    detail: dict[str, Any] = Field(default_factory=dict, description="Stage facts worth notifying.")
    step: int | None = Field(
        default=None,
        ge=0,
        description="The canary step's index ($.step.index) for a stage met at every step (traffic"
        " shifted, verdict, awaiting approval): recorded and notified once per step. None: once per rollout.",
    )
    extension: int = Field(
        default=0,
        ge=0,
        le=3,
        description="The verdict of a bake's Nth extension (0: of the bake): each is recorded and told once.",
    )

    @model_validator(mode="after")
    def _a_step_only_for_a_stage_of_steps(self) -> RecordStageRequest:
        if self.step is not None and self.stage not in PER_STEP_STAGES:
            raise ValueError(f"step: {self.stage.value} is met once per rollout, not at a canary step")
        if self.extension and (self.stage is not Stage.VERDICT or self.step is None):
            raise ValueError("extension: only a canary step's verdict follows an extended bake")
        return self


class RecordStageResult(BaseModel):
    model_config = ConfigDict(defer_build=True)

    stage: Stage
    first_time: bool = Field(description="False when this stage was already recorded (a retry or duplicate).")
    previous_stage: Stage | None = None
    previous_stage_seconds: float | None = None


class Revision(BaseModel):
    """A CodeDeploy S3 revision: one object version of a bundle."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    version: str = Field(description="The application version this revision is.")

    @classmethod
    def of(cls, artifact: ArtifactRef) -> Revision:
        return cls(
            bucket=artifact.bucket,
            key=artifact.key,
            version_id=artifact.version_id,
            etag=artifact.etag,
            version=artifact.version,
        )

    def codedeploy(self) -> dict[str, Any]:
        location: dict[str, Any] = {"bucket": self.bucket, "key": self.key, "bundleType": "zip"}
        if self.version_id:
            location["version"] = self.version_id
        if self.etag:
            location["eTag"] = self.etag
        return {"revisionType": "S3", "s3Location": location}


class PlannedStep(BaseModel):
    """One policy step as the state machine's Map iterates it (flat, JSONPath-friendly)."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    index: int
    kind: Literal["set_weight", "bake", "approval"]
    weight: int = 0
    duration_seconds: int = 0
    analysis: AnalysisSpec | None = None
    timeout_seconds: int = 0
    on_timeout: OnTimeout = OnTimeout.ROLLBACK
    approval_follows: bool = Field(default=False, description="A later approval step exists.")


class WindowPlan(BaseModel):
    """The policy's deployment windows and the steps they guard, as the window task reads them."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    windows: tuple[DeploymentWindow, ...] = ()
    guards: tuple[WindowGuard, ...] = ("canary", "live")


class RolloutPlan(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True)

    steps: tuple[PlannedStep, ...]
    deployment_timeout_seconds: int
    inconclusive_extensions: int
    window: WindowPlan = Field(default_factory=WindowPlan)
    # The application's strategy (its registry entry's): the state machine's Choices read it.
    strategy: Strategy = "in_place"
    scale_down_delay_seconds: int = Field(default=1_800, ge=0)
    capacity_timeout_seconds: int = Field(default=600, ge=1)

    @classmethod
    def of(cls, policy: RolloutPolicy, app: AppConfig | None = None) -> RolloutPlan:
        planned: list[PlannedStep] = []
        for index, step in enumerate(policy.steps):
            later_approval = any(isinstance(s, Approval) for s in policy.steps[index + 1 :])
            if isinstance(step, SetWeight):
                planned.append(PlannedStep(index=index, kind="set_weight", weight=step.weight))
            elif isinstance(step, Bake):
                planned.append(
                    PlannedStep(
                        index=index,
                        kind="bake",
                        duration_seconds=step.duration_seconds,
                        analysis=step.analysis,
                        approval_follows=later_approval,
                    )
                )
            else:
                planned.append(
                    PlannedStep(
                        index=index,
                        kind="approval",
                        timeout_seconds=step.timeout_seconds,
                        on_timeout=step.on_timeout,
                        approval_follows=later_approval,
                    )
                )
        return cls(
            steps=tuple(planned),
            deployment_timeout_seconds=policy.deployment_timeout_seconds,
            inconclusive_extensions=policy.inconclusive_extensions,
            window=WindowPlan(windows=policy.windows, guards=policy.window_guards),
            **(
                {
                    "strategy": app.strategy,
                    "scale_down_delay_seconds": app.scale_down_delay_seconds,
                    "capacity_timeout_seconds": app.capacity_timeout_seconds,
                }
                if app is not None
                else {}
            ),
        )


# How an execution may end where none of the state machine's Catch paths runs (Step Functions
# Developer Guide, "Handling errors in Step Functions workflows": States.ALL catches neither
# States.Runtime nor States.DataLimitExceeded; a stopped or timed-out execution runs nothing more).
EndedStatus = Literal["ABORTED", "TIMED_OUT", "FAILED"]
# A stopped execution's cause, as much as a rollout's reason carries (StopExecution allows 32,768).
MAX_RECOVERED_CAUSE = 1000


class Recovery(BaseModel):
    """A rollout whose execution ended outside the state machine's own paths, taken over by a new
    execution of the same state machine (logic/recovery.py)."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    stopped_execution: str = Field(description="The ARN of the execution that ended.")
    status: EndedStatus
    error: str | None = Field(default=None, max_length=256)
    cause: str | None = Field(default=None, max_length=MAX_RECOVERED_CAUSE)


class ExecutionInput(BaseModel):
    """What start_rollout hands to the rollout state machine."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    ref: RolloutRef
    arrival: str = Field(description="Sort key of the rollout in its application's queue (arrival order).")
    revision: Revision
    app: AppConfig
    plan: RolloutPlan
    recovery: Recovery | None = Field(
        default=None, description="Set only on a recovery execution: the execution it takes over."
    )


class GroupSide(StrEnum):
    CANARY = "canary"
    LIVE = "live"


class Verdict(BaseModel):
    """Canary against live over one bake, with the numbers behind it."""

    model_config = ConfigDict(defer_build=True)

    result: Literal["pass", "fail", "inconclusive"]
    reasons: list[str]
    canary_requests: float
    canary_errors: float
    canary_error_rate: float
    canary_latency: float | None = Field(default=None, description="None: no request in the window.")
    live_requests: float
    live_errors: float
    live_error_rate: float
    live_latency: float | None = Field(default=None, description="None: no request in the window.")
    window_start: datetime
    window_end: datetime
    # What the charts draw: the bake period by period, and the thresholds of the canary's alarms.
    samples: BakeSamples | None = Field(default=None, description="None: recorded before samples were kept.")
    alarms: list[AlarmThreshold] = Field(
        default_factory=list, description="The canary's alarms and their thresholds, as the bake watched."
    )
    score: int | None = Field(
        default=None, description="Share of judged metrics that pass; None: older verdicts."
    )
    alpha: float | None = Field(
        default=None, description="The analysis's false-failure rate over its metrics."
    )
    metrics: list[MetricVerdict] = Field(
        default_factory=list, description="Each metric's result and numbers."
    )
