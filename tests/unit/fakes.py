"""In-memory implementations of the ports, with the same contracts as the AWS adapters.

``InMemoryRolloutStore`` keeps the state table's rules: a record is created once, a stage is
recorded once (or once a canary step), the lock goes to the head of the queue only when it is
free (and the head's entry leaves the queue with it), a release needs the owner, a deployment's
end is recorded once. Records are kept as ``RolloutRecord`` and replaced on each write, as a
read would see them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from canaryfleet.adapters.fleet import DESCRIPTION_LENGTH
from canaryfleet.adapters.registry import Registry
from canaryfleet.errors import DeploymentGroupBusy, FreezeExists, UnknownApplication, UnknownFreeze
from canaryfleet.logic.queue import queue_rollout
from canaryfleet.models.analysis import MetricQuery
from canaryfleet.models.app_config import AppConfig, Color, FleetGroup, GroupCapacity, Strategy
from canaryfleet.models.artifact import ArtifactRef
from canaryfleet.models.calendar import Freeze
from canaryfleet.models.chart import AlarmThreshold, MetricSample
from canaryfleet.models.fail_fast import CriticalAlarm
from canaryfleet.models.rollout import Revision, RolloutInput, RolloutRef, Stage, Verdict
from canaryfleet.models.rollout_record import (
    MAX_LISTED_ALARMS,
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
    WeightEntry,
    WindowOverride,
    WindowWait,
    queue_sk,
)
from canaryfleet.models.tasks import QueueTask
from canaryfleet.ports.clock import Clock

# The moment most unit tests' clocks read (tests/unit/conftest.py's `clock`; a module whose story
# needs another overrides that fixture).
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


class InMemoryRolloutStore:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.records: dict[tuple[str, str], RolloutRecord] = {}
        self.locks: dict[str, LockRecord] = {}
        self.queues: dict[str, dict[str, QueuedRollout]] = {}
        self.placed: set[tuple[str, str]] = set()  # (application, rollout id): enqueued once
        self.versions: dict[tuple[str, str], VersionDecision] = {}
        self.claims: dict[tuple[str, str], VersionClaim] = {}
        # record_stage: the stages recorded at a canary step, and the notices published (step
        # None: the stage's once-per-rollout occurrence).
        self.stage_steps: set[tuple[str, str, Stage, int | None, int]] = set()
        self.notified: set[tuple[str, str, Stage, int | None, int]] = set()
        self.releases: dict[str, Revision] = {}
        self.colors: dict[str, Color] = {}
        self.deployments: dict[str, dict[str, DeploymentRecord]] = {}
        self.deployment_waits: dict[str, dict[str, Any]] = {}

    # -- the rollout record ------------------------------------------------------------
    def _change(self, application: str, rollout_id: str, **values: Any) -> RolloutRecord:
        key = (application, rollout_id)
        current = self.records[key]  # like update_item on a missing record: a bug in the caller
        changed = RolloutRecord.model_validate({**current.model_dump(), **values})
        self.records[key] = changed
        return changed

    def create(self, rollout: RolloutInput, received_at: datetime, arrival: str | None = None) -> bool:
        key = (rollout.application, rollout.rollout_id)
        if key in self.records:
            return False
        self.records[key] = RolloutRecord(
            rollout_id=rollout.rollout_id,
            application=rollout.application,
            version=rollout.version,
            artifact_bucket=rollout.artifact.bucket,
            artifact_key=rollout.artifact.key,
            artifact_version_id=rollout.artifact.version_id,
            artifact_etag=rollout.artifact.etag,
            commit=rollout.commit,
            build_url=rollout.build_url,
            bundle_notes=rollout.bundle_notes,
            policy=rollout.policy,
            arrival=arrival,
            received_at=received_at,
        )
        return True

    def get(self, application: str, rollout_id: str) -> RolloutRecord | None:
        return self.records.get((application, rollout_id))

    def list_rollouts(self, application: str, version: str | None = None) -> list[RolloutRecord]:
        return [
            r
            for (app, _), r in self.records.items()
            if app == application and (version is None or r.version == version)
        ]

    def mark_started(self, application: str, rollout_id: str, execution_arn: str) -> None:
        self._change(application, rollout_id, status="started", execution_arn=execution_arn)

    def record_outcome(
        self,
        application: str,
        rollout_id: str,
        outcome: RolloutOutcome,
        reason: str,
        *,
        error: str | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": outcome, "outcome": outcome, "reason": reason}
        if error is not None:
            values["error"] = error
        if ended_at is not None:
            values["ended_at"] = ended_at
        self._change(application, rollout_id, **values)

    def record_verdict(self, application: str, rollout_id: str, verdict: Verdict) -> None:
        self._change(application, rollout_id, verdict=verdict)

    def record_decision(self, application: str, rollout_id: str, decision: AuditEntry) -> None:
        self._change(application, rollout_id, decision=decision)

    def request_abort(self, application: str, rollout_id: str, request: AbortRequest) -> None:
        self._change(application, rollout_id, abort_requested=request)

    def request_promotion(self, application: str, rollout_id: str, by: str) -> None:
        self._change(application, rollout_id, promoted_by=by)

    def append_audit(self, application: str, rollout_id: str, entry: AuditEntry) -> None:
        current = self.records[(application, rollout_id)]
        listed = sum(1 for e in current.audit if e.kind == "alarm")
        if entry.kind == "alarm" and listed >= MAX_LISTED_ALARMS:
            self._change(application, rollout_id, alarms_not_listed=current.alarms_not_listed + 1)
            return
        if entry.kind != "alarm" and any(e.once_key() == entry.once_key() for e in current.audit):
            return  # the adapter's audit_keys condition: the same entry is listed once
        self._change(application, rollout_id, audit=[*current.audit, entry])

    def abort_requested(self, application: str, rollout_id: str) -> AbortRequest | None:
        record = self.records.get((application, rollout_id))
        return record.abort_requested if record is not None else None

    def log_weight(self, application: str, rollout_id: str, seq: str, weight: int, at: datetime) -> None:
        current = self.records[(application, rollout_id)]
        log = {**current.weight_log, seq: WeightEntry(weight=weight, at=at)}
        self._change(application, rollout_id, weight_log=log)

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
        current = self.records[(application, rollout_id)]
        occurrence = (application, rollout_id, stage, step, extension)
        if (step is None and current.stage_at(stage) is not None) or occurrence in self.stage_steps:
            return StageTransition(first_time=False, notified=occurrence in self.notified)
        if step is not None:
            self.stage_steps.add(occurrence)
        self._change(
            application,
            rollout_id,
            # The stage's first entry stays the first, whichever step it was.
            **{f"stage_{stage.value}_at": current.stage_at(stage) or at},
            current_stage=stage,
            current_stage_at=at,
        )
        return StageTransition(
            first_time=True, previous_stage=current.current_stage, previous_at=current.current_stage_at
        )

    def stage_notified(
        self, application: str, rollout_id: str, stage: Stage, step: int | None = None, *, extension: int = 0
    ) -> None:
        assert (application, rollout_id) in self.records
        self.notified.add((application, rollout_id, stage, step, extension))
        # A step's notice also stands for the stage's first one (as the table's record keeps it).
        self.notified.add((application, rollout_id, stage, None, 0))

    def set_wait(self, application: str, rollout_id: str, wait: Wait) -> RolloutRecord:
        values: dict[str, Any] = {
            "wait_kind": wait.kind,
            "wait_token": wait.token,
            "wait_started_at": wait.started_at,
        }
        for name in ("bake_started_at", "approval_id", "approval_expires_at", "approval_step"):
            if getattr(wait, name) is not None:
                values[name] = getattr(wait, name)
        return self._change(application, rollout_id, **values)

    def clear_wait(
        self, application: str, rollout_id: str, token: str, stopped_because: str | None = None
    ) -> None:
        current = self.records.get((application, rollout_id))
        if current is not None and current.wait_token == token:
            because = {"stopped_because": stopped_because} if stopped_because is not None else {}
            self._change(application, rollout_id, wait_token=None, wait_kind=None, **because)

    def set_window_waits(self, application: str, rollout_id: str, waits: dict[str, WindowWait]) -> None:
        self._change(application, rollout_id, window_waits=dict(waits))

    def add_window_override(self, application: str, rollout_id: str, override: WindowOverride) -> None:
        current = self.records[(application, rollout_id)]
        self._change(application, rollout_id, window_overrides=[*current.window_overrides, override])

    # -- lock and queue ------------------------------------------------------------------
    def enqueue(self, application: str, arrival: str, rollout_id: str, execution_arn: str) -> None:
        sk = queue_sk(arrival, rollout_id)
        if (application, rollout_id) in self.placed:
            return
        self.placed.add((application, rollout_id))
        self.queues.setdefault(application, {}).setdefault(
            sk,
            QueuedRollout(
                sk=sk, rollout_id=rollout_id, execution_arn=execution_arn, enqueued_at=self.clock.now()
            ),
        )

    def attach_queue_token(
        self, application: str, arrival: str, rollout_id: str, execution_arn: str, token: str
    ) -> None:
        sk = queue_sk(arrival, rollout_id)
        queue = self.queues.setdefault(application, {})
        existing = queue.get(sk)
        queue[sk] = QueuedRollout(
            sk=sk,
            rollout_id=rollout_id,
            execution_arn=execution_arn,
            token=token,
            enqueued_at=existing.enqueued_at if existing else self.clock.now(),
        )

    def drop_from_queue(self, application: str, sk: str) -> None:
        self.queues.get(application, {}).pop(sk, None)

    def queue_head(self, application: str) -> QueuedRollout | None:
        queue = self.queues.get(application, {})
        return queue[min(queue)] if queue else None

    def queue_length(self, application: str) -> int:
        return len(self.queues.get(application, {}))

    def lock(self, application: str) -> LockRecord | None:
        return self.locks.get(application)

    def rollouts_in_progress(self, application: str) -> list[str]:
        lock = self.locks.get(application)
        queue = self.queues.get(application, {})
        return [*([lock.rollout_id] if lock else []), *(queue[sk].rollout_id for sk in sorted(queue))]

    def hand_lock_to(self, application: str, head: QueuedRollout) -> bool:
        queue = self.queues.get(application, {})
        if (
            head.token is None
            or application in self.locks
            or head.sk not in queue
            or queue[head.sk].token != head.token
        ):
            return False
        self.locks[application] = LockRecord(
            owner=head.execution_arn,
            rollout_id=head.rollout_id,
            acquired_at=self.clock.now(),
            token=head.token,
        )
        del queue[head.sk]
        return True

    def turn_delivered(self, application: str, owner: str) -> None:
        lock = self.locks.get(application)
        if lock is not None and lock.owner == owner:
            self.locks[application] = lock.model_copy(update={"token": None})

    def release_lock(self, application: str, owner: str) -> bool:
        lock = self.locks.get(application)
        if lock is None or lock.owner != owner:
            return False
        del self.locks[application]
        return True

    def transfer_lock(self, application: str, owner: str, to: str) -> bool:
        lock = self.locks.get(application)
        if lock is None or lock.owner != owner:
            return False
        self.locks[application] = lock.model_copy(update={"owner": to, "token": None})
        return True

    # -- versions and releases -----------------------------------------------------------
    def version_status(self, application: str, version: str) -> VersionDecision | None:
        return self.versions.get((application, version))

    def claim_version(
        self, application: str, version: str, rollout_id: str, *, replacing: str | None = None
    ) -> VersionClaim | None:
        standing = self.claims.get((application, version))
        if standing is not None and standing.rollout_id not in (rollout_id, replacing):
            return standing
        self.claims[(application, version)] = VersionClaim(rollout_id=rollout_id, claimed_at=self.clock.now())
        return None

    def decide_version(
        self,
        application: str,
        version: str,
        status: Literal["released", "rejected"],
        rollout_id: str,
        reason: str,
    ) -> None:
        self.versions[(application, version)] = VersionDecision(
            status=status, rollout_id=rollout_id, reason=reason, at=self.clock.now()
        )

    def last_good(self, application: str) -> Revision | None:
        return self.releases.get(application)

    def set_last_good(
        self, application: str, revision: Revision, rollout_id: str, color: Color | None = None
    ) -> None:
        self.releases[application] = revision
        if color is not None:
            self.colors[application] = color

    def live_color(self, application: str) -> Color | None:
        return self.colors.get(application)

    def set_colors(
        self, application: str, rollout_id: str, strategy: Strategy, live: Color, release: Color
    ) -> None:
        self._change(application, rollout_id, strategy=strategy, live_color=live, release_color=release)

    def record_old_color_left_up(self, application: str, rollout_id: str, reason: str) -> None:
        self._change(application, rollout_id, old_color_left_up=reason)

    # -- deployments ---------------------------------------------------------------------
    def deployment_for(self, rollout_id: str, purpose: str) -> str | None:
        record = self.deployments.get(rollout_id, {}).get(purpose)
        return record.deployment_id if record else None

    def remember_deployment(self, rollout_id: str, purpose: str, deployment_id: str, group: str) -> None:
        self.deployments.setdefault(rollout_id, {})[purpose] = DeploymentRecord(
            purpose=purpose, deployment_id=deployment_id, group=group, at=self.clock.now()
        )
        self.deployment_waits.setdefault(deployment_id, {})

    def knows_deployment(self, deployment_id: str) -> bool:
        return deployment_id in self.deployment_waits

    def deployments_of(self, rollout_id: str) -> list[DeploymentRecord]:
        return list(self.deployments.get(rollout_id, {}).values())

    def attach_deployment_token(
        self, deployment_id: str, token: str, context: dict[str, str]
    ) -> DeploymentWait:
        item = self.deployment_waits.setdefault(deployment_id, {})
        item.update(task_token=token, context=context)
        return DeploymentWait(
            task_token=token,
            final_status=item.get("final_status"),
            final_detail=str(item.get("final_detail", "")),
        )

    def record_deployment_outcome(
        self, deployment_id: str, status: str, detail: str
    ) -> DeploymentWait | None:
        item = self.deployment_waits.setdefault(deployment_id, {})
        if "final_status" in item:
            return None
        item.update(final_status=status, final_detail=detail)
        return DeploymentWait(task_token=item.get("task_token"), final_status=status, final_detail=detail)

    def deployment_outcome(self, deployment_id: str) -> str | None:
        status = self.deployment_waits.get(deployment_id, {}).get("final_status")
        return str(status) if status is not None else None


class InMemoryFreezeCalendar:
    """The freeze calendar (:class:`canaryfleet.ports.calendar.FreezeCalendar`) in a dict."""

    def __init__(self, *freezes: Freeze) -> None:
        self.items: dict[str, Freeze] = {f.freeze_id: f for f in freezes}

    def freezes(self) -> list[Freeze]:
        return list(self.items.values())

    def declare(self, freeze: Freeze) -> None:
        if freeze.freeze_id in self.items:
            raise FreezeExists(f"freeze {freeze.freeze_id} already exists")
        self.items[freeze.freeze_id] = freeze

    def remove(self, freeze_id: str, by: str, reason: str, at: datetime) -> Freeze:
        current = self.items.get(freeze_id)
        if current is None or current.removed_at is not None:
            raise UnknownFreeze(f"no standing freeze {freeze_id}")
        removed = current.model_copy(update={"removed_by": by, "removed_at": at, "removed_reason": reason})
        self.items[freeze_id] = removed
        return removed


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        self.sent.append((kind, application, message))


class RecordingCallbacks:
    """Task-token callbacks that record what they were told; an ended token answers False."""

    def __init__(self) -> None:
        self.succeeded: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, tuple[str, str]] = {}
        self.closed: set[str] = set()

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        if token in self.closed:
            return False
        self.closed.add(token)
        self.succeeded[token] = output
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        if token in self.closed:
            return False
        self.closed.add(token)
        self.failed[token] = (error, cause)
        return True


class FakeExecutions:
    """Executions: those in ``running`` still run, every other one has ended."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.ended: dict[str, datetime] = {}  # when each ended; long ago if not given

    def is_running(self, execution_arn: str) -> bool:
        return execution_arn in self.running

    def ended_at(self, execution_arn: str) -> datetime | None:
        if execution_arn in self.running:
            return None
        return self.ended.get(execution_arn, datetime.min.replace(tzinfo=UTC))


