"""A rollout whose execution ended where none of its own paths ran is rolled back all the same.

Every Task of the rollout state machine catches what it raises: once the rollout holds its turn,
the rollback path puts the traffic back, restores the last good revision, records why and
releases the lock. Three ends run none of it (Step Functions Developer Guide, "Handling errors in
Step Functions workflows"; API Reference, StopExecution):

- ``ABORTED``: someone stopped the execution (StopExecution, the console's Stop button);
- ``TIMED_OUT``: the execution outlived its time;
- ``FAILED`` with an error no Catch takes (``States.Runtime``, ``States.DataLimitExceeded``:
  ``States.ALL`` matches neither).

Each would leave the canary's share of the traffic on the build, the application's lock held (its
next rollouts queued behind it) and the record saying the rollout runs. Step Functions reports
each end to EventBridge ("Step Functions Execution Status Change"): :func:`recover` starts a
recovery execution of the same state machine with the ended one's input. Its first task
(:func:`take_over_stopped`) takes the lock over, then the recovery runs the rollback path any
other failure runs.

EventBridge delivers those events best effort. :func:`sweep` runs every two minutes and
starts the recovery a lost event would have started, for every lock whose owner ended outside its
paths; it also passes on a lock that a rollout ended its own way could not release.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from canaryfleet.errors import InvalidEvent
from canaryfleet.logic import canary, outcome, queue
from canaryfleet.logic.colors import serving_color
from canaryfleet.models.events import parse_event
from canaryfleet.models.rollout import MAX_RECOVERED_CAUSE, ExecutionInput, Recovery, Stage
from canaryfleet.models.rollout_record import QueuedRollout, RolloutRecord, queue_sk
from canaryfleet.models.tasks import ExecutionStatusChange, TakeOverTask
from canaryfleet.observability import logger, metrics
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.fleet import TrafficWeights
from canaryfleet.ports.rollouts import RolloutStore
from canaryfleet.ports.workflow import (
    Callbacks,
    EndedApprovals,
    EndedExecution,
    ExecutionStatus,
    RecoveryExecutions,
)

# The errors of the state machine's own Fail states: their paths already recorded the outcome (or
# said why they could not: ReleaseNotRecorded, a release serving all traffic) and released the lock.
OWN_ENDS = frozenset({"RolledBack", "Rejected", "RolloutFailed", "ReleaseNotRecorded"})
# The error each end hands the rollback path (logic/outcome.py says how each reads).
RECOVERED_ERRORS = {
    "ABORTED": "ExecutionAborted",
    "TIMED_OUT": "ExecutionTimedOut",
    "FAILED": "ExecutionFailed",
}


def recover(ended: ExecutionStatusChange, executions: RecoveryExecutions) -> str:
    """Start the recovery of a rollout whose execution ended outside its own paths (once, however
    often the event comes); says what was done."""
    if ended.status not in RECOVERED_ERRORS:
        return "ignored"  # RUNNING, SUCCEEDED, PENDING_REDRIVE
    # The event carries no error or cause (and no input when too large): the execution does.
    described = executions.describe(ended.execution_arn)
    if described is None:
        # An event about an execution Step Functions does not know: nothing to recover.
        logger.warning("ended execution not found", extra={"execution_arn": ended.execution_arn})
        return "no such execution"
    if _ended_its_own_way(ended.status, described.error):
        return "ended by its own path"
    raw_input = ended.input if ended.input is not None else described.input
    return _start_recovery(ended.execution_arn, ended.status, raw_input, described, executions, swept=False)


def _ended_its_own_way(status: str, error: str | None) -> bool:
    """The end came through one of the state machine's own paths (released, or one of its Fail
    states), which already recorded the outcome and released the lock."""
    return status not in RECOVERED_ERRORS or (status == "FAILED" and error in OWN_ENDS)


def _start_recovery(
    execution_arn: str,
    status: str,
    raw_input: str | None,
    described: EndedExecution,
    executions: RecoveryExecutions,
    swept: bool,
) -> str:
    """The recovery of ``execution_arn``, which ended outside its paths with ``status``; ``swept``:
    found by :func:`sweep`, not by an event (a recovery that ended is then not counted again at
    every sweep)."""
    error, cause = described.error, described.cause
    try:
        stopped = parse_event(ExecutionInput, json.loads(raw_input or "null"))
    except (ValueError, InvalidEvent) as exc:
        # Not a rollout's input: an execution started by hand. Nothing of canaryfleet's to recover.
        logger.warning("ended execution has no rollout input", extra={"problem": type(exc).__name__})
        return "not a rollout"
    if stopped.recovery is not None:
        # A recovery that itself ended outside its paths is not recovered again (no loop); the
        # next upload frees the lock, and this error says what is left to put back.
        if not swept:
            logger.error(
                "a recovery execution ended before its rollback finished",
                extra={"rollout_id": stopped.ref.rollout_id, "status": status, "error": error},
            )
            metrics.add_metric(name="RolloutRecoveriesFailed", unit=MetricUnit.Count, value=1)
        return "recovery ended"
    recovery = Recovery(
        stopped_execution=execution_arn,
        status=status,  # one of RECOVERED_ERRORS' keys, checked by the caller
        error=(error or None) and error[:256],
        cause=(cause or None) and cause[:MAX_RECOVERED_CAUSE],
    )
    arn, started = executions.start_recovery(stopped.model_copy(update={"recovery": recovery}))
    logger.warning(
        "rollout execution ended outside its paths: recovery started",
        extra={"rollout_id": stopped.ref.rollout_id, "status": status, "recovery": arn, "started": started},
    )
    if started:
        metrics.add_metric(name="RolloutsRecovered", unit=MetricUnit.Count, value=1)
    return "recovery started" if started else "recovery already started"


def sweep(
    applications: Iterable[str],
    store: RolloutStore,
    recoveries: RecoveryExecutions,
    callbacks: Callbacks,
    executions: ExecutionStatus,
    clock: Clock,
) -> dict[str, str]:
    """Put right every application's lock whose owner execution has ended; what was done, by
    application (every two minutes: ``RecoverySweep`` in template.yaml).

    Two ends leave a lock held by an execution that no longer runs:

    - Step Functions' status event never came (EventBridge delivers it best effort), so the
      rollout stopped outside its paths got no recovery: it gets one now, with the name the
      event would have given it, so an event that was only late starts no second one;
    - the rollout ended its own way (released, rolled back, rejected) but could not release its
      lock (the release failed past its retries): its turn is passed on now, as its own release
      would have done, and the next rollout in line starts.

    A recovery that itself ended outside its paths is left (logged when its own end came): its
    rollout is not put back, and the next upload frees the lock as any stale lock.

    One application's refused call (a throttled read) does not keep the others from being put
    right; it is raised once all were tried, so the invocation is retried and, failing for good,
    kept in the dead-letter queue whose alarm tells on-call.
    """
    done: dict[str, str] = {}
    failed: list[Exception] = []
    for application in applications:
        try:
            result = _sweep_one(application, store, recoveries, callbacks, executions, clock)
        except (BotoCoreError, ClientError) as exc:
            logger.exception("lock not swept", extra={"application": application})
            done[application] = f"failed: {type(exc).__name__}"
            failed.append(exc)
            continue
        if result is not None:
            done[application] = result
    if failed:
        raise failed[0]
    return done


def _sweep_one(
    application: str,
    store: RolloutStore,
    recoveries: RecoveryExecutions,
    callbacks: Callbacks,
    executions: ExecutionStatus,
    clock: Clock,
) -> str | None:
    """What was done for one application's lock; None when it is free or its owner runs."""
    lock = store.lock(application)
    if lock is None:
        return None
    if executions.ended_at(lock.owner) is None:
        # A running owner's hand-over that was never confirmed (its SendTaskSuccess failed or
        # the function died after the hand-over): it waits for its turn with no timeout.
        return "turn given again" if queue.deliver_turn(application, lock, store, callbacks) else None
    described = recoveries.describe(lock.owner)
    status = described.status if described is not None else "unknown"
    if described is not None and not _ended_its_own_way(status, described.error):
        # What the lost event would have started.
        done = _start_recovery(lock.owner, status, described.input, described, recoveries, swept=True)
    else:  # ended its own way, or unknown to Step Functions: the turn is passed on
        queue.release_turn(application, lock.owner, store, callbacks, executions, clock)
        done = "turn passed on"
    said = {"application": application, "owner": lock.owner, "status": status}
    logger.warning("lock held by an ended execution", extra={**said, "done": done})
    return done


