"""Drains: the events that start and end one, the order the queue carries, the manifest, the record.

An instance drains once, whatever told the platform it is leaving: a termination lifecycle
hook, a Spot interruption warning or a rebalance recommendation. A second event for the
same instance joins the drain under way (a Spot interruption of an Auto Scaling instance
also puts it through the group's termination hook).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel, field_validator

from canaryfleet.models.artifact import AppName

INSTANCE_ID_PATTERN = r"^i-[0-9a-f]{8,17}$"
# The `<time>` of s3://<log bucket>/<app>/<instance id>/<time>/: one per SendCommand.
RUN_ID_PATTERN = r"^[0-9]{8}T[0-9]{6}Z$"
RUN_ID_FORMAT = "%Y%m%dT%H%M%SZ"
LIFECYCLE_HOOK_NAME = "canaryfleet-drain"

InstanceId = Annotated[str, Field(pattern=INSTANCE_ID_PATTERN, description="An EC2 instance id.")]


class DrainTrigger(StrEnum):
    LIFECYCLE = "lifecycle"
    SPOT = "spot"
    REBALANCE = "rebalance"


class DrainStatus(StrEnum):
    """Where a drain is; the last two are final."""

    REQUESTED = "requested"  # recorded; not yet deregistered and queued
    QUEUED = "queued"  # deregistered, waiting in the drain queue
    DISPATCHING = "dispatching"  # claimed by a dispatcher that is sending its command
    RUNNING = "running"  # the drain document runs on the instance
    DRAINED = "drained"  # logs in S3, manifest verified
    LOGS_LOST = "logs_lost"  # the instance went without (all of) its logs in S3

    @property
    def final(self) -> bool:
        return self in (DrainStatus.DRAINED, DrainStatus.LOGS_LOST)


# --- budgets --------------------------------------------------------------------------------
SPOT_NOTICE_SECONDS = 120
MAX_EXECUTION_SECONDS = 3_600
# A retry is only sent when at least this long is left before the instance goes.
MIN_RETRY_SECONDS = 30
MAX_ATTEMPTS = 2


class DrainBudget(BaseModel):
    """How long the drain document may run, and how it spends the time."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    execution_seconds: int = Field(
        ge=30, le=MAX_EXECUTION_SECONDS, description="The document's whole run (timeoutSeconds)."
    )
    stop_seconds: int = Field(ge=5, le=600, description="Graceful stop; after it the application is killed.")
    flush_first: bool = Field(description="Logs first, then the stop (the instance may go at any moment).")

    @classmethod
    def for_trigger(cls, trigger: DrainTrigger) -> DrainBudget:
        return LIFECYCLE_BUDGET if trigger is DrainTrigger.LIFECYCLE else SPOT_BUDGET


# The termination hook's timeout is at least 300 s (fleet/template.yaml's
# TerminationHookHeartbeatTimeout, its minimum), counted from the event that put the instance in
# its hook. A run usually starts within Run Command's delivery timeout (its 30 s minimum, the
# drain's TimeoutSeconds) and takes at most the document's ExecutionTimeout, and its completion a
# few seconds more: 30 + 240 + 10 s for a scale-in. But an instance whose agent cannot take the
# command at once (Run Command's "Delayed": "The system retries again") may still start it later:
# an invocation stays Pending or Delayed until "the sum of the Timeout (seconds) parameter and the
# Execution timeout parameter" has passed before it is "Delivery Timed Out" (Systems Manager User
# Guide, Understanding command statuses), and then runs for its ExecutionTimeout. So a check that
# finds a command not yet ended renews its instance's hook (a heartbeat), and the checks come at
# most HOOK_RENEW_SECONDS apart: the hook's 300 s less a minute for the queue's delivery.
HOOK_TIMEOUT_SECONDS = 300
HOOK_RENEW_SECONDS = 240
RUN_COMMAND_DELIVERY_SECONDS = 30
COMPLETION_MARGIN_SECONDS = 10

# A Spot notice leaves two minutes: the whole drain fits in 90 s, logs first.
SPOT_BUDGET = DrainBudget(execution_seconds=90, stop_seconds=30, flush_first=True)
# A termination hook waits 300 s by default (fleet/template.yaml); the dispatcher records a
# heartbeat when its command would not fit in what is left of it, and a retry records another.
LIFECYCLE_BUDGET = DrainBudget(execution_seconds=240, stop_seconds=60, flush_first=False)


def spot_deadline(notice_at: datetime) -> datetime:
    return notice_at + timedelta(seconds=SPOT_NOTICE_SECONDS)


