"""What drain logic needs from the outside world: the drain records, the instance's tags, its
target groups, the drain queue, its termination hook, Run Command, the log bucket, the
registry, the rollout lock and the alert topic.

``canaryfleet.adapters.drain_store`` and ``canaryfleet.adapters.drains`` implement these on
AWS; ``tests/unit/drain_fakes.py`` implements them in memory, with the same conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.drain import (
    DrainBudget,
    DrainCheck,
    DrainOrder,
    DrainRecord,
    DrainTrigger,
    LifecycleHookRef,
)
from canaryfleet.models.rollout_record import LockRecord, RolloutRecord

# SendCommand takes at most 50 instance ids in one call (the SSM API's InstanceIds limit).
MAX_INSTANCES_PER_COMMAND = 50


class DrainStore(Protocol):
    """Drain records: one per instance, every change under a condition, the outcome set once."""

    def begin(self, record: DrainRecord) -> DrainRecord | None:
        """Claim the instance for this drain and create its record; None if it has a drain already."""
        ...

    def create(self, record: DrainRecord) -> DrainRecord | None:
        """Create the record of an instance already claimed (its first writer died); None if it exists."""
        ...

    def owner(self, instance_id: str) -> str | None:
        """The application whose drain the instance is in, if any."""
        ...

    def join(
        self,
        application: str,
        instance_id: str,
        trigger: DrainTrigger,
        hook: LifecycleHookRef | None,
        deadline: datetime | None,
    ) -> DrainRecord | None:
        """Add an event to the drain under way (its hook kept if none, its deadline only earlier).

        Returns the record after the change; None if there is no record.
        """
        ...

    def get(self, application: str, instance_id: str) -> DrainRecord | None: ...

    def find(self, instance_id: str) -> DrainRecord | None:
        """The instance's drain, from its id alone."""
        ...

    def list_drains(self, application: str) -> list[DrainRecord]:
        """Every drain of the application, oldest first."""
        ...

    def mark_deregistered(
        self,
        application: str,
        instance_id: str,
        groups: list[str],
        at: datetime,
        in_flight_until: datetime | None,
    ) -> None:
        """The instance is out of ``groups`` since ``at``; the load balancer may still have requests
        in flight to it until ``in_flight_until`` (None: none that the drain must wait for).

        Written before the order is queued, so the dispatcher that claims it reads it.
        """
        ...

    def mark_queued(self, application: str, instance_id: str) -> None:
        """The drain's order is queued (a status already past stays)."""
        ...

    def claim(
        self, application: str, instance_id: str, now: datetime, stale_before: datetime
    ) -> DrainRecord | None:
        """Take a requested or queued drain to send its command; None if another dispatcher has it.

        A claim older than ``stale_before`` whose command was never recorded may be taken again.
        """
        ...

    def use_budget(self, application: str, instance_id: str, budget: DrainBudget) -> bool:
        """Give a drain whose command is not sent yet another budget; False if it was sent."""
        ...

    def release(self, application: str, instance_id: str) -> None:
        """Give a claim back (the command could not be sent)."""
        ...

    def claim_retry(
        self, application: str, instance_id: str, attempts: int, now: datetime, stale_before: datetime
    ) -> bool:
        """Take a running drain whose attempt ``attempts`` failed, to send it again; False if taken.

        A retry's claim older than ``stale_before`` whose command was never recorded (its
        function died between the two) may be taken again.
        """
        ...

    def unclaim_retry(self, application: str, instance_id: str) -> None:
        """Give a retry's claim back (its command could not be sent): the drain runs as before."""
        ...

    def record_command(
        self,
        application: str,
        instance_id: str,
        command_id: str,
        run_id: str,
        manifest_key: str,
        at: datetime,
    ) -> None:
        """The drain document was sent to the instance: one more attempt, now running."""
        ...

    def record_heartbeat(self, application: str, instance_id: str) -> None: ...

    def record_late_run_look(
        self, application: str, instance_id: str, command_id: str, attempt: int, at: datetime
    ) -> None:
        """A look at the run of ``command_id`` (the drain's attempt ``attempt``), which outlived its
        command, is queued for ``at``. Recorded only on a drain that still runs that attempt, and
        only if no later look at that command's run is recorded: a slow writer puts back neither an
        earlier look nor an earlier command. A drain that ended keeps what it had."""
        ...

    def finish(self, application: str, instance_id: str, **values: Any) -> DrainRecord | None:
        """Set the drain's final status and outcome once; None if it was already final."""
        ...

    def mark_hook_completed(self, application: str, instance_id: str, at: datetime) -> None: ...

    def mark_canary_interruption(self, application: str, instance_id: str, rollout_id: str) -> bool:
        """Note on the drain that its Spot interruption was recorded on a rollout; False if it was."""
        ...

    def record_canary_interruption(
        self, application: str, rollout_id: str, instance_id: str, at: datetime
    ) -> bool:
        """Add the instance to the rollout's canary interruptions, once per instance.

        False if the rollout has no record or already lists the instance.
        """
        ...