class RecordingEndedApprovals:
    """EndedApprovals: the approvals asked to be settled at once, in order."""

    def __init__(self) -> None:
        self.settled: list[str] = []

    def settle_now(self, approval_id: str) -> bool:
        self.settled.append(approval_id)
        return True


class FakeDeployments:
    """CodeDeploy: deployments start InProgress; ``statuses`` says how each stands.

    As CodeDeploy, one active deployment per group: a second is refused (DeploymentGroupBusy).
    """

    def __init__(self) -> None:
        self.statuses: dict[str, tuple[str, str]] = {}
        self.groups: dict[str, str] = {}
        self.stopped: list[str] = []
        self.restores: dict[str, bool] = {}  # deployment id -> a restore (alarms off, stop failures ignored)
        self.descriptions: dict[str, str] = {}

    def register_revision(self, application: str, revision: Revision) -> None:
        return None

    def create_deployment(
        self, application: str, group: str, revision: Revision, description: str, *, restore: bool = False
    ) -> str:
        key = f"{application}/{group}"
        active = [d for d, g in self.groups.items() if g == key and self.statuses[d][0] == "InProgress"]
        if active:
            raise DeploymentGroupBusy(f"{key}: deployment {active[0]} is already in progress")
        deployment_id = f"d-{len(self.statuses) + 1:09d}"
        self.statuses[deployment_id] = ("InProgress", "")
        self.groups[deployment_id] = key
        self.restores[deployment_id] = restore
        self.descriptions[deployment_id] = description[:DESCRIPTION_LENGTH]
        return deployment_id

    def status(self, deployment_id: str) -> tuple[str, str]:
        return self.statuses[deployment_id]

    def find_active(self, application: str, group: str, description: str) -> str | None:
        for deployment_id, key in self.groups.items():
            if (
                key == f"{application}/{group}"
                and self.statuses[deployment_id][0] == "InProgress"
                and self.descriptions[deployment_id] == description[:DESCRIPTION_LENGTH]
            ):
                return deployment_id
        return None

    def find_created(self, application: str, group: str, description: str, since: datetime) -> str | None:
        """Every deployment here was created during the test's rollout: ``since`` holds them all."""
        for deployment_id, key in self.groups.items():
            if (
                key == f"{application}/{group}"
                and self.descriptions[deployment_id] == description[:DESCRIPTION_LENGTH]
            ):
                return deployment_id
        return None

    def stop(self, deployment_id: str) -> bool:
        if self.statuses[deployment_id][0] != "InProgress":
            return False
        self.statuses[deployment_id] = ("Stopped", "stopped by the rollback")
        self.stopped.append(deployment_id)
        return True


