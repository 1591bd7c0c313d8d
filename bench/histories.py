"""Step Functions execution histories, read back from the local cloud with their timestamps."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# A Task's attempt begins with one of these (its Retry schedules it again, in the same state).
_SCHEDULED = frozenset({"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"})


class BenchError(Exception):
    """A measurement could not be taken (the run did not do what it had to)."""


def wall_clock(monotonic_seconds: float) -> float:
    """A time.monotonic() reading as wall-clock seconds (history timestamps are wall clock)."""
    return monotonic_seconds + time.time() - time.monotonic()


@dataclass(frozen=True)
class HistoryEvent:
    at: float  # wall clock, seconds (moto stamps events to the millisecond)
    type: str
    state: str | None  # the state entered or exited, if the event is one of those


@dataclass(frozen=True)
class Execution:
    arn: str
    status: str
    error: str | None
    events: tuple[HistoryEvent, ...]

    @property
    def states_entered(self) -> list[str]:
        return [e.state for e in self.events if e.type.endswith("StateEntered") and e.state]

    @property
    def retries(self) -> int:
        """Tasks scheduled again by their Retry: every schedule of a state after its first."""
        retries, scheduled = 0, 0
        for event in self.events:
            if event.type.endswith("StateEntered"):
                scheduled = 0
            elif event.type in _SCHEDULED:
                scheduled += 1
                retries += scheduled > 1
        return retries

    @property
    def transitions(self) -> int:
        """State transitions as Step Functions bills them: one per state entered, and one per
        retry ("each retry will be charged as an additional state transition", AWS Step
        Functions pricing)."""
        return len(self.states_entered) + self.retries

    @property
    def started(self) -> float:
        return self.events[0].at

    @property
    def ended(self) -> float:
        return self.events[-1].at

    def first_entered_after(self, at: float, ignoring: frozenset[str] = frozenset()) -> HistoryEvent | None:
        """The first state entered at or after ``at`` that is not one of ``ignoring``."""
        for event in self.events:
            if event.at >= at and event.type.endswith("StateEntered") and event.state not in ignoring:
                return event
        return None

    def first_exit_of(self, state: str, after: float) -> HistoryEvent | None:
        for event in self.events:
            if event.at >= after and event.type.endswith("StateExited") and event.state == state:
                return event
        return None


def _event(raw: dict[str, Any]) -> HistoryEvent:
    details = raw.get("stateEnteredEventDetails") or raw.get("stateExitedEventDetails") or {}
    return HistoryEvent(at=raw["timestamp"].timestamp(), type=raw["type"], state=details.get("name"))


def read_execution(sfn: Any, arn: str) -> Execution:
    described = sfn.describe_execution(executionArn=arn)
    events: list[HistoryEvent] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(_event(raw) for raw in page["events"])
    return Execution(arn, described["status"], described.get("error"), tuple(events))


def wait_until_ended(sfn: Any, arn: str, timeout: float) -> Execution:
    deadline = time.monotonic() + timeout
    while sfn.describe_execution(executionArn=arn)["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            raise BenchError(f"{arn} still running after {timeout:.0f} s")
        time.sleep(0.05)
    return read_execution(sfn, arn)
