"""What every drain step shares: sending the drain document, and ending a drain.

A drain ends exactly once (the record's final status is set under a condition), and its
termination hook, if the instance waits in one, is completed then, whatever the outcome:
an instance is never left to time out in its hook silently. A loss is recorded, counted
and alerted on.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from canaryfleet.models.drain import (
    MANIFEST_FILES_KEPT,
    MAX_CHECK_DELAY_SECONDS,
    RUN_ID_FORMAT,
    DrainBudget,
    DrainCheck,
    DrainManifest,
    DrainRecord,
    DrainStatus,
    run_prefix,
)
from canaryfleet.observability import emit_dimensioned, logger, metrics, tracer
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.drains import (
    Alerts,
    CommandStatuses,
    DrainChecks,
    DrainStore,
    LifecycleHooks,
    LogObjects,
    RunCommand,
)

LOGS_LOST = "drain.logs_lost"
# A claim whose command was never recorded is taken again after this long (its dispatcher, or
# the function retrying it, died between the two). No function runs this long (30 s timeout),
# so a live claim is never taken; the drain queue's visibility timeout is longer, so a dead
# dispatcher's order comes back to a claim already stale.
STALE_CLAIM_SECONDS = 60
# Time kept between the document's timeout and the instance's end, for the upload to finish.
_DEADLINE_MARGIN_SECONDS = 5
_MIN_EXECUTION_SECONDS = 30
# What a drain that stops first keeps for its flush after the stop, when it waits for requests
# in flight before the stop.
_FLUSH_AFTER_STOP_SECONDS = 60


@dataclass(frozen=True)
class DrainTarget:
    """One instance a command is sent to."""

    application: str
    instance_id: str
    log_prefix: str
    deadline: datetime | None
    # Until when the load balancer may still complete requests in flight to it (None: no wait).
    in_flight_until: datetime | None = None


@dataclass(frozen=True)
class Drains:
    """The platform's side of drains: where records, commands, logs and alerts go, and the time.

    Built by ``canaryfleet.wiring.drains`` (AWS) or from the unit tests' fakes.
    """

    store: DrainStore
    hooks: LifecycleHooks
    run_command: RunCommand
    logs: LogObjects
    notifier: Alerts
    document: str
    log_bucket: str
    clock: Clock
    # Where a command's check is due ``check_seconds`` after it is sent (the drain queue), and
    # where its status is read then; None: no check (a drain then waits for its event alone).
    checks: DrainChecks | None = None
    statuses: CommandStatuses | None = None
    check_seconds: int = 60


def execution_seconds(budget: DrainBudget, targets: Sequence[DrainTarget], now: datetime) -> int:
    """The document's timeout: its budget, cut to the earliest instance's end when that comes first."""
    seconds = budget.execution_seconds
    deadlines = [t.deadline for t in targets if t.deadline is not None]
    if deadlines:
        left = int((min(deadlines) - now).total_seconds()) - _DEADLINE_MARGIN_SECONDS
        seconds = min(seconds, left)
    return max(_MIN_EXECUTION_SECONDS, seconds)


def in_flight_seconds(budget: DrainBudget, targets: Sequence[DrainTarget], now: datetime) -> int:
    """How long the document waits from its start before it stops the application (0: not at all).

    Until the last of the command's instances has no request in flight the load balancer still
    completes (a Spot warning or a rebalance recommendation comes while the instance serves, and
    its drain deregistered it a moment ago; Elastic Load Balancing "stops sending requests to
    targets that are deregistering, but uses connection draining to ensure that in-flight traffic
    completes on the existing connections": ELB API Reference, DeregisterTargets). Cut so that
    the stop budget, and for a drain that stops first its flush, still fit in the document's
    timeout. Counted from the run's start, so a late delivery only waits longer, and a flush
    before the stop is part of the wait.
    """
    ends = [t.in_flight_until for t in targets if t.in_flight_until is not None]
    if not ends:
        return 0
    wanted = (max(ends) - now).total_seconds()
    room = execution_seconds(budget, targets, now) - budget.stop_seconds - _DEADLINE_MARGIN_SECONDS
    if not budget.flush_first:
        room -= _FLUSH_AFTER_STOP_SECONDS
    return max(0, min(math.ceil(wanted), room))


def next_run_id(now: datetime, after: str | None = None) -> str:
    """The run's `<time>` prefix; later than ``after`` (a retry never writes into its first run)."""
    run_id = now.strftime(RUN_ID_FORMAT)
    if after is not None and run_id <= after:
        previous = datetime.strptime(after, RUN_ID_FORMAT).replace(tzinfo=UTC)
        run_id = (previous + timedelta(seconds=1)).strftime(RUN_ID_FORMAT)
    return run_id


@tracer.capture_method
def send_drain_document(
    drains: Drains,
    budget: DrainBudget,
    targets: Sequence[DrainTarget],
    trigger: str,
    now: datetime,
    after_run: str | None = None,
) -> str:
    """One SendCommand for up to 50 instances; records the attempt on each drain.

    Raises InstancesNotReachable if Run Command refuses one of them.
    """
    run_id = next_run_id(now, after_run)
    parameters = {
        "Mode": ["drain"],
        "RunId": [run_id],
        "LogBucket": [drains.log_bucket],
        "StopBudgetSeconds": [str(budget.stop_seconds)],
        "FlushFirst": ["true" if budget.flush_first else "false"],
        "ExecutionTimeout": [str(execution_seconds(budget, targets, now))],
        "InFlightSeconds": [str(in_flight_seconds(budget, targets, now))],
    }
    comment = f"canaryfleet drain ({trigger}) of {len(targets)} instance(s), run {run_id}"
    command_id = drains.run_command.send(
        drains.document, [t.instance_id for t in targets], parameters, comment
    )
    for target in targets:
        manifest = run_prefix(target.log_prefix, target.instance_id, run_id) + "manifest.json"
        drains.store.record_command(target.application, target.instance_id, command_id, run_id, manifest, now)
    check_later(drains, DrainCheck(command_id=command_id, instance_ids=tuple(t.instance_id for t in targets)))
    metrics.add_metric(name="DrainCommandsSent", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="DrainInstancesCommanded", unit=MetricUnit.Count, value=len(targets))
    logger.info(
        "drain document sent",
        extra={"command_id": command_id, "instances": len(targets), "run_id": run_id, "trigger": trigger},
    )
    return command_id


def seconds_until(moment: datetime, now: datetime) -> int:
    """A check's delay to ``moment``: at least 1 s, at most MAX_CHECK_DELAY_SECONDS (a later moment
    is looked at again then: the termination hook is renewed at each look)."""
    return min(MAX_CHECK_DELAY_SECONDS, max(1, math.ceil((moment - now).total_seconds())))


def check_later(drains: Drains, check: DrainCheck) -> bool:
    """Have the command's real status read in ``drains.check_seconds``, in case its event is lost.

    Best effort: a check that cannot be queued leaves the drain to its event, as before.
    """
    if drains.checks is None:
        return False
    try:
        drains.checks.check_in(check, drains.check_seconds)
    except (ClientError, BotoCoreError) as exc:
        logger.warning("drain check not queued", extra={"command_id": check.command_id, "error": str(exc)})
        return False
    return True


@tracer.capture_method(capture_response=False)  # the record holds its hook's token
def finish_drain(
    drains: Drains,
    record: DrainRecord,
    now: datetime,
    reason: str | None = None,
    manifest: DrainManifest | None = None,
    manifest_body: bytes | None = None,
) -> DrainRecord | None:
    """Record the outcome once, complete the termination hook, count it; alert on a loss.

    ``manifest`` given: drained, with ``reason`` as a note when the run did not end cleanly
    (its document timed out or failed after its logs were in S3: ``canaryfleet drains`` shows
    it). Otherwise the logs are lost, for ``reason``. Returns the final record, or None if the
    drain had already ended (a duplicate event).
    """
    values: dict[str, Any] = {
        "completed_at": now.isoformat(),
        "duration_seconds": round(max(0.0, (now - record.started_at).total_seconds()), 3),
    }
    if manifest is not None:
        values.update(
            status=DrainStatus.DRAINED.value,
            outcome="drained",
            bytes=manifest.total_bytes,
            file_count=len(manifest.files),
            manifest_files=[f.model_dump() for f in manifest.files[:MANIFEST_FILES_KEPT]],
            manifest_sha256=hashlib.sha256(manifest_body or b"").hexdigest(),
        )
        if reason:
            values["reason"] = reason
    else:
        values.update(status=DrainStatus.LOGS_LOST.value, outcome="logs_lost", reason=reason or "unknown")
    hook_completed = False
    if record.hook is not None and record.hook_completed_at is None:
        # Completed first, and recorded with the outcome in one write. A duplicate event that
        # then writes nothing has only asked to complete an action that had ended (a no-op).
        hook_completed = _complete(drains, record)
        values["hook_completed_at"] = now.isoformat()
    final = drains.store.finish(record.application, record.instance_id, **values)
    if final is None:
        logger.info("drain had already ended", extra={"instance_id": record.instance_id})
        return None
    if final.hook is not None and final.hook_completed_at is None:  # the hook came meanwhile
        hook_completed = complete_hook(drains, final, now)
    emit_dimensioned("DrainsCompleted", MetricUnit.Count, 1, "outcome", str(final.outcome))
    metrics.add_metric(name="DrainDuration", unit=MetricUnit.Seconds, value=final.duration_seconds or 0.0)
    if final.outcome == "drained":
        metrics.add_metric(name="DrainBytes", unit=MetricUnit.Bytes, value=final.bytes or 0)
        logger.info(
            "drain ended: logs in S3",
            extra={"instance_id": final.instance_id, "bytes": final.bytes, "files": final.file_count},
        )
        return final
    metrics.add_metric(name="DrainLogsLost", unit=MetricUnit.Count, value=1)
    logger.error(
        "drain ended without the logs", extra={"instance_id": final.instance_id, "reason": final.reason}
    )
    _alert(
        drains,
        final.application,
        {
            "instance_id": final.instance_id,
            "application": final.application,
            "trigger": final.trigger.value,
            "side": final.side,
            "reason": final.reason,
            "attempts": final.attempts,
            "run_id": final.run_id,
            "log_prefix": run_prefix(final.log_prefix, final.instance_id, final.run_id)
            if final.run_id
            else None,
            "termination_hook": None
            if final.hook is None
            else ("completed" if hook_completed else "had ended"),
        },
    )
    return final


def _alert(drains: Drains, application: str, notice: dict[str, Any]) -> None:
    """Publish a loss notice, best effort: the drain's outcome is recorded by now, so a refused
    call must not fail the batch or event it came with (other instances' drains, retried for
    nothing). The error log above and the DrainLogsLost metric still say it."""
    try:
        drains.notifier.publish(kind=LOGS_LOST, application=application, message=notice)
    except (ClientError, BotoCoreError) as exc:
        logger.error(
            "logs-lost notice not published",
            extra={"instance_id": notice["instance_id"], "error": type(exc).__name__},
        )


def heartbeat_hook(drains: Drains, record: DrainRecord) -> None:
    """Restart the termination hook's timeout, best effort: a hook that ended, or a throttled or
    refused call, changes nothing for the command it is for (the hook keeps the time it had)."""
    if record.hook is None:
        return
    try:
        if drains.hooks.heartbeat(record.hook, record.instance_id):
            drains.store.record_heartbeat(record.application, record.instance_id)
    except (ClientError, BotoCoreError) as exc:
        logger.warning(
            "termination hook heartbeat failed", extra={"instance_id": record.instance_id, "error": str(exc)}
        )


def complete_hook(drains: Drains, record: DrainRecord, now: datetime) -> bool:
    """CONTINUE the instance's termination hook, if it waits in one that is not yet completed."""
    hook = record.hook
    if hook is None or record.hook_completed_at is not None:
        return False
    completed = _complete(drains, record)
    drains.store.mark_hook_completed(record.application, record.instance_id, now)
    return completed


def _complete(drains: Drains, record: DrainRecord) -> bool:
    hook = record.hook
    assert hook is not None
    completed = drains.hooks.complete(hook, record.instance_id)
    if completed:
        metrics.add_metric(name="LifecycleHooksCompleted", unit=MetricUnit.Count, value=1)
    else:
        logger.warning("termination hook had already ended", extra={"instance_id": record.instance_id})
    return completed


def target_of(record: DrainRecord) -> DrainTarget:
    return DrainTarget(
        record.application, record.instance_id, record.log_prefix, record.deadline, record.in_flight_until
    )
