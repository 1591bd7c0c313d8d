"""One rollout per application at a time; the others wait in arrival order.

start_rollout gives each upload its place in the queue when it arrives; the execution's
"Wait for turn" task later attaches its task token. Whoever finds the lock free hands it to
the head of the queue, but only once the head is waiting, so a later upload whose
execution happens to be quicker never jumps the queue. Handing over is one transaction, so
two rollouts never both hold the lock, and a release always wakes the next in line. The lock
keeps its new owner's task token until that wait is known to have ended, so a hand-over whose
SendTaskSuccess failed is made again by the next release, upload or recovery sweep.
"""

from __future__ import annotations

from datetime import datetime

from canaryfleet.models.rollout_record import LockRecord, QueuedRollout
from canaryfleet.models.tasks import QueueTask
from canaryfleet.observability import logger
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.rollouts import RolloutQueue
from canaryfleet.ports.workflow import Callbacks, ExecutionStatus

# Each pass either hands the lock over or finds it held; more passes only happen under races.
_MAX_PASSES = 10
# A queued upload whose execution never came to wait for its turn gives way after this long.
STALE_QUEUE_SECONDS = 300
# The lock of an execution that ended without releasing it is left this long to its recovery
# execution, which comes within seconds of the end's event (EventBridge retries a failed
# delivery for up to a day, so a recovery later than this finds the lock gone and says so).
RECOVERY_WITHIN_SECONDS = 300


def take_turn(
    application: str, store: RolloutQueue, callbacks: Callbacks, executions: ExecutionStatus, clock: Clock
) -> str | None:
    """If the lock is free, give it to the first queued rollout; returns that rollout's id."""
    for _ in range(_MAX_PASSES):
        lock = store.lock(application)
        if lock is not None:
            ended = executions.ended_at(lock.owner)
            if ended is None:
                deliver_turn(application, lock, store, callbacks)
                return None
            # The owner ended without releasing: stopped, timed out or failed where no Catch runs
            # (logic/recovery.py). Its recovery takes the lock over to roll it back, so the lock
            # is left to it a while; one whose recovery never came is freed after that.
            if (clock.now() - ended).total_seconds() < RECOVERY_WITHIN_SECONDS:
                return None
            logger.warning("releasing a stale lock", extra={"owner": lock.owner})
            store.release_lock(application, lock.owner)
            continue
        head = store.queue_head(application)
        if head is None:
            return None
        if head.token is None:
            if _stale(head.enqueued_at, clock.now()) and not executions.is_running(head.execution_arn):
                logger.warning(
                    "dropping a queued rollout that never started", extra={"rollout_id": head.rollout_id}
                )
                store.drop_from_queue(application, head.sk)
                continue
            return None  # the head's execution will take its turn when it starts waiting
        if not store.hand_lock_to(application, head):
            continue
        # The lock keeps the head's token until its wait is known to have ended: if this call
        # fails, or the function dies before it, the next call here (a retried release, the next
        # upload, the recovery sweep) ends the wait instead (deliver_turn).
        delivered = callbacks.succeed(head.token, {"turn": "acquired"})
        if delivered or executions.ended_at(head.execution_arn) is None:
            # A refused SendTaskSuccess to an execution still running is most likely a success
            # that took effect and whose answer was lost: botocore's retry is told TaskTimedOut
            # ("the task associated with the token has already been closed", botocore
            # stepfunctions), and "Wait for turn" has no timeout that could have closed it. The
            # turn is its either way, but the lock keeps the token until a delivery is known:
            # the next release, upload or sweep sends it again (deliver_turn), which ends a wait
            # still open and is refused by one that ended. Forgotten here, a wait still open
            # would hold the turn in "Wait for turn" for the execution's year.
            if delivered:
                store.turn_delivered(application, head.execution_arn)
            logger.info("lock handed over", extra={"rollout_id": head.rollout_id, "confirmed": delivered})
            return head.rollout_id
        # The head stopped waiting (its execution ended); take the lock back and go on.
        store.release_lock(application, head.execution_arn)
    return None


