"""Run Command says the drain document ended on an instance: check its logs, then let it go.

A drain is drained when its run's manifest is in S3 with every file it names there with its
size (and, where S3 keeps a full-object SHA-256, its checksum), and names no file the instance
could not snapshot, whatever status the run ended with: a Spot drain uploads its logs and
manifest before it stops the application, so a stop that outlasts the document's timeout ends
the run TimedOut with every log in S3. Without such a manifest the run is tried once more when
there is time before the instance goes (the termination hook's heartbeat is recorded first);
otherwise the drain ends with its logs lost. Either way the termination hook is completed. A run
that outlived its command (delivered late, it was told "Delivery Timed Out" at the command's
expiry while it still ran) is waited for first, until it must have ended.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from canaryfleet.errors import DrainNotReady, InstancesNotReachable, InvalidManifest
from canaryfleet.logic.drain import (
    STALE_CLAIM_SECONDS,
    Drains,
    finish_drain,
    heartbeat_hook,
    seconds_until,
    send_drain_document,
    target_of,
)
from canaryfleet.models.drain import (
    COMPLETION_MARGIN_SECONDS,
    HOOK_RENEW_SECONDS,
    HOOK_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    MAX_CHECK_DELAY_SECONDS,
    MIN_RETRY_SECONDS,
    CommandInvocationDetail,
    DrainCheck,
    DrainCompletion,
    DrainManifest,
    DrainRecord,
    DrainStatus,
    run_ends_by,
    run_prefix,
)
from canaryfleet.observability import logger, metrics, tracer
from canaryfleet.ports.drains import InvocationRun, LogObjects

# How long a delayed look may take to be taken off the drain queue once due: the minute the
# hook's renewal leaves for the queue's delivery (models/drain.py, HOOK_RENEW_SECONDS).
LOOK_DELIVERY_SECONDS = HOOK_TIMEOUT_SECONDS - HOOK_RENEW_SECONDS

# The statuses a run that may still be going can be told (the event's and GetCommandInvocation's
# Status is TimedOut; StatusDetails, and some readers, DeliveryTimedOut or ExecutionTimedOut).
_TIMED_OUT = frozenset({"TimedOut", "DeliveryTimedOut", "ExecutionTimedOut"})


def verify_manifest(logs: LogObjects, bucket: str, record: DrainRecord) -> tuple[DrainManifest, bytes]:
    """The run's manifest, checked against what is in S3; InvalidManifest says what is wrong."""
    if record.run_id is None or record.manifest_key is None:
        raise InvalidManifest("the drain has no run to check")
    where = f"s3://{bucket}/{record.manifest_key}"
    body = logs.read(bucket, record.manifest_key)
    if body is None:
        raise InvalidManifest(f"no manifest at {where}")
    try:
        manifest = DrainManifest.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError) as exc:  # the instance wrote it: anything
        raise InvalidManifest(f"manifest {where} is unreadable: {str(exc).splitlines()[0]}") from None
    if (manifest.instance_id, manifest.run_id) != (record.instance_id, record.run_id):
        raise InvalidManifest(
            f"manifest {where} is for {manifest.instance_id} run {manifest.run_id}, "
            f"not {record.instance_id} run {record.run_id}"
        )
    prefix = run_prefix(record.log_prefix, record.instance_id, record.run_id)
    for entry in manifest.files:
        stored = logs.describe(bucket, prefix + entry.name)
        if stored is None:
            raise InvalidManifest(f"{entry.name} is in the manifest but not at s3://{bucket}/{prefix}")
        if stored.size != entry.size:
            raise InvalidManifest(
                f"{entry.name} has {stored.size} bytes in S3, the manifest says {entry.size}"
            )
        if stored.sha256 is not None and stored.sha256 != entry.sha256:
            raise InvalidManifest(f"{entry.name}'s SHA-256 in S3 differs from the manifest's")
    return manifest, body


def _seconds_left(record: DrainRecord, now: datetime) -> float | None:
    return None if record.deadline is None else (record.deadline - now).total_seconds()