def an_app(
    application: str = "payments-api",
    region: str = "eu-west-1",
    canary_alarms: tuple[str, ...] = (),
    live_alarms: tuple[str, ...] = (),
) -> AppConfig:
    """An onboarded application: its two groups (each with the alarms given), target groups and
    listener rule, no policy."""
    arn = f"arn:aws:elasticloadbalancing:{region}:123456789012"

    def group(side: str, number: int, alarms: tuple[str, ...]) -> FleetGroup:
        return FleetGroup(
            deployment_group=f"{application}-{side}",
            target_group_arn=f"{arn}:targetgroup/{application}-{side}/{number}",
            auto_scaling_group=f"{application}-{side}",
            alarms=alarms,
        )

    return AppConfig(
        application=application,
        codedeploy_application=application,
        listener_rule_arn=f"{arn}:listener-rule/app/x/1/2/3",
        canary=group("canary", 1, canary_alarms),
        live=group("live", 2, live_alarms),
    )


def a_rollout(
    store: InMemoryRolloutStore,
    application: str = "payments-api",
    version: str = "2.7.0",
    rollout_id: str = "payments-api-2_7_0-5e0c2c7a41d2b7b3b1f04a6d",
    received_at: datetime | None = None,
) -> RolloutRecord:
    """A rollout record as start_rollout creates it, stored in ``store``."""
    artifact = ArtifactRef(
        bucket="artifacts", key=f"{application}/{version}.zip", application=application, version=version
    )
    rollout = RolloutInput(rollout_id=rollout_id, application=application, version=version, artifact=artifact)
    store.create(rollout, received_at or store.clock.now(), arrival=f"1#{rollout_id}")
    record = store.get(application, rollout_id)
    assert record is not None
    return record