def deliver_turn(application: str, lock: LockRecord, store: RolloutQueue, callbacks: Callbacks) -> bool:
    """End the wait of a running lock owner whose hand-over may not have reached it (the lock
    still holds its token); True if there was one. Its wait ends once: a wait already ended is
    told TaskTimedOut, and the token is forgotten either way."""
    if lock.token is None:
        return False
    delivered = callbacks.succeed(lock.token, {"turn": "acquired"})
    store.turn_delivered(application, lock.owner)
    logger.warning(
        "turn given again to an owner whose hand-over was not confirmed",
        extra={"owner": lock.owner, "delivered_now": delivered},
    )
    return True


def queue_rollout(
    task: QueueTask,
    store: RolloutQueue,
    callbacks: Callbacks,
    executions: ExecutionStatus,
    clock: Clock,
) -> int:
    """Wait in the place taken at arrival, then try to start the head; returns the queue's length."""
    application, rollout_id, execution_arn, token = (
        task.ref.application,
        task.ref.rollout_id,
        task.execution_arn,
        task.token,
    )
    lock = store.lock(application)
    if lock is not None and lock.owner == execution_arn:
        # A retried wait (the first attempt took the turn, then its answer was lost): the turn
        # is this execution's already. Waiting in the queue again would leave an entry that
        # takes the lock back after the release.
        logger.info("turn already taken by this execution", extra={"rollout_id": rollout_id})
        callbacks.succeed(token, {"turn": "acquired"})
        store.turn_delivered(application, execution_arn)
        return store.queue_length(application)
    store.attach_queue_token(application, task.arrival, rollout_id, execution_arn, token)
    take_turn(application, store, callbacks, executions, clock)
    return store.queue_length(application)


def take_over(
    application: str,
    stopped: QueuedRollout,
    own_arn: str,
    store: RolloutQueue,
    callbacks: Callbacks,
    executions: ExecutionStatus,
    clock: Clock,
) -> bool:
    """A recovery execution takes the turn of the rollout whose execution ended outside its own
    paths (``stopped``: its place in the queue and its execution). True if the recovery now holds
    the lock; False if the stopped rollout did not hold it (it was still queued, its own path had
    released it, or another upload found its lock stale), and then its place goes and the next
    rollout in line gets the turn."""
    lock = store.lock(application)
    if lock is not None and lock.owner == own_arn:
        return True  # a retried task: the first attempt took it over
    owned = lock is not None and lock.owner == stopped.execution_arn
    if owned and store.transfer_lock(application, stopped.execution_arn, own_arn):
        logger.info("lock taken over", extra={"from": stopped.execution_arn, "to": own_arn})
        return True
    store.drop_from_queue(application, stopped.sk)
    take_turn(application, store, callbacks, executions, clock)
    return False


def _stale(enqueued_at: datetime | None, now: datetime) -> bool:
    if enqueued_at is None:
        return True
    return (now - enqueued_at).total_seconds() > STALE_QUEUE_SECONDS


def release_turn(
    application: str,
    execution_arn: str,
    store: RolloutQueue,
    callbacks: Callbacks,
    executions: ExecutionStatus,
    clock: Clock,
    own_place: str | None = None,
) -> str | None:
    """Release the lock this execution holds and start the next queued rollout.

    ``own_place``: the sort key of this rollout's place in the queue, which goes first. A
    rollout whose "Wait for turn" failed after its token was attached leaves its place, token
    and all: handed the turn while its execution still runs its failure path, it would hold
    the lock with a wait that had already ended, until the recovery sweep passed it on.
    """
    if own_place is not None:
        store.drop_from_queue(application, own_place)
    if not store.release_lock(application, execution_arn):
        logger.info("lock was not held by this execution", extra={"execution_arn": execution_arn})
    return take_turn(application, store, callbacks, executions, clock)