@tracer.capture_method
def complete_drain(
    detail: CommandInvocationDetail,
    drains: Drains,
    *,
    look: DrainCheck | None = None,
    run: InvocationRun | None = None,
) -> DrainCompletion:
    """Verify the drain's logs and end it, or try once more; see the module docstring. ``look``: the
    late run's look (``DrainCheck.late_run``) this is read for (None: its status event or a
    regular check); ``run``: the invocation as a check read it (None: read it if a late run needs it)."""
    now = drains.clock.now()
    result = DrainCompletion(status="ignored", instance_id=detail.instance_id, command_id=detail.command_id)
    record = _drain_of(detail, drains, result)
    if isinstance(record, DrainCompletion):
        return record
    ended = None if detail.status == "Success" else f"the drain document ended {detail.status}"
    try:
        manifest, body = verify_manifest(drains.logs, drains.log_bucket, record)
    except InvalidManifest as exc:
        waiting = _wait_for_a_late_run(detail, drains, record, now, look, run)
        if waiting is not None:
            return result.model_copy(update={"status": "waiting", "reason": waiting})
        problem = ended or exc.reason
    else:
        if not manifest.skipped:
            note = None if ended is None else f"{ended} after its logs and manifest were in S3"
            if note is not None:
                logger.warning("drain document ended after its logs were in S3", extra={"reason": note})
            finish_drain(drains, record, now, reason=note, manifest=manifest, manifest_body=body)
            return result.model_copy(update={"status": "drained", "reason": note})
        problem = _left_out(manifest, drains.log_bucket, record)

    left = _seconds_left(record, now)
    if record.attempts < MAX_ATTEMPTS and (left is None or left >= MIN_RETRY_SECONDS):
        retried = _retry(drains, record, now, problem)
        if retried in ("sent", "taken"):
            status = "retrying" if retried == "sent" else "duplicate"
            return result.model_copy(update={"status": status, "reason": problem})
        problem = f"{problem}; {retried}"
    elif record.attempts < MAX_ATTEMPTS:
        problem = f"{problem}; no time left to try again ({left or 0:.0f} s before the instance goes)"
    reason = f"{problem} (attempt {record.attempts} of {MAX_ATTEMPTS})"
    finish_drain(drains, record, now, reason=reason)
    return result.model_copy(update={"status": "logs_lost", "reason": reason})


def _wait_for_a_late_run(
    detail: CommandInvocationDetail,
    drains: Drains,
    record: DrainRecord,
    now: datetime,
    look: DrainCheck | None,
    run: InvocationRun | None,
) -> str | None:
    """Why the drain waits for a run that may have outlived its command, or None to end it now.

    A command expires its TimeoutSeconds and the document's execution timeout after it was sent,
    and "changes status to DeliveryTimedOut for all invocations that have the status InProgress,
    Pending, or Delayed" (botocore's ssm model, Command.ExpiresAfter): a run delivered late, which
    started by then, is told timed out while it may still run on the instance, up to the
    document's execution timeout, and upload its logs (the Systems Manager pages do not say that
    the expiry stops it). Without its manifest yet, such a drain is neither tried again (a second
    run beside the first) nor given up (the hook completed and the instance terminated in the
    middle of the flush): its hook is renewed and it is looked at again once the run must have
    ended, which ends the drain as its event would have.

    Whatever the timed-out status says (the model's words for Delivery and Execution Timed Out do
    not settle which an expired run gets), a run whose start is known is waited for until that
    start (never before the command was sent) and the budget's execution timeout, 10 s more for
    its status, never past ``run_ends_by``, the bound Run Command keeps on the command: a genuine
    execution timeout waits 10 s at most, and no clock can hold a drain longer. A run that never
    started ends the drain now, as before; one whose invocation cannot be read is waited for until
    that bound, rather than being run again or given up while it may still write. A look that
    cannot be queued is raised, nothing changed: the event (or the check) comes again. (One queued
    whose record then fails is raised too: the event's redelivery queues a second look.)

    One chain of looks serves a wait. Each look carries the time it was queued for, and the drain
    records the latest (``DrainRecord.late_run_look_at``; a later one only, for the drain's
    current attempt: ``record_late_run_look``), always after the look is queued, so a recorded
    look is on its way. A duplicate status event, or a regular check meeting the waiting drain,
    queues no look while a recorded one is due no later than the look it would queue (an earlier
    one it queues ends the wait sooner, if the run ends first). A look queues the next, due after
    its own time however far behind its host's clock reads, unless a later one is recorded (the
    queue delivered it twice, or another chain runs). A recorded look not taken within
    ``LOOK_DELIVERY_SECONDS`` of its time is taken as lost: an event or check after that queues
    another. Usually none comes: a look the drain queue gives up on (its dead-letter queue, whose
    alarm tells on-call) leaves the drain waiting until its hook times out.
    """
    if drains.checks is None:
        return None
    writes = _run_may_write(detail, drains, record, now, run)
    if writes is None:
        return None
    runs_until, waits = writes
    delay = seconds_until(runs_until, now)
    if look is not None and look.due is not None:
        # The next look comes after this one was due, whatever this host's clock says: the record
        # keeps only a later look, and a look whose own is not recorded would stop the chain.
        delay = max(delay, min(MAX_CHECK_DELAY_SECONDS, seconds_until(look.due, now) + 1))
    due = now + timedelta(seconds=delay)
    queued = _look_queued(record, detail.command_id, now)
    if look is None and queued is not None and queued <= due:
        return f"{waits}: a look at it is already due at {queued.isoformat()}"
    if look is not None and look.due is not None and queued is not None and queued > look.due:
        return f"{waits}: a later look at it is due at {queued.isoformat()}"
    drains.checks.check_in(
        DrainCheck(command_id=detail.command_id, instance_ids=(detail.instance_id,), late_run=True, due=due),
        delay,
    )
    drains.store.record_late_run_look(
        record.application, record.instance_id, detail.command_id, record.attempts, due
    )
    if record.hook_completed_at is None:
        heartbeat_hook(drains, record)
    reason = f"{waits}: looked at again in {delay} s"
    logger.warning("drain waits for a run that may have outlived its command", extra={"reason": reason})
    return reason


