"""A batch of the drain queue (up to 50 instances): one SendCommand for all of them.

Drains that need the same document parameters (logs first or stop first, a timeout and a wait
for requests in flight each within ten seconds of each other's) share a command; a batch that
mixes them needs more. The parameters come from each drain's record, not from its order: a Spot
warning that joins a drain queued by its termination hook switches the drain to the Spot budget.
Each drain is claimed before its command is sent, so a message delivered twice runs the document
once. When Run Command refuses an instance (already gone, not managed) the batch is split until
the refused instances are alone; a refused instance cannot be drained, so its drain ends there
with its logs lost (and its termination hook completed). Any other failure gives the claims back and
reports those messages as failed: the queue delivers them again, then to its dead-letter queue.
Not after the queue's visibility timeout (180 s: six times this function's timeout, as Lambda
asks), which would outlast a Spot instance's two minutes and a termination hook's five: an
order whose SendCommand failed is made visible again after ``redelivery_seconds`` (5 s, then
10 s). A malformed order changes nothing and keeps the visibility timeout. The queue also
carries, delayed, each command's check (``canaryfleet.logic.drain_check``): when one comes due,
the command's real status ends the drains its status event should have ended.

A drain whose instance waits in its termination hook records a heartbeat on the hook once its
command is sent, when the run would not fit in what is left of the hook's timeout
(``TerminationHookHeartbeatTimeout``, at least 300 s, from the event): its delivery and the
document's ``ExecutionTimeout`` (240 s) leave 30 s for the event, the request, the queue and
their retries, and a slow path took more. The heartbeat "extends the timeout by the length of
time defined using the PutLifecycleHook API call" (EC2 Auto Scaling API Reference,
RecordLifecycleActionHeartbeat), so the run fits from there. A drain sent in time needs none.
A run Run Command delivers late (it may, until the command expires) is kept in its hook by the
command's checks, which renew the hook while the command has not ended (``drain_check``); the
first is due at most ``HOOK_RENEW_SECONDS`` after the command, while the hook has 280 s or more.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import SqsModel
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from canaryfleet.errors import DrainDispatchFailed, InstancesNotReachable
from canaryfleet.logic.drain import (
    STALE_CLAIM_SECONDS,
    Drains,
    execution_seconds,
    finish_drain,
    heartbeat_hook,
    in_flight_seconds,
    send_drain_document,
    target_of,
)
from canaryfleet.logic.drain_check import check_command
from canaryfleet.models.drain import (
    COMPLETION_MARGIN_SECONDS,
    HOOK_TIMEOUT_SECONDS,
    RUN_COMMAND_DELIVERY_SECONDS,
    DrainCheck,
    DrainOrder,
    DrainRecord,
)
from canaryfleet.observability import logger, tracer
from canaryfleet.ports.drains import MAX_INSTANCES_PER_COMMAND, OrderRedelivery

# Drains whose own document timeouts differ by less than this share a command (the earliest's).
_TIMEOUT_BUCKET_SECONDS = 10

# A drain queue message is an order (an instance to drain) or, delayed, a check of a command.
_CHECK = re.compile(r'^\s*\{\s*"command_id"')


@dataclass
class Claimed:
    """A drain this dispatcher took: its record says how (the budget may have changed since the order)."""

    message_id: str
    record: DrainRecord


@dataclass
class BatchOutcome:
    """Per message of the batch: None if it is done with, else why it must come again."""

    failed: dict[str, str] = field(default_factory=dict)
    # Failed because SendCommand did (throttled, unavailable): worth trying again in seconds. A
    # malformed order is not: it goes to the dead-letter queue at the visibility timeout's pace.
    send_failed: set[str] = field(default_factory=set)
    commands: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    checked: dict[str, dict[str, str]] = field(default_factory=dict)  # per check message: per instance

    def check(self, record: SQSRecord) -> None:
        """Powertools' record handler: raise for the messages the queue must deliver again."""
        reason = self.failed.get(record.message_id)
        if reason is not None:
            raise DrainDispatchFailed(reason)