def run_ends_by(dispatched_at: datetime, budget: DrainBudget, deadline: datetime | None = None) -> datetime:
    """When Run Command has ended a drain command sent at ``dispatched_at``, whatever the instance does.

    Run Command delivers a command until the sum of its TimeoutSeconds and the document's
    execution timeout has passed, then ends it "Delivery Timed Out" (Systems Manager User Guide,
    Understanding command statuses; ``delivery_window``); a run that started by then is stopped
    at the document's ExecutionTimeout ("Execution Timed Out"), which is the budget's or, for a
    Spot deadline, shorter; its status follows within the completion margin. An instance that
    goes at ``deadline`` (a Spot notice's end) runs nothing after it.
    """
    seconds = delivery_window(budget) + budget.execution_seconds + COMPLETION_MARGIN_SECONDS
    ends = dispatched_at + timedelta(seconds=seconds)
    if deadline is not None:
        ends = min(ends, deadline + timedelta(seconds=COMPLETION_MARGIN_SECONDS))
    return ends


def delivery_window(budget: DrainBudget) -> int:
    """Seconds after SendCommand that Run Command may still start the drain document: its
    TimeoutSeconds and the document's execution timeout (the command's ExpiresAfter)."""
    return RUN_COMMAND_DELIVERY_SECONDS + budget.execution_seconds


# --- events that start a drain (EventBridge, as AWS documents them) -------------------------
class _Detail(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, populate_by_name=True)


class LifecycleActionDetail(_Detail):
    """``detail`` of "EC2 Instance-terminate Lifecycle Action" (Amazon EC2 Auto Scaling)."""

    token: str = Field(alias="LifecycleActionToken", min_length=36, max_length=36, repr=False)
    auto_scaling_group: str = Field(alias="AutoScalingGroupName", min_length=1, max_length=255)
    hook_name: str = Field(alias="LifecycleHookName", min_length=1, max_length=255)
    instance_id: InstanceId = Field(alias="EC2InstanceId")
    transition: Literal["autoscaling:EC2_INSTANCE_TERMINATING"] = Field(alias="LifecycleTransition")
    metadata: str | None = Field(default=None, alias="NotificationMetadata")
    origin: str | None = Field(default=None, alias="Origin")
    destination: str | None = Field(default=None, alias="Destination")


class SpotInterruptionDetail(_Detail):
    """``detail`` of "EC2 Spot Instance Interruption Warning"."""

    instance_id: InstanceId = Field(alias="instance-id")
    instance_action: Literal["terminate", "stop", "hibernate"] = Field(alias="instance-action")


class RebalanceDetail(_Detail):
    """``detail`` of "EC2 Instance Rebalance Recommendation"."""

    instance_id: InstanceId = Field(alias="instance-id")


class LifecycleActionEvent(EventBridgeModel):
    source: Literal["aws.autoscaling"]
    detail_type: Literal["EC2 Instance-terminate Lifecycle Action"] = Field(alias="detail-type")
    detail: LifecycleActionDetail


class SpotInterruptionEvent(EventBridgeModel):
    source: Literal["aws.ec2"]
    detail_type: Literal["EC2 Spot Instance Interruption Warning"] = Field(alias="detail-type")
    detail: SpotInterruptionDetail


class RebalanceEvent(EventBridgeModel):
    source: Literal["aws.ec2"]
    detail_type: Literal["EC2 Instance Rebalance Recommendation"] = Field(alias="detail-type")
    detail: RebalanceDetail


class DrainEvent(RootModel[LifecycleActionEvent | SpotInterruptionEvent | RebalanceEvent]):
    """Any of the three events, told apart by ``detail-type``."""

    root: Annotated[
        LifecycleActionEvent | SpotInterruptionEvent | RebalanceEvent, Field(discriminator="detail_type")
    ]

    @property
    def trigger(self) -> DrainTrigger:
        if isinstance(self.root, LifecycleActionEvent):
            return DrainTrigger.LIFECYCLE
        if isinstance(self.root, SpotInterruptionEvent):
            return DrainTrigger.SPOT
        return DrainTrigger.REBALANCE

    @property
    def instance_id(self) -> str:
        return self.root.detail.instance_id

    @property
    def hook(self) -> LifecycleHookRef | None:
        detail = self.root.detail
        if isinstance(detail, LifecycleActionDetail):
            return LifecycleHookRef(
                name=detail.hook_name, auto_scaling_group=detail.auto_scaling_group, token=detail.token
            )
        return None


