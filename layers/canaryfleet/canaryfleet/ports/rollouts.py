"""Rollout state: the record, its stages and waits, the queue and lock, releases, deployments.

One protocol a concern, so that a function asks only for what it uses; ``RolloutStore`` is
all of them (what the state table adapter, :class:`canaryfleet.adapters.rollout_store.
DynamoRolloutStore`, and the unit tests' in-memory fake implement). Contracts every
implementation keeps: ``create`` writes once, ``record_stage`` counts a stage once (or once a step),
``hand_lock_to`` and ``release_lock`` are conditional, ``record_deployment_outcome`` records
a deployment's end once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from canaryfleet.models.app_config import Color, Strategy
from canaryfleet.models.rollout import Revision, RolloutInput, Stage, Verdict
from canaryfleet.models.rollout_record import (
    AbortRequest,
    AuditEntry,
    DeploymentRecord,
    DeploymentWait,
    LockRecord,
    QueuedRollout,
    RolloutOutcome,
    RolloutRecord,
    StageTransition,
    VersionClaim,
    VersionDecision,
    Wait,
    WindowOverride,
    WindowWait,
)


class RolloutReader(Protocol):
    def get(self, application: str, rollout_id: str) -> RolloutRecord | None:
        """The rollout record, if there is one."""
        ...

    def list_rollouts(self, application: str, version: str | None = None) -> list[RolloutRecord]:
        """Every rollout record of the application (of that version only, if given), in no
        particular order."""
        ...


class RolloutRecords(RolloutReader, Protocol):
    """The rollout record: each write sets only its own attributes."""

    def create(self, rollout: RolloutInput, received_at: datetime, arrival: str | None = None) -> bool:
        """Create the record once; False if it already existed (nothing is changed then)."""
        ...

    def mark_started(self, application: str, rollout_id: str, execution_arn: str) -> None: ...

    def record_outcome(
        self,
        application: str,
        rollout_id: str,
        outcome: RolloutOutcome,
        reason: str,
        *,
        error: str | None = None,
        ended_at: datetime | None = None,
    ) -> None: ...

    def record_verdict(self, application: str, rollout_id: str, verdict: Verdict) -> None: ...

    def record_decision(self, application: str, rollout_id: str, decision: AuditEntry) -> None: ...

    def request_abort(self, application: str, rollout_id: str, request: AbortRequest) -> None: ...

    def abort_requested(self, application: str, rollout_id: str) -> AbortRequest | None:
        """The abort on-call asked for, if any (None for a record that is not there), read without
        a read grant: a step that would take the build further, which only updates the record,
        refuses to once an abort is recorded."""
        ...

    def request_promotion(self, application: str, rollout_id: str, by: str) -> None: ...

    def append_audit(self, application: str, rollout_id: str, entry: AuditEntry) -> None: ...

    def log_weight(self, application: str, rollout_id: str, seq: str, weight: int, at: datetime) -> None:
        """Record the weight set at step ``seq``; the same step again overwrites its entry."""
        ...

    def record_stage(
        self,
        application: str,
        rollout_id: str,
        stage: Stage,
        at: datetime,
        step: int | None = None,
        *,
        extension: int = 0,
    ) -> StageTransition:
        """Record that a stage was entered: once per rollout, or with ``step`` once per canary step
        (a repeat changes nothing, and says whether that occurrence's notice was published since),
        and with ``extension`` once per extension of the step's bake.
        The stage's first entry time stays the first, whichever step it was."""
        ...

    def stage_notified(
        self, application: str, rollout_id: str, stage: Stage, step: int | None = None, *, extension: int = 0
    ) -> None:
        """The notice of the stage (at ``step``, after ``extension``) is published; a step's also
        counts for the stage without a step, so a later step-less repeat of a stage a step told is
        no news."""
        ...

    def set_wait(self, application: str, rollout_id: str, wait: Wait) -> RolloutRecord:
        """Store the wait the rollout is in; the record after the change."""
        ...

    def clear_wait(
        self, application: str, rollout_id: str, token: str, stopped_because: str | None = None
    ) -> None:
        """Forget the wait of ``token`` once it ended, unless a newer wait replaced it; with
        ``stopped_because``, in the same write, why its execution ended outside canaryfleet."""
        ...

    def set_window_waits(self, application: str, rollout_id: str, waits: dict[str, WindowWait]) -> None:
        """Store the rollout's waits for the calendar, by guard (the whole map)."""
        ...

    def add_window_override(self, application: str, rollout_id: str, override: WindowOverride) -> None:
        """Append a window override to the rollout's list of them."""
        ...


class RolloutQueue(Protocol):
    """One rollout per application at a time; the others wait in arrival order."""

    def enqueue(self, application: str, arrival: str, rollout_id: str, execution_arn: str) -> None:
        """Take a place at ``arrival``, once (a repeat keeps the first place)."""
        ...

    def attach_queue_token(
        self, application: str, arrival: str, rollout_id: str, execution_arn: str, token: str
    ) -> None: ...

    def drop_from_queue(self, application: str, sk: str) -> None: ...

    def queue_head(self, application: str) -> QueuedRollout | None: ...

    def queue_length(self, application: str) -> int: ...

    def rollouts_in_progress(self, application: str) -> list[str]:
        """The rollouts that hold the lock or wait in the queue (ids: the lock's first)."""
        ...

    def lock(self, application: str) -> LockRecord | None: ...

    def hand_lock_to(self, application: str, head: QueuedRollout) -> bool:
        """Give the free lock to ``head`` and drop its queue entry, atomically, the lock keeping
        the head's token; False if taken, or if the head does not wait (any more, or with that token)."""
        ...

    def turn_delivered(self, application: str, owner: str) -> None:
        """Forget the token of the lock ``owner`` holds: its wait for the turn has ended."""
        ...

    def release_lock(self, application: str, owner: str) -> bool:
        """Delete the lock if ``owner`` holds it; False if it did not."""
        ...

    def transfer_lock(self, application: str, owner: str, to: str) -> bool:
        """Give the lock ``owner`` holds to the execution ``to``, atomically (forgetting the
        token of ``owner``'s wait); False if ``owner`` did not hold it."""
        ...


class Releases(Protocol):
    """Versions decided once, and the last good revision."""

    def version_status(self, application: str, version: str) -> VersionDecision | None: ...

    def claim_version(
        self, application: str, version: str, rollout_id: str, *, replacing: str | None = None
    ) -> VersionClaim | None:
        """Make ``rollout_id`` the one rollout of ``version``, atomically: None once it is, else
        the claim that stands. Taken when no rollout holds it, when ``rollout_id`` already does (a
        retried event), or when ``replacing`` does (a holder the caller found ended or gone)."""
        ...

    def decide_version(
        self,
        application: str,
        version: str,
        status: Literal["released", "rejected"],
        rollout_id: str,
        reason: str,
    ) -> None: ...

    def last_good(self, application: str) -> Revision | None: ...

    def set_last_good(
        self, application: str, revision: Revision, rollout_id: str, color: Color | None = None
    ) -> None:
        """Record the release; ``color``: the blue/green color now live (kept with it)."""
        ...

    def live_color(self, application: str) -> Color | None:
        """Blue/green: the color the last release made live; None before the first one."""
        ...

    def set_colors(
        self, application: str, rollout_id: str, strategy: Strategy, live: Color, release: Color
    ) -> None:
        """On the rollout record: which color was live when it began and which carries it."""
        ...

    def record_old_color_left_up(self, application: str, rollout_id: str, reason: str) -> None:
        """On the rollout record: why the color that served before its release still has its
        instances after the scale-down delay."""
        ...


class DeploymentRecords(Protocol):
    """The CodeDeploy deployments of a rollout, and where a deployment's token meets its end."""

    def deployment_for(self, rollout_id: str, purpose: str) -> str | None: ...

    def remember_deployment(self, rollout_id: str, purpose: str, deployment_id: str, group: str) -> None:
        """Link the deployment to the rollout, and mark it as one canaryfleet created."""
        ...

    def knows_deployment(self, deployment_id: str) -> bool:
        """Whether canaryfleet created (remembered) this deployment."""
        ...

    def deployments_of(self, rollout_id: str) -> list[DeploymentRecord]: ...

    def attach_deployment_token(
        self, deployment_id: str, token: str, context: dict[str, str]
    ) -> DeploymentWait:
        """Store the token waiting for a deployment; the item after, with its final status and
        detail if the state-change event came first."""
        ...

    def record_deployment_outcome(
        self, deployment_id: str, status: str, detail: str
    ) -> DeploymentWait | None:
        """Record a deployment's end once; the item (with any token) the first time, else None."""
        ...

    def deployment_outcome(self, deployment_id: str) -> str | None:
        """The deployment's final status once recorded (Succeeded, Failed, Stopped); None before."""
        ...


class RolloutStore(RolloutRecords, RolloutQueue, Releases, DeploymentRecords, Protocol):
    """Everything rollout logic keeps in the state table."""