def _orders(
    batch: SqsModel, outcome: BatchOutcome, checks: list[tuple[str, DrainCheck]]
) -> list[tuple[str, DrainOrder]]:
    """The batch's orders, each instance once; its checks go to ``checks``."""
    orders: list[tuple[str, DrainOrder]] = []
    seen: set[str] = set()
    for message in batch.Records:
        body = message.body if isinstance(message.body, str) else ""
        try:
            if _CHECK.search(body):
                checks.append((message.messageId, DrainCheck.model_validate_json(body)))
                continue
            order = DrainOrder.model_validate_json(body)
        except ValidationError as exc:
            logger.error(
                "malformed drain order", extra={"message_id": message.messageId, "problem": str(exc)}
            )
            outcome.failed[message.messageId] = "malformed drain order"
            continue
        if order.instance_id in seen:
            outcome.duplicates.append(order.instance_id)
            continue
        seen.add(order.instance_id)
        orders.append((message.messageId, order))
    return orders


def redelivery_seconds(receive_count: int) -> int:
    """How long a failed order stays invisible: 5 s after its first delivery, doubling, at most 60 s."""
    seconds: int = 5 * 2 ** max(0, receive_count - 1)
    return min(60, seconds)


def _redeliver_soon(batch: SqsModel, outcome: BatchOutcome, redelivery: OrderRedelivery | None) -> None:
    """Orders whose SendCommand failed come back in seconds, not after the visibility timeout.

    Best effort: if SQS refuses, they come back after the visibility timeout, as before.
    """
    if redelivery is None or not outcome.send_failed:
        return
    failed = {
        message.receiptHandle: redelivery_seconds(int(message.attributes.ApproximateReceiveCount or 1))
        for message in batch.Records
        if message.messageId in outcome.send_failed
    }
    try:
        redelivery.redeliver_in(failed)
    except (BotoCoreError, ClientError) as exc:
        logger.warning("failed drain orders wait for the visibility timeout", extra={"error": str(exc)})


@tracer.capture_method
def dispatch_drains(batch: SqsModel, drains: Drains, redelivery: OrderRedelivery | None) -> BatchOutcome:
    """Send the drain document to the batch's instances; see the module docstring.

    ``redelivery``: the drain queue, where an order whose SendCommand failed is made visible
    again soon; None leaves it to the visibility timeout.
    """
    now = drains.clock.now()
    outcome = BatchOutcome()
    claimed: list[Claimed] = []
    stale = now - timedelta(seconds=STALE_CLAIM_SECONDS)
    checks: list[tuple[str, DrainCheck]] = []
    orders = _orders(batch, outcome, checks)
    for message_id, order in orders:
        record = drains.store.claim(order.application, order.instance_id, now, stale)
        if record is None:
            outcome.duplicates.append(order.instance_id)  # sent already (a redelivered message)
            continue
        claimed.append(Claimed(message_id, record))
    # A command's document times out at its earliest instance's end (``execution_seconds``): an
    # order whose Spot warning came long ago (its request retried) gets a command of its own
    # rather than cutting the run of the instances warned just now. Its stop waits for its
    # latest instance's requests in flight (``in_flight_seconds``): an instance with none left
    # is not held back by one deregistered just now.
    groups: dict[tuple[bool, int, int, int], list[Claimed]] = {}
    for item in claimed:
        budget = item.record.budget
        target = [target_of(item.record)]
        own = execution_seconds(budget, target, now) // _TIMEOUT_BUCKET_SECONDS
        wait = in_flight_seconds(budget, target, now) // _TIMEOUT_BUCKET_SECONDS
        groups.setdefault((budget.flush_first, budget.stop_seconds, own, wait), []).append(item)
    for members in groups.values():
        for start in range(0, len(members), MAX_INSTANCES_PER_COMMAND):
            _send(drains, members[start : start + MAX_INSTANCES_PER_COMMAND], now, outcome)
    # The checks after the orders: each reads every instance of its command, up to 50, and a
    # batch that ran out of time reading them must not have held back an instance's drain.
    for message_id, check in checks:
        try:
            outcome.checked[message_id] = check_command(check, drains)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("drain check failed; the queue delivers it again", extra={"error": str(exc)})
            outcome.failed[message_id] = f"drain check failed: {exc}"
    _redeliver_soon(batch, outcome, redelivery)
    logger.info(
        "drain batch dispatched",
        extra={
            "messages": len(batch.Records),
            "commands": len(outcome.commands),
            "lost": len(outcome.lost),
            "failed": len(outcome.failed),
            "duplicates": len(outcome.duplicates),
            "checks": len(outcome.checked),
        },
    )
    return outcome