class LifecycleHookRef(BaseModel):
    """The termination hook an instance waits in, with the token that completes it."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    auto_scaling_group: str = Field(min_length=1)
    token: str = Field(min_length=1, repr=False)


# --- the event that ends one (SSM Run Command, per instance) -------------------------------
# Invocation statuses that Run Command reports no more change after. Nothing more happens on the
# instance, except after a command's expiry: a run that had started may still be going
# (logic/drain_complete.py, _wait_for_a_late_run).
FINAL_INVOCATION_STATUSES = frozenset(
    {
        "Success",
        "Failed",
        "TimedOut",
        "Cancelled",
        "DeliveryTimedOut",
        "ExecutionTimedOut",
        "Undeliverable",
        "Terminated",
        "InvalidPlatform",
        "AccessDenied",
    }
)


class CommandInvocationDetail(_Detail):
    """``detail`` of "EC2 Command Invocation Status-change Notification" (AWS Systems Manager)."""

    command_id: str = Field(alias="command-id", min_length=36, max_length=36)
    document_name: str = Field(alias="document-name", min_length=3)
    instance_id: str = Field(alias="instance-id", min_length=1)
    requested_at: datetime = Field(alias="requested-date-time")
    status: str = Field(min_length=1)

    @property
    def final(self) -> bool:
        return self.status in FINAL_INVOCATION_STATUSES


class CommandInvocationEvent(EventBridgeModel):
    source: Literal["aws.ssm"]
    detail_type: Literal["EC2 Command Invocation Status-change Notification"] = Field(alias="detail-type")
    detail: CommandInvocationDetail


# --- the drain queue's message -------------------------------------------------------------
# A drain command's status is read this many times, a check's delay (DrainCheckSeconds) apart.
# A command still running after them is ended as lost only once Run Command would have ended it
# (run_ends_by): with a short delay the last of them comes long before that, so more checks are
# due until then, each at most HOOK_RENEW_SECONDS after the last (each renews the instance's
# termination hook); CHECKS_LIMIT bounds them whatever the clock says, for the longest run allowed
# (MAX_EXECUTION_SECONDS, delivered as late as Run Command may).
MAX_CHECKS = 6
MAX_CHECK_DELAY_SECONDS = HOOK_RENEW_SECONDS
CHECKS_LIMIT = MAX_CHECKS + math.ceil(
    (RUN_COMMAND_DELIVERY_SECONDS + 2 * MAX_EXECUTION_SECONDS + COMPLETION_MARGIN_SECONDS)
    / MAX_CHECK_DELAY_SECONDS
)


class DrainOrder(BaseModel):
    """One instance to run the drain document on (the body of a drain queue message)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    instance_id: InstanceId
    application: AppName
    log_prefix: str = Field(min_length=1, description="The application's prefix in the log bucket.")
    trigger: DrainTrigger
    budget: DrainBudget
    deadline: datetime | None = Field(
        default=None, description="When the instance goes whatever we do (Spot: the notice's end)."
    )
    requested_at: datetime


class DrainCheck(BaseModel):
    """A look at a drain command's real status, due some time after it was sent (the body of a
    delayed drain queue message): Run Command's status events are best effort, and a drain
    whose event never came would otherwise wait until its hook timed out, unseen."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    command_id: str = Field(min_length=36, max_length=36)
    instance_ids: tuple[InstanceId, ...] = Field(min_length=1, max_length=50)
    checks: int = Field(default=1, ge=1, le=CHECKS_LIMIT, description="This look's number, the first 1.")
    late_run: bool = Field(
        default=False,
        description="A look at a run that went on after its command expired (its end was told).",
    )
    due: AwareDatetime | None = Field(
        default=None, description="When a late run's look was queued to come (DrainRecord.late_run_look_at)."
    )


# --- what the drain document writes ---------------------------------------------------------
_SAFE_NAME = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$))[^\x00-\x1f]{1,1024}$")


class _ManifestEntry(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    name: str = Field(description="Path under the drain's prefix (relative to /var/log/<app>).")

    @field_validator("name")
    @classmethod
    def _relative(cls, value: str) -> str:
        if not _SAFE_NAME.fullmatch(value) or value == "manifest.json":
            raise ValueError(f"{value!r} is not a relative file name inside the drain's prefix")
        return value


class ManifestFile(_ManifestEntry):
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class SkippedFile(_ManifestEntry):
    """A file the document could not snapshot (its disk full, the file gone): not in S3."""

    error: str = Field(description="Why, as the instance's OS said it.")


class DrainManifest(BaseModel):
    """manifest.json, written last by the drain document next to the files it lists."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    instance_id: str
    application: str
    run_id: str = Field(pattern=RUN_ID_PATTERN)
    mode: Literal["drain", "sync"]
    created_at: datetime
    files: tuple[ManifestFile, ...]
    skipped: tuple[SkippedFile, ...] = Field(
        default=(), description="Files changed since the last flush that are not in S3, and why."
    )

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def log_prefix(application: str, configured: str | None) -> str:
    """The application's prefix in the log bucket (AppConfig.log_prefix, default ``<app>/``)."""
    prefix = configured or f"{application}/"
    return prefix if prefix.endswith("/") else prefix + "/"