class FakeAlarms:
    """CloudWatch as the bake, the analysis and the rollback see it: alarms put, deleted, firing.

    ``states`` holds each alarm's state (a put alarm starts in INSUFFICIENT_DATA, as CloudWatch's
    does); ``series`` and ``samples`` find no data.
    """

    def __init__(self) -> None:
        self.alarms: dict[str, CriticalAlarm] = {}
        self.states: dict[str, str] = {}
        self.deleted: list[str] = []

    def put_alarm(self, alarm: CriticalAlarm) -> None:
        self.alarms[alarm.name] = alarm
        self.states.setdefault(alarm.name, "INSUFFICIENT_DATA")

    def delete_alarms(self, prefix: str) -> list[str]:
        names = sorted(n for n in self.states if n.startswith(prefix))
        for name in names:
            self.alarms.pop(name, None)
            del self.states[name]
        self.deleted += names
        return names

    def alarms_in_alarm(self, names: tuple[str, ...]) -> list[dict[str, str]]:
        return [{"name": n, "reason": "Threshold Crossed"} for n in names if self.states.get(n) == "ALARM"]

    def alarm_thresholds(self, names: tuple[str, ...]) -> list[AlarmThreshold]:
        return []

    def series(
        self, queries: Mapping[str, MetricQuery], start: datetime, end: datetime, period_seconds: int
    ) -> dict[str, dict[datetime, float]]:
        return {qid: {} for qid in queries}

    def samples(
        self, app: AppConfig, group: FleetGroup, start: datetime, end: datetime
    ) -> list[MetricSample]:
        return []