# SendCommand's refusal by IAM (SSM's JSON protocol names it AccessDeniedException).
_DENIED = frozenset({"AccessDeniedException", "AccessDenied"})


def _send(drains: Drains, chunk: Sequence[Claimed], now: datetime, outcome: BatchOutcome) -> None:
    budget = chunk[0].record.budget
    triggers = sorted({t.value for c in chunk for t in c.record.triggers or (c.record.trigger,)})
    try:
        command_id = send_drain_document(
            drains, budget, [target_of(c.record) for c in chunk], "+".join(triggers), now
        )
    except InstancesNotReachable as exc:
        if len(chunk) == 1:
            _unreachable(drains, chunk[0], now, str(exc), outcome)
            return
        _send_halves(drains, chunk, now, outcome)
        return
    except ClientError as exc:
        # The role may send the document only to instances tagged canaryfleet:application, and
        # IAM refuses a call naming any instance it denies whole: one such instance must not hold
        # back the others' drains in the two minutes of a Spot notice. Alone, it fails as below.
        if len(chunk) > 1 and exc.response.get("Error", {}).get("Code") in _DENIED:
            logger.warning("SendCommand denied for a batch: sent again in halves", extra={"error": str(exc)})
            _send_halves(drains, chunk, now, outcome)
            return
        _send_failed(drains, chunk, exc, outcome)
        return
    except BotoCoreError as exc:
        _send_failed(drains, chunk, exc, outcome)
        return
    outcome.commands.append(command_id)
    for item in chunk:
        _restart_hook_timeout(drains, item.record, now)


def _send_halves(drains: Drains, chunk: Sequence[Claimed], now: datetime, outcome: BatchOutcome) -> None:
    middle = len(chunk) // 2
    _send(drains, chunk[:middle], now, outcome)
    _send(drains, chunk[middle:], now, outcome)


def _send_failed(
    drains: Drains, chunk: Sequence[Claimed], exc: ClientError | BotoCoreError, outcome: BatchOutcome
) -> None:
    """A SendCommand refused: each order of the chunk comes back (its claim given back)."""
    logger.warning("SendCommand failed; the queue delivers the batch again", extra={"error": str(exc)})
    for item in chunk:
        drains.store.release(item.record.application, item.record.instance_id)
        outcome.failed[item.message_id] = f"SendCommand failed: {exc}"
        outcome.send_failed.add(item.message_id)


def _needs_heartbeat(record: DrainRecord, now: datetime) -> bool:
    """Whether the run, sent now and delivered in time, may outlast the hook's timeout counted
    from the event (a late delivery is the checks' to cover)."""
    if record.notice_at is None:
        return True
    run = RUN_COMMAND_DELIVERY_SECONDS + record.budget.execution_seconds + COMPLETION_MARGIN_SECONDS
    return (now - record.notice_at).total_seconds() > HOOK_TIMEOUT_SECONDS - run


def _restart_hook_timeout(drains: Drains, record: DrainRecord, now: datetime) -> None:
    """Heartbeat the instance's termination hook, if it waits in one and the run needs the time
    (best effort: the command is sent, and a hook that ended or a refused call changes nothing)."""
    if record.hook_completed_at is None and _needs_heartbeat(record, now):
        heartbeat_hook(drains, record)


def _unreachable(drains: Drains, item: Claimed, now: datetime, reason: str, outcome: BatchOutcome) -> None:
    """Record the logs of an instance Run Command cannot reach as lost, and complete its hook.

    A refused call on the way (CompleteLifecycleAction throttled, DynamoDB) fails this order
    alone: the other instances of the batch are still sent their command, and this one comes
    back soon, its claim given back.
    """
    try:
        finish_drain(drains, item.record, now, reason=f"Run Command could not reach the instance: {reason}")
    except (ClientError, BotoCoreError) as exc:
        logger.warning(
            "unreachable instance's drain not ended; its order comes again",
            extra={"instance_id": item.record.instance_id, "error": str(exc)},
        )
        drains.store.release(item.record.application, item.record.instance_id)
        outcome.failed[item.message_id] = f"ending the drain failed: {exc}"
        outcome.send_failed.add(item.message_id)
        return
    outcome.lost.append(item.record.instance_id)
