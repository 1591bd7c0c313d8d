"""A rollout's guarded steps waiting for their deployment window and for freezes to end.

The state machine asks :func:`check_window` before each guarded step; while the calendar holds
the step it waits in :func:`hold_for_window`, a task-token wait whose timeout is the instant the
step may run. The wait ends early (and the check runs again) when the calendar changes
(:func:`wake_window_waits`, after a freeze is declared or removed), when a person overrides it
(:func:`override_window`) or on an abort. Whatever ends it, nothing runs before a check says so:
a lost wake-up only makes a rollout wait until its old time, then check again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit

from canaryfleet.logic.alarms import end_wait_if_firing
from canaryfleet.logic.calendar import next_opening
from canaryfleet.models.calendar import MAX_WAIT_SECONDS, WindowCheck, WindowCheckTask, WindowHoldTask
from canaryfleet.models.decision import Decision
from canaryfleet.models.rollout_record import RolloutRecord, Wait, WindowOverride, WindowWait
from canaryfleet.observability import emit_dimensioned, logger, tracer
from canaryfleet.ports.calendar import FreezeReader
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.fleet import FleetMetrics
from canaryfleet.ports.notifier import Notifier
from canaryfleet.ports.rollouts import RolloutRecords
from canaryfleet.ports.workflow import Callbacks


def _latest_key(record: RolloutRecord, guard: str) -> str | None:
    """The record's key of the guard's latest wait: a guard checked at two steps (blue/green's
    canary, before its colors and before its deployment) keeps each wait ("canary", "canary#2")."""
    keys = [key for key, wait in record.window_waits.items() if wait.guard == guard]
    return max(keys, key=lambda key: record.window_waits[key].started, default=None)


def _end_wait(record: RolloutRecord, guard: str, store: RolloutRecords, now: datetime) -> None:
    """The guard's wait (if any) ended now; the window wait's token is forgotten."""
    key = _latest_key(record, guard)
    current = record.window_waits[key] if key is not None else None
    if key is not None and current is not None and not current.ended:
        waits = {**record.window_waits, key: current.model_copy(update={"until": now, "ended": True})}
        store.set_window_waits(record.application, record.rollout_id, waits)
    token = record.waits_with("window")
    if token:
        store.clear_wait(record.application, record.rollout_id, token)


@tracer.capture_method
def check_window(
    task: WindowCheckTask, store: RolloutRecords, calendar: FreezeReader, clock: Clock
) -> WindowCheck:
    """May the guarded step run now? If not, until when it waits, recorded on the rollout."""
    now = clock.now()
    ref = task.ref
    if task.guard not in task.window.guards:
        return WindowCheck(open=True)
    # The record is written before the execution starts; were it missing, the calendar still holds.
    record = store.get(ref.application, ref.rollout_id)
    if record is not None and record.window_overrides:
        override = record.window_overrides[0]
        _end_wait(record, task.guard, store, now)
        logger.info("window overridden", extra={"guard": task.guard, "by": override.by})
        return WindowCheck(open=True, reason=f"window overridden by {override.by}")
    hold = next_opening(task.window.windows, calendar.freezes(), now)
    if hold is None:
        if record is not None:
            _end_wait(record, task.guard, store, now)
        return WindowCheck(open=True)
    if record is not None:
        key = _latest_key(record, task.guard)
        current = record.window_waits[key] if key is not None else None
        if key is None or current is None or current.ended:  # a new wait, an ended one kept beside it
            earlier = sum(1 for wait in record.window_waits.values() if wait.guard == task.guard)
            key, started = (task.guard if not earlier else f"{task.guard}#{earlier + 1}"), now
        else:
            started = current.started
        entry = WindowWait(
            guard=task.guard,
            started=started,
            until=hold.until,
            reason=hold.reason,
            kind=hold.kind,
            timezone=hold.timezone,
        )
        store.set_window_waits(ref.application, ref.rollout_id, {**record.window_waits, key: entry})
    seconds = min(MAX_WAIT_SECONDS, max(1, math.ceil((hold.until - now).total_seconds())))
    # The dashboard's "waiting for the calendar" widget: how long until the step may run, by app.
    emit_dimensioned("WindowWaitSeconds", MetricUnit.Seconds, seconds, "application", ref.application)
    logger.info("waiting for the calendar", extra={"guard": task.guard, "until": hold.until.isoformat()})
    return WindowCheck(open=False, until=hold.until.isoformat(), wait_seconds=seconds, reason=hold.reason)


@tracer.capture_method
def hold_for_window(
    task: WindowHoldTask,
    store: RolloutRecords,
    calendar: FreezeReader,
    callbacks: Callbacks,
    clock: Clock,
    alarms: FleetMetrics,
) -> str:
    """Store the wait's token; end it at once if it is already stale.

    Stale: an abort or an override came, or the calendar changed between the check and now (the
    first instant the step may run is no longer ``task.until``). Before going live (``task.app``
    given) a canary alarm already in ALARM fails the wait at once: the
    canary keeps its traffic while it waits, and an alarm whose event came before this wait
    began found no wait to end. Returns what happened.
    """
    now = clock.now()
    ref, token = task.ref, task.token
    record = store.set_wait(ref.application, ref.rollout_id, Wait(kind="window", token=token, started_at=now))
    if record.abort_requested is not None:
        abort = record.abort_requested
        callbacks.fail(token, "Aborted", f"aborted by {abort.by}: {abort.reason}")
        return "aborted"
    if record.window_overrides:
        callbacks.succeed(token, {"overridden": True})
        return "overridden"
    if task.app is not None and end_wait_if_firing(task.app, alarms, ref, token, store, callbacks):
        return "alarm"
    hold = next_opening(task.window.windows, calendar.freezes(), now)
    if hold is None or hold.until != task.until:
        callbacks.succeed(token, {"calendar_changed": True})
        return "calendar_changed"
    return "waiting"


def wake_window_waits(records: Iterable[RolloutRecord], callbacks: Callbacks) -> list[str]:
    """End the window waits of these rollouts so that each checks the calendar again.

    The rollouts' own checks decide what happens next; the ids of the rollouts woken are returned.
    """
    woken = []
    for record in records:
        token = record.waits_with("window")
        if token and callbacks.succeed(token, {"calendar_changed": True}):
            woken.append(record.rollout_id)
    return woken


def override_window(
    record: RolloutRecord, by: str, reason: str, store: RolloutRecords, callbacks: Callbacks, clock: Clock
) -> bool:
    """Let this rollout run its guarded steps now, recorded with who and why; True if it was
    waiting for the calendar and now goes on."""
    override = WindowOverride(by=by, reason=reason, at=clock.now())
    store.add_window_override(record.application, record.rollout_id, override)
    return bool(wake_window_waits([record], callbacks))


def announce_override(
    decision: Decision, rollout_id: str, store: RolloutRecords, notifier: Notifier, clock: Clock
) -> str:
    """Tell the application's channel (the rollout's Slack thread) who overrode the calendar and why.

    The override already stands when this runs, so a failure (SNS throttled or refused, the
    record unread) is only logged, as ``settle_ended_approval`` does its own: an error here made
    the decide function fail, and `canaryfleet promote --override-window` said "error" for an
    override in effect. Returns "" once the notice is published, else what the operator is told.
    """
    try:
        record = store.get(decision.application, rollout_id)
        notifier.publish(
            kind="rollout.window_overridden",
            application=decision.application,
            message={
                "rollout_id": rollout_id,
                "application": decision.application,
                "version": record.version if record is not None else "",
                "by": decision.by,
                "reason": decision.reason,
                "at": clock.now().isoformat(),
            },
        )
    except Exception as exc:
        logger.exception("window override not announced", extra={"rollout_id": rollout_id})
        return (
            "the override stands, but its announcement in the rollout's Slack thread did not go out "
            f"({str(exc)[:200]}): tell the channel yourself"
        )
    return ""