def _run_may_write(
    detail: CommandInvocationDetail,
    drains: Drains,
    record: DrainRecord,
    now: datetime,
    run: InvocationRun | None,
) -> tuple[datetime, str] | None:
    """Until when the timed-out run may still write its logs, and what the wait tells; None when it
    cannot (see ``_wait_for_a_late_run``)."""
    if detail.status not in _TIMED_OUT or drains.statuses is None or record.dispatched_at is None:
        return None
    bound = run_ends_by(record.dispatched_at, record.budget, record.deadline)
    if now >= bound:
        return None
    try:
        read = run if run is not None else drains.statuses.run(detail.command_id, detail.instance_id)
    except (ClientError, BotoCoreError) as exc:
        logger.warning("a timed-out run could not be read: waited for", extra={"error": str(exc)})
        started, runs_until, said = None, bound, "could not be read"
    else:
        if read is None or read.started_at is None:
            return None
        started = max(read.started_at, record.dispatched_at)
        budget = timedelta(seconds=record.budget.execution_seconds + COMPLETION_MARGIN_SECONDS)
        runs_until, said = min(started + budget, bound), read.status_details or detail.status
    if now >= runs_until:
        return None
    since = "" if started is None else f", started at {started.isoformat()},"
    return runs_until, (
        f"Run Command ended the drain document {detail.status} ({said}), but its run{since} may write "
        f"its logs until {runs_until.isoformat()}"
    )


def _look_queued(record: DrainRecord, command_id: str, now: datetime) -> datetime | None:
    """When the look recorded at the run of ``command_id`` is due, unless it is lost (not taken
    within LOOK_DELIVERY_SECONDS of its time)."""
    due = record.late_run_look_at
    if record.late_run_command != command_id or due is None:
        return None
    if now >= due + timedelta(seconds=LOOK_DELIVERY_SECONDS):
        return None
    return due


def _left_out(manifest: DrainManifest, bucket: str, record: DrainRecord) -> str:
    """What a manifest that lists files the instance could not snapshot tells on-call."""
    skipped = manifest.skipped
    names = ", ".join(f.name for f in skipped[:3]) + (
        f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    )
    where = run_prefix(record.log_prefix, record.instance_id, manifest.run_id)
    return (
        f"the instance could not snapshot {len(skipped)} file(s), {names} ({skipped[0].error[:200]}); "
        f"the manifest's {len(manifest.files)} other file(s) are in s3://{bucket}/{where}"
    )


def _drain_of(
    detail: CommandInvocationDetail, drains: Drains, result: DrainCompletion
) -> DrainRecord | DrainCompletion:
    """The drain the event ends, or what to answer when it ends none."""
    if not detail.final or detail.document_name != drains.document:
        return result.model_copy(update={"reason": f"{detail.document_name} {detail.status}"})
    record = drains.store.find(detail.instance_id)
    if record is None:
        # The hourly log sync runs the same document on instances that are not leaving.
        return result.model_copy(update={"reason": "the instance is not draining"})
    logger.append_keys(instance_id=record.instance_id, application=record.application)
    if record.status.final:
        return result.model_copy(update={"status": "duplicate", "reason": f"drain is {record.status.value}"})
    if detail.command_id != record.current_command:
        if record.status is DrainStatus.DISPATCHING:
            raise DrainNotReady(f"{detail.command_id} ended before the drain recorded it")
        what = "an earlier attempt" if detail.command_id in record.command_ids else "not the drain's command"
        return result.model_copy(update={"reason": what})
    return record


def _retry(drains: Drains, record: DrainRecord, now: datetime, problem: str) -> str:
    """Send the document once more: "sent", "taken" (a duplicate event got there first), or why not.

    The claim is given back on any failure before the command is recorded, so the event's
    redelivery retries; a function that dies in between leaves a claim that goes stale after
    STALE_CLAIM_SECONDS, and the redelivery (Lambda retries an event after about one and two
    minutes) takes it again.
    """
    stale = now - timedelta(seconds=STALE_CLAIM_SECONDS)
    if not drains.store.claim_retry(record.application, record.instance_id, record.attempts, now, stale):
        return "taken"
    logger.warning("drain failed; trying once more", extra={"problem": problem, "attempts": record.attempts})
    try:
        heartbeat_hook(drains, record)
        send_drain_document(
            drains, record.budget, [target_of(record)], f"{record.trigger.value} retry", now, record.run_id
        )
    except InstancesNotReachable as exc:
        return f"the retry could not reach the instance: {exc}"
    except BaseException:
        drains.store.unclaim_retry(record.application, record.instance_id)  # the event comes again
        raise
    metrics.add_metric(name="DrainRetries", unit=MetricUnit.Count, value=1)
    return "sent"
