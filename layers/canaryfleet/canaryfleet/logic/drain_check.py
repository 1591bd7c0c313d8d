"""A drain command's real status, read when its check comes due (a delayed drain queue message).

A drain ends on Run Command's "EC2 Command Invocation Status-change Notification", which AWS
sends on a best-effort basis ("Monitoring Systems Manager events with Amazon EventBridge",
Systems Manager User Guide: Run Command's events "are emitted on a best effort basis"). Without
it the drain would stay running, unseen, until the instance's termination hook timed out and
Auto Scaling let the instance go, its logs never checked and nobody told. So every command
sent is checked once its check is due (``Drains.check_seconds`` later): a drain its event
already ended, or a retry took over (with a check of its own), is left alone; one whose
command has ended on the instance ends as the event would have ended it (the manifest
verified, a retry, or the logs lost, and the hook completed); one whose command still runs is
checked again, ``MAX_CHECKS`` times a check's delay apart, then ended with its logs lost, but
never while Run Command may still run the document (``run_ends_by``: its delivery, which may
last until its TimeoutSeconds and the document's ExecutionTimeout have passed, then the run): a
short check delay would otherwise let the termination hook go, and the instance with it, in the
middle of the flush. Checks come until that bound has passed, at most ``MAX_CHECK_DELAY_SECONDS``
apart, and ``CHECKS_LIMIT`` bounds them all.

Each check that finds a command not ended (Pending, Delayed, InProgress) renews the termination
hook its instance waits in (RecordLifecycleActionHeartbeat): a run delivered late, which Run
Command allows, would otherwise outlast the hook's timeout, counted from the event, and Auto
Scaling would terminate the instance in the middle of its flush. Such a run may even outlast its
command, which then ends "Delivery Timed Out" while the run goes on: the completion waits for it
with a check of its own (``DrainCheck.late_run``, ``drain_complete._wait_for_a_late_run``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit

from canaryfleet.logic.drain import Drains, check_later, finish_drain, heartbeat_hook, seconds_until
from canaryfleet.logic.drain_complete import complete_drain
from canaryfleet.models.drain import (
    CHECKS_LIMIT,
    FINAL_INVOCATION_STATUSES,
    MAX_CHECKS,
    CommandInvocationDetail,
    DrainCheck,
    DrainRecord,
    run_ends_by,
)
from canaryfleet.observability import logger, metrics, tracer


@tracer.capture_method
def check_command(check: DrainCheck, drains: Drains) -> dict[str, str]:
    """Each instance of the check, and what was done: see the module docstring."""
    statuses = drains.statuses
    if statuses is None:
        raise ValueError("a drain check needs Run Command's statuses")
    now = drains.clock.now()
    done: dict[str, str] = {}
    running: dict[str, str] = {}
    waiting: list[DrainRecord] = []  # the running ones, as read
    runs_end: list[datetime] = []
    for instance_id in check.instance_ids:
        record = drains.store.find(instance_id)
        if record is None or record.status.final or record.current_command != check.command_id:
            done[instance_id] = "ended"  # by its event, or a retry runs another command
            continue
        run = statuses.run(check.command_id, instance_id)
        status = None if run is None else run.status
        if status not in FINAL_INVOCATION_STATUSES:
            running[instance_id] = status or "no invocation"
            waiting.append(record)
            if record.dispatched_at is not None:
                runs_end.append(run_ends_by(record.dispatched_at, record.budget, record.deadline))
            continue
        detail = CommandInvocationDetail.model_validate(
            {
                "command-id": check.command_id,
                "document-name": drains.document,
                "instance-id": instance_id,
                "requested-date-time": (record.dispatched_at or now).isoformat(),
                "status": status,
            }
        )
        look = check if check.late_run else None
        done[instance_id] = complete_drain(detail, drains, look=look, run=run).status
        # A late run's look follows an end that was told, and a drain that began waiting for the
        # command's run was told its end (by its event, or by a check that counted it lost then).
        if not check.late_run and record.late_run_command != check.command_id:
            metrics.add_metric(name="DrainEventsLost", unit=MetricUnit.Count, value=1)
            logger.warning(
                "drain command ended without its status event",
                extra={"instance_id": instance_id, "command_id": check.command_id, "status": status},
            )
    if not running:
        return done
    delay = _next_check_in(check, drains, max(runs_end, default=None), now)
    if delay is not None:
        again = DrainCheck(command_id=check.command_id, instance_ids=tuple(running), checks=check.checks + 1)
        if check_later(replace(drains, check_seconds=delay), again):
            _renew_hooks(drains, waiting)
            return done | dict.fromkeys(running, "checked again later")
    for instance_id, status in running.items():
        record = drains.store.find(instance_id)
        if record is None or record.status.final:
            continue
        reason = (
            f"Run Command reported no end of the drain document after {check.checks} check(s), "
            f"{_seconds_since_sent(record, check, drains, now)} s after it was sent (still {status})"
        )
        finish_drain(drains, record, now, reason=reason)
        done[instance_id] = "logs_lost"
    return done


def _renew_hooks(drains: Drains, waiting: list[DrainRecord]) -> None:
    """Heartbeat the termination hook of each drain whose command has not ended, until the next
    check: Run Command may deliver the document late, and the hook's timeout runs from the event
    (or its last heartbeat), not from the run's start. A hook that ended since it was read
    refuses the heartbeat, which changes nothing (``heartbeat_hook``)."""
    for record in waiting:
        if record.hook_completed_at is None:
            heartbeat_hook(drains, record)


def _next_check_in(check: DrainCheck, drains: Drains, runs_end: datetime | None, now: datetime) -> int | None:
    """Seconds until the command's next check; None: give up on it (its drain's logs are lost)."""
    if check.checks < MAX_CHECKS:
        return drains.check_seconds
    if runs_end is None or now >= runs_end or check.checks >= CHECKS_LIMIT:
        return None
    # Run Command may still run the document: look again once it cannot.
    return seconds_until(runs_end, now)


def _seconds_since_sent(record: DrainRecord, check: DrainCheck, drains: Drains, now: datetime) -> int:
    if record.dispatched_at is None:
        return check.checks * drains.check_seconds
    return round((now - record.dispatched_at).total_seconds())