class FakeRule:
    """The application's listener rule: its forward action's weights by target group ARN."""

    def __init__(self, app: AppConfig) -> None:
        # As the fleet stack makes it: every request to its live group (blue).
        self.by_group = {app.live.target_group_arn: 100, app.canary.target_group_arn: 0}

    def weights(self, app: AppConfig) -> dict[str, int]:
        return dict(self.by_group)

    def set_canary_weight(self, app: AppConfig, weight: int) -> dict[str, int]:
        self.by_group = {app.live.target_group_arn: 100 - weight, app.canary.target_group_arn: weight}
        return self.weights(app)

    def target_health(self, group: FleetGroup) -> dict[str, str]:
        return {}


class FakeGroups:
    """Auto Scaling groups as the color task sees them: desired capacity, instances, launches.

    A scale-out launches at once as many instances as ``available`` allows (None: all), the
    rest record a Spot launch failure; a scale-in leaves its instances ``draining`` until
    :meth:`drained` (the termination hook's drain) ends them.
    """

    def __init__(self, **desired: int) -> None:
        self.desired: dict[str, int] = dict(desired)
        self.healthy: dict[str, int] = dict(desired)
        self.draining: dict[str, int] = {}
        self.available: dict[str, int | None] = {}
        self.failures: dict[str, list[str]] = {}
        self.max_sizes: dict[str, int] = {}
        self.calls: list[tuple[str, int]] = []

    def capacity(self, auto_scaling_group: str, since: datetime | None = None) -> GroupCapacity:
        healthy = self.healthy.get(auto_scaling_group, 0)
        return GroupCapacity(
            desired=self.desired.get(auto_scaling_group, 0),
            instances=healthy + self.draining.get(auto_scaling_group, 0),
            healthy=healthy,
            max_size=self.max_sizes.get(auto_scaling_group),
            launch_failures=tuple(self.failures.get(auto_scaling_group, [])),
        )

    def set_desired(self, auto_scaling_group: str, desired: int) -> None:
        self.calls.append((auto_scaling_group, desired))
        running = self.healthy.get(auto_scaling_group, 0)
        self.desired[auto_scaling_group] = desired
        if desired < running:
            self.draining[auto_scaling_group] = self.draining.get(auto_scaling_group, 0) + running - desired
            self.healthy[auto_scaling_group] = desired
            return
        available = self.available.get(auto_scaling_group)
        wanted = desired - running
        launched = wanted if available is None else min(wanted, available)
        self.healthy[auto_scaling_group] = running + launched
        if launched < wanted:
            self.failures.setdefault(auto_scaling_group, []).append(
                "Could not launch Spot Instances. InsufficientInstanceCapacity"
            )

    def drained(self, auto_scaling_group: str) -> None:
        self.draining[auto_scaling_group] = 0


class AppsRegistry(Registry):
    """The registry adapter (its alarm lookup included) over these applications, without SSM."""

    def __init__(self, *apps: AppConfig) -> None:
        self.apps = {a.application: a for a in apps}

    def get(self, application: str) -> AppConfig:
        if application not in self.apps:
            raise UnknownApplication(application)
        return self.apps[application]

    def all(self) -> list[AppConfig]:
        return list(self.apps.values())


def hold_lock(store: InMemoryRolloutStore, ref: RolloutRef) -> None:
    """The rollout's turn: it holds its application's lock, as the queue gives it."""
    task = QueueTask(token="token-queue", ref=ref, arrival=f"1#{ref.rollout_id}", execution_arn="arn:exec")
    queue_rollout(task, store, RecordingCallbacks(), FakeExecutions(), store.clock)
