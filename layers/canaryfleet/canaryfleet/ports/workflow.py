"""Step Functions as logic sees it: ending task-token waits, and starting executions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from canaryfleet.models.rollout import ExecutionInput


class Callbacks(Protocol):
    """Ending a ``.waitForTaskToken`` wait; False when the wait had already ended."""

    def succeed(self, token: str, output: dict[str, Any]) -> bool: ...

    def fail(self, token: str, error: str, cause: str) -> bool: ...


@dataclass(frozen=True)
class CallbackEnd:
    """How one callback (``.waitForTaskToken``) task ended, as its execution's history keeps it."""

    kind: Literal["succeeded", "failed", "timed_out"]
    at: datetime
    output: str | None = None  # succeeded: what SendTaskSuccess sent
    error: str | None = None  # failed (SendTaskFailure's error) or timed out (States.Timeout)
    cause: str | None = None


@dataclass(frozen=True)
class CallbackEnds:
    """An execution's status, and how its callback tasks ended since a time, oldest first."""

    status: str  # DescribeExecution's (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED); "" if none
    ends: tuple[CallbackEnd, ...]
    complete: bool  # the history was read back to that time (False: it was longer than the bound)


class CallbackHistory(Protocol):
    def ends_since(self, execution_arn: str, since: datetime) -> CallbackEnds:
        """The execution's status and the ends of its callback tasks since ``since``."""
        ...


class RolloutExecutions(Protocol):
    """The rollout state machine's executions, one per rollout (named after it)."""

    def execution_arn(self, name: str) -> str:
        """The ARN the execution named ``name`` has (or will have)."""
        ...

    def start(self, execution: ExecutionInput) -> tuple[str, bool]:
        """Start the rollout's execution once; its ARN and whether this call started it."""
        ...


class EndedExecution(Protocol):
    """What Step Functions keeps of an execution that ended: its status, its input, and its end's
    error and cause (StopExecution's, or the failure's)."""

    @property
    def status(self) -> str: ...

    @property
    def input(self) -> str | None: ...

    @property
    def error(self) -> str | None: ...

    @property
    def cause(self) -> str | None: ...


class RecoveryExecutions(Protocol):
    """Executions of the rollout state machine that take over one that ended outside its paths."""

    def describe(self, execution_arn: str) -> EndedExecution | None:
        """The execution's input, and the error and cause its end was recorded with; None if
        there is no such execution."""
        ...

    def start_recovery(self, execution: ExecutionInput) -> tuple[str, bool]:
        """Start the recovery of ``execution.recovery.stopped_execution`` once; its ARN and whether
        this call started it."""
        ...


class ExecutionStatus(Protocol):
    def is_running(self, execution_arn: str) -> bool:
        """Whether the execution still runs (False if it ended or never existed)."""
        ...

    def ended_at(self, execution_arn: str) -> datetime | None:
        """When the execution ended; None while it runs (the earliest date if it never existed)."""
        ...


class ApprovalExpiry(Protocol):
    def schedule(self, approval_id: str, expires_at: datetime, now: datetime) -> bool:
        """Have the approval expired at ``expires_at`` if nobody answers; False if already scheduled."""
        ...


class EndedApprovals(Protocol):
    def settle_now(self, approval_id: str) -> bool:
        """Have an approval the rollout no longer waits for settled at once (its Slack message too)."""
        ...