def caught_error(recovery: Recovery) -> dict[str, str]:
    """The error the rollback path records, as a Catch would have handed it over: the end's own
    reason, then the error and cause it came with (StopExecution takes both)."""
    error = RECOVERED_ERRORS[recovery.status]
    said = ": ".join(part for part in (recovery.error, recovery.cause) if part)
    category = outcome.category_of(error)
    return {"Error": error, "Cause": f"{category}: {said}" if said else category}


def take_over_stopped(
    task: TakeOverTask,
    store: RolloutStore,
    callbacks: Callbacks,
    executions: ExecutionStatus,
    clock: Clock,
    traffic: TrafficWeights,
    ended_approvals: EndedApprovals | None = None,
) -> dict[str, Any]:
    """The recovery execution's first task.

    ``held``: the recovery holds the stopped rollout's turn and runs the rollback path with
    ``app`` (blue/green: the colors the stopped rollout drove; stopped before it chose them, the
    color the listener rule serves, read from ``traffic``) and ``error``. Otherwise the turn
    has gone to the next rollout in line, and ``rollback`` is what the record now says (the
    stopped rollout never held its turn, so nothing of the fleet was touched), or None when the
    rollout had already ended its own way (released, or rolled back with the fleet put back, then
    stopped before its execution ended). One stopped in the middle of its rollback is held and
    rolled back again, keeping its first reason. The wait it was stopped in is forgotten, and an
    approval it waited for is settled at once (``ended_approvals``).

    ``scale_down_old_in``: a blue/green rollout stopped after its release, while it kept the old
    color warm (its lock already passed on, up to a day: the plan's scale-down delay), would
    leave that color's whole fleet up, unused and unsaid, until the next release. The recovery
    waits out what is left of the delay (these seconds) and takes it to zero, with ``app``'s
    colors as the release drove them; None when there is none to scale down."""
    ref, recovery = task.ref, task.recovery
    application, error = ref.application, caught_error(recovery)
    place = QueuedRollout(
        sk=queue_sk(task.arrival, ref.rollout_id),
        rollout_id=ref.rollout_id,
        execution_arn=recovery.stopped_execution,
    )
    held = queue.take_over(application, place, task.execution_arn, store, callbacks, executions, clock)
    record = store.get(application, ref.rollout_id)
    if held and record is not None:
        because = outcome.explain(error["Error"], error["Cause"])[2]  # what the rollback will record
        _forget_stopped_wait(application, ref.rollout_id, record, because, store, ended_approvals)
    app = task.app
    result: dict[str, Any] = {
        "held": False,
        "app": app.model_dump(mode="json"),
        "error": error,
        "rollback": None,
        "scale_down_old_in": None,
    }
    # Stopped after "Record rollback" but before its restores were done and said: the rollback
    # runs again (its first reason is kept) so the fleet is put back.
    rolling_back = (
        record is not None
        and record.outcome in ("rolled_back", "rejected")
        and record.current_stage != Stage.ROLLED_BACK
    )
    if record is not None and record.outcome is not None and not (held and rolling_back):
        if held:  # it ended its own way: only its turn is left to pass on
            queue.release_turn(application, task.execution_arn, store, callbacks, executions, clock)
        logger.info("stopped rollout had already ended", extra={"outcome": record.outcome})
        released_at = record.stage_released_at
        if (
            record.outcome == "released"
            and app.strategy == "blue_green"
            and record.live_color
            and released_at
        ):
            left = released_at + timedelta(seconds=app.scale_down_delay_seconds) - clock.now()
            result["scale_down_old_in"] = max(0, math.ceil(left.total_seconds()))
            result["app"] = app.for_release(record.live_color).model_dump(mode="json")
        return result
    if held:
        if app.strategy == "blue_green":
            # None recorded: it stopped before choosing, and the color that serves still does.
            # By the listener rule's weights, as the color task chooses (``traffic``): a release
            # whose record failed left the stored color behind them, and a rollback to it would
            # send every request to a color gone to zero.
            chosen = record.live_color if record else None
            stored = store.live_color(application)
            app = app.for_release(chosen or serving_color(app, traffic, stored))
        return {**result, "held": True, "app": app.model_dump(mode="json")}
    if record is not None:
        recorded = outcome.record_rollback(ref, error["Error"], error["Cause"], store, clock)
        # "Say the queued rollout was stopped" reads these two; nothing was restored.
        result["rollback"] = {"outcome": recorded["outcome"], "reason": recorded["reason"]}
    return result


def _forget_stopped_wait(
    application: str,
    rollout_id: str,
    record: RolloutRecord,
    because: str,
    store: RolloutStore,
    ended_approvals: EndedApprovals | None,
) -> None:
    """The stopped execution's wait can never end now: forget its token, so a late deployment
    event, alarm or click is told the rollout no longer waits instead of calling a task that is
    gone; an approval it waited for is settled now, its Slack buttons replaced, not at its expiry,
    and says ``because`` (the stop's error and cause), written with the token's end."""
    token = record.wait_token
    if not token:
        return
    store.clear_wait(application, rollout_id, token, stopped_because=because)
    if record.wait_kind == "approval" and record.approval_id:
        canary.settle_soon(record.approval_id, ended_approvals, "a stop outside canaryfleet")