class InstanceDirectory(Protocol):
    def tags(self, instance_id: str) -> dict[str, str]:
        """The instance's tags; empty for an instance that does not exist (or has none)."""
        ...


class TargetGroups(Protocol):
    def deregister(self, target_group_arn: str, instance_id: str) -> bool:
        """Take the instance out of the group (its deregistration delay drains in-flight requests).

        False if it was not registered there.
        """
        ...

    def deregistration_delay(self, target_group_arn: str) -> int | None:
        """The group's deregistration delay in seconds: how long the load balancer lets the requests
        in flight to a deregistered target complete. None if it could not be read."""
        ...


class DrainQueue(Protocol):
    def send(self, order: DrainOrder) -> None:
        """Queue one instance for the batched SendCommand."""
        ...


class DrainChecks(Protocol):
    def check_in(self, check: DrainCheck, seconds: int) -> None:
        """Have ``check`` come back to the dispatcher in ``seconds`` (at most 900)."""
        ...


class CommandStatuses(Protocol):
    def run(self, command_id: str, instance_id: str) -> InvocationRun | None:
        """The command's invocation on the instance: its status, detailed status and run's start;
        None if it has no such invocation."""
        ...


@dataclass(frozen=True)
class InvocationRun:
    """Where one instance's invocation is (GetCommandInvocation)."""

    status: str  # Pending, InProgress, Delayed, Success, Cancelled, TimedOut, Failed, ...
    status_details: str  # "Delivery Timed Out", "Execution Timed Out", ... (more than Status says)
    started_at: datetime | None  # None: the document has not started to run there


class OrderRedelivery(Protocol):
    def redeliver_in(self, seconds: dict[str, int]) -> None:
        """Make each received order (by receipt handle) visible again after its seconds."""
        ...


class RunCommand(Protocol):
    def send(
        self, document: str, instance_ids: list[str], parameters: dict[str, list[str]], comment: str
    ) -> str:
        """Run ``document`` on up to 50 instances; returns the command id.

        Raises InstancesNotReachable if Run Command refuses one of the instances.
        """
        ...


class LifecycleHooks(Protocol):
    def complete(self, hook: LifecycleHookRef, instance_id: str) -> bool:
        """CONTINUE the instance's termination; False if its action had already ended."""
        ...

    def heartbeat(self, hook: LifecycleHookRef, instance_id: str) -> bool:
        """Restart the hook's heartbeat timeout; False if its action had already ended."""
        ...


@dataclass(frozen=True)
class StoredObject:
    size: int
    sha256: str | None  # hex; None unless S3 keeps a full-object SHA-256 checksum


class LogObjects(Protocol):
    """The log bucket, as the manifest check reads it."""

    def read(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes; None if there is no such object."""
        ...

    def describe(self, bucket: str, key: str) -> StoredObject | None:
        """Size and checksum of an object; None if there is no such object."""
        ...


class DrainRegistry(Protocol):
    """What a drain reads from the registry: the application that owns the instance."""

    def get(self, application: str) -> AppConfig:
        """The application's configuration; UnknownApplication or ConfigurationError if none."""
        ...


class RolloutLock(Protocol):
    """What a drain reads from the rollout store: whether, and which, rollout holds the lock, and
    (blue/green) which color that rollout's release is on."""

    def lock(self, application: str) -> LockRecord | None: ...

    def get(self, application: str, rollout_id: str) -> RolloutRecord | None: ...


class Alerts(Protocol):
    """The notification topic, where a drain that lost its logs is told."""

    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None: ...