def run_prefix(prefix: str, instance_id: str, run_id: str) -> str:
    return f"{prefix}{instance_id}/{run_id}/"


# --- the record -----------------------------------------------------------------------------
# The record keeps the manifest's first entries (an item must stay under DynamoDB's 400 KB).
MANIFEST_FILES_KEPT = 100


class DrainRecord(BaseModel):
    """A drain as the state table keeps it (pk ``APP#<app>``, sk ``DRAIN#<instance id>``)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    instance_id: str
    application: str
    trigger: DrainTrigger = Field(description="What started the drain.")
    triggers: tuple[DrainTrigger, ...] = Field(default=(), description="Every event that named it.")
    side: Literal["canary", "live"] | None = None
    status: DrainStatus
    log_prefix: str
    started_at: datetime
    notice_at: datetime | None = Field(default=None, description="The time of the event that started it.")
    deadline: datetime | None = None
    budget: DrainBudget
    deregistered_from: tuple[str, ...] = ()
    deregistered_at: datetime | None = None
    in_flight_until: datetime | None = Field(
        default=None,
        description=(
            "Until when the load balancer may still complete requests in flight to the instance (its"
            " deregistration plus the groups' deregistration delay): the application is not stopped"
            " before. None when Auto Scaling waited the delay out before the termination hook."
        ),
    )
    attempts: int = 0
    command_ids: tuple[str, ...] = ()
    run_id: str | None = None
    dispatched_at: datetime | None = None
    hook_name: str | None = None
    hook_auto_scaling_group: str | None = None
    hook_token: str | None = Field(default=None, repr=False)
    hook_completed_at: datetime | None = None
    heartbeats: int = 0
    late_run_command: str | None = Field(
        default=None,
        description=(
            "The command whose run, outliving it, the drain waits for (drain_complete's late-run"
            " wait): its end was told, by its status event or by a check that found the event lost."
        ),
    )
    late_run_look_at: datetime | None = Field(
        default=None, description="When the last look queued at that run is due."
    )
    canary_interruption_rollout: str | None = None
    outcome: Literal["drained", "logs_lost"] | None = None
    reason: str | None = None
    bytes: int | None = None
    file_count: int | None = None
    manifest_key: str | None = None
    manifest_sha256: str | None = None
    manifest_files: tuple[ManifestFile, ...] = Field(
        default=(),
        description=f"The manifest's first {MANIFEST_FILES_KEPT} entries (the manifest has them all).",
    )
    completed_at: datetime | None = None
    duration_seconds: float | None = None

    @property
    def hook(self) -> LifecycleHookRef | None:
        if self.hook_name and self.hook_auto_scaling_group and self.hook_token:
            return LifecycleHookRef(
                name=self.hook_name, auto_scaling_group=self.hook_auto_scaling_group, token=self.hook_token
            )
        return None

    @property
    def current_command(self) -> str | None:
        return self.command_ids[-1] if self.command_ids else None

    def public(self) -> dict[str, Any]:
        """The record without its hook token (for people and the CLI)."""
        return self.model_dump(mode="json", exclude={"hook_token"})


# --- what each step answers -------------------------------------------------------------------
class DrainRequestResult(BaseModel):
    """What the request function did with a leaving event."""

    model_config = ConfigDict(defer_build=True)

    status: Literal["queued", "joined", "duplicate", "ignored"]
    instance_id: str
    application: str | None = None
    trigger: DrainTrigger
    reason: str | None = None


class DrainCompletion(BaseModel):
    """What the completion function did with a command status event."""

    model_config = ConfigDict(defer_build=True)

    status: Literal["drained", "logs_lost", "retrying", "waiting", "duplicate", "ignored"]
    instance_id: str
    command_id: str
    reason: str | None = None
