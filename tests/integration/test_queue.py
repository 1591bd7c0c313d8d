"""One rollout per application at a time, the others in arrival order (logic.queue on moto)."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.workflow import StepFunctionsExecutions
from canaryfleet.logic.queue import RECOVERY_WITHIN_SECONDS, queue_rollout, release_turn, take_turn
from canaryfleet.models.rollout import RolloutRef
from canaryfleet.models.rollout_record import queue_sk
from canaryfleet.models.tasks import QueueTask
from canaryfleet.ports.clock import Clock, FixedClock, SystemClock
from canaryfleet.ports.workflow import ExecutionStatus

from canaryfleet_local.cloud import LocalCloud
from tests.integration.helpers import RecordingCallbacks

EXECUTIONS, CLOCK = StepFunctionsExecutions(), SystemClock()


def wait_in_queue(
    application: str,
    rollout_id: str,
    arrival: str,
    execution_arn: str,
    token: str,
    store: DynamoRolloutStore,
    callbacks: RecordingCallbacks,
    executions: ExecutionStatus,
    clock: Clock,
) -> int:
    """The queue task of one rollout, as the state machine's "Wait for turn" sends it."""
    ref = RolloutRef(application=application, rollout_id=rollout_id, version="1.0.0")
    task = QueueTask(token=token, ref=ref, arrival=arrival, execution_arn=execution_arn)
    return queue_rollout(task, store, callbacks, executions, clock)


@pytest.fixture
def store(cloud: LocalCloud) -> DynamoRolloutStore:
    return DynamoRolloutStore(cloud.output("StateTableName"))


def queue(
    store: DynamoRolloutStore,
    callbacks: RecordingCallbacks,
    application: str,
    rollout_id: str,
    received: str,
    execution: str,
) -> None:
    """Queues the rollout through the logic, with the callback token ``token-<rollout id>``."""
    token = f"token-{rollout_id}"
    wait_in_queue(application, rollout_id, received, execution, token, store, callbacks, EXECUTIONS, CLOCK)


def running_execution(cloud: LocalCloud, name: str) -> str:
    """A running execution standing for a rollout (a state machine that only waits)."""
    sfn = cloud.client("stepfunctions")
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    arn = (
        machines.get("waiter")
        or sfn.create_state_machine(
            name="waiter",
            definition=json.dumps(
                {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 120, "End": True}}}
            ),
            roleArn="arn:aws:iam::123456789012:role/waiter",
        )["stateMachineArn"]
    )
    return str(sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"])


def queued_out_of_order(
    cloud: LocalCloud, store: DynamoRolloutStore, callbacks: RecordingCallbacks
) -> tuple[str, str]:
    """Queues three rollouts of payments-api, the third before the second; returns first's and second's."""
    executions = {name: running_execution(cloud, name) for name in ("first", "second", "third")}
    for name, received in (("first", "1#a"), ("third", "3#c"), ("second", "2#b")):
        queue(store, callbacks, "payments-api", name, received, executions[name])
    return executions["first"], executions["second"]


def test_rollouts_start_one_at_a_time_in_arrival_order(cloud: LocalCloud, store: DynamoRolloutStore) -> None:
    callbacks = RecordingCallbacks()

    queued_out_of_order(cloud, store, callbacks)

    assert callbacks.succeeded == ["token-first"]
    assert store.lock("payments-api").rollout_id == "first"


def test_a_release_starts_the_next_in_arrival_order(cloud: LocalCloud, store: DynamoRolloutStore) -> None:
    callbacks = RecordingCallbacks()
    first, second = queued_out_of_order(cloud, store, callbacks)

    release_turn("payments-api", first, store, callbacks, EXECUTIONS, CLOCK)

    assert callbacks.succeeded == ["token-first", "token-second"]
    assert store.lock("payments-api").owner == second


def test_other_applications_do_not_wait(cloud: LocalCloud, store: DynamoRolloutStore) -> None:
    callbacks = RecordingCallbacks()
    queue(store, callbacks, "payments-api", "p1", "1#a", running_execution(cloud, "p1"))

    queue(store, callbacks, "ledger", "l1", "2#a", running_execution(cloud, "l1"))

    assert callbacks.succeeded == ["token-p1", "token-l1"]


def test_a_lock_left_by_an_ended_execution_waits_for_its_recovery_then_is_freed(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    callbacks = RecordingCallbacks()
    dead = running_execution(cloud, "dead")
    queue(store, RecordingCallbacks(), "payments-api", "dead", "1#a", dead)
    cloud.client("stepfunctions").stop_execution(executionArn=dead)
    assert cloud.wait_for_execution(dead, timeout=60).status == "ABORTED"
    following = running_execution(cloud, "next")

    # Its recovery execution takes the lock over to roll it back: nobody else takes it meanwhile
    queue(store, callbacks, "payments-api", "next", "2#b", following)

    assert callbacks.succeeded == []
    assert store.lock("payments-api").owner == dead

    # A recovery that never came (its event lost): the lock is freed for the next in line
    overdue = FixedClock(datetime.now(UTC) + timedelta(seconds=RECOVERY_WITHIN_SECONDS + 1))
    token = "token-next"
    wait_in_queue("payments-api", "next", "2#b", following, token, store, callbacks, EXECUTIONS, overdue)

    assert callbacks.succeeded == ["token-next"]


def test_a_head_that_stopped_waiting_is_skipped(cloud: LocalCloud, store: DynamoRolloutStore) -> None:
    holder = running_execution(cloud, "holder")
    queue(store, RecordingCallbacks(), "payments-api", "holder", "1#a", holder)
    callbacks = RecordingCallbacks(closed={"token-gone"})
    gone = running_execution(cloud, "gone")
    queue(store, callbacks, "payments-api", "gone", "2#b", gone)
    queue(store, callbacks, "payments-api", "next", "3#c", running_execution(cloud, "next"))
    cloud.client("stepfunctions").stop_execution(executionArn=gone)  # its wait ended with it

    release_turn("payments-api", holder, store, callbacks, EXECUTIONS, CLOCK)

    assert callbacks.succeeded == ["token-next"]
    assert store.lock("payments-api").rollout_id == "next"
    assert store.queue_length("payments-api") == 0


def test_a_retried_wait_of_the_rollout_holding_the_lock_goes_on_and_leaves_no_entry(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    callbacks = RecordingCallbacks()
    first = running_execution(cloud, "first")
    wait_in_queue("payments-api", "first", "1#a", first, "token-1", store, callbacks, EXECUTIONS, CLOCK)

    # The first attempt's answer was lost (a timeout); Step Functions retries with a new token.
    wait_in_queue("payments-api", "first", "1#a", first, "token-2", store, callbacks, EXECUTIONS, CLOCK)
    release_turn("payments-api", first, store, callbacks, EXECUTIONS, CLOCK)

    assert callbacks.succeeded == ["token-1", "token-2"]
    assert store.lock("payments-api") is None
    assert store.queue_length("payments-api") == 0


class _FailsOnce(RecordingCallbacks):
    """SendTaskSuccess for ``token`` fails once, then is taken: throttled past botocore's
    retries (it raises), or refused (it answers False, as for InvalidToken)."""

    def __init__(self, token: str, refused: bool = False) -> None:
        super().__init__()
        self.once, self.refused = {token}, refused

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        if token in self.once:
            self.once.discard(token)
            if self.refused:
                return False
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "SendTaskSuccess"
            )
        return super().succeed(token, output)


def test_a_hand_over_whose_wait_was_not_ended_is_made_again_by_the_next_release(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    # Given "second" is handed the turn, and its SendTaskSuccess fails (the release fails too)
    first, second = (running_execution(cloud, name) for name in ("first", "second"))
    callbacks = _FailsOnce("token-second")
    queue(store, callbacks, "payments-api", "first", "1#a", first)
    queue(store, callbacks, "payments-api", "second", "2#b", second)
    with pytest.raises(ClientError):
        release_turn("payments-api", first, store, callbacks, EXECUTIONS, CLOCK)
    lock = store.lock("payments-api")
    assert lock is not None and (lock.owner, lock.token) == (second, "token-second")

    # When the release is retried (Step Functions' Retry of "Release rollout lock"), then the
    # turn reaches "second", whose "Wait for turn" has no timeout: it would wait a year
    release_turn("payments-api", first, store, callbacks, EXECUTIONS, CLOCK)

    assert callbacks.succeeded == ["token-first", "token-second"]
    lock = store.lock("payments-api")
    assert lock is not None and (lock.owner, lock.token) == (second, None)
    # and a later call gives it no second time
    queue(store, callbacks, "payments-api", "third", "3#c", running_execution(cloud, "third"))
    assert callbacks.succeeded == ["token-first", "token-second"]


def test_a_hand_over_that_took_effect_though_its_answer_was_lost_is_not_taken_back(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    # Given "second"'s wait was ended, but the answer lost: botocore's retry is told TaskTimedOut
    first, second, third = (running_execution(cloud, name) for name in ("first", "second", "third"))
    callbacks = RecordingCallbacks()
    for name, arrival, execution in (
        ("first", "1#a", first),
        ("second", "2#b", second),
        ("third", "3#c", third),
    ):
        queue(store, callbacks, "payments-api", name, arrival, execution)
    callbacks.closed.add("token-second")

    release_turn("payments-api", first, store, callbacks, EXECUTIONS, CLOCK)

    # Then "second", still running, keeps the turn, and "third" waits: not two rollouts at once.
    # The lock keeps the token until a delivery is known, and the next one, refused as closed,
    # forgets it
    lock = store.lock("payments-api")
    assert lock is not None and (lock.owner, lock.token) == (second, "token-second")
    assert callbacks.succeeded == ["token-first"]
    assert store.queue_length("payments-api") == 1
    take_turn("payments-api", store, callbacks, EXECUTIONS, CLOCK)  # the sweep
    assert store.lock("payments-api").token is None and callbacks.succeeded == ["token-first"]


def test_a_hand_over_refused_while_its_wait_was_still_open_is_made_again_by_the_sweep(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    # Given "second"'s SendTaskSuccess refused although its wait is still open (its execution
    # runs, waiting in "Wait for turn", which has no timeout)
    first, second = (running_execution(cloud, name) for name in ("first", "second"))
    callbacks = _FailsOnce("token-second", refused=True)
    queue(store, callbacks, "payments-api", "first", "1#a", first)
    queue(store, callbacks, "payments-api", "second", "2#b", second)

    release_turn("payments-api", first, store, callbacks, EXECUTIONS, CLOCK)
    assert callbacks.succeeded == ["token-first"]

    # When the sweep (or the next release or upload) comes, the wait is ended, once
    take_turn("payments-api", store, callbacks, EXECUTIONS, CLOCK)
    take_turn("payments-api", store, callbacks, EXECUTIONS, CLOCK)

    assert callbacks.succeeded == ["token-first", "token-second"]
    lock = store.lock("payments-api")
    assert lock is not None and (lock.owner, lock.token) == (second, None)


def test_a_head_that_waits_again_with_a_new_token_is_not_handed_the_old_one(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    execution = running_execution(cloud, "retried")
    store.enqueue("payments-api", "1#a", "retried", execution)
    store.attach_queue_token("payments-api", "1#a", "retried", execution, "token-old")
    read = store.queue_head("payments-api")
    store.attach_queue_token("payments-api", "1#a", "retried", execution, "token-new")  # a retried wait

    assert read is not None and not store.hand_lock_to("payments-api", read)
    head = store.queue_head("payments-api")
    assert head is not None and store.hand_lock_to("payments-api", head)
    assert store.lock("payments-api").token == "token-new"


def test_a_place_lost_to_a_conflicting_transaction_is_an_error_to_retry_not_a_place_taken(
    store: DynamoRolloutStore,
) -> None:
    # DynamoDB cancels a transaction that conflicts with another on the same items
    # (CancellationReasons: TransactionConflict); only a failed condition means the place is taken
    cancelled = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
        },
        "TransactWriteItems",
    )
    with (
        mock.patch.object(store._db, "transact_write_items", side_effect=cancelled),
        pytest.raises(ClientError),
    ):
        store.enqueue(
            "payments-api", "1#a", "first", "arn:aws:states:us-east-1:123456789012:execution:r:first"
        )

    assert store.queue_length("payments-api") == 0


def test_the_queue_length_counts_every_page_dynamodb_answers(store: DynamoRolloutStore) -> None:
    # DynamoDB counts at most 1 MB of items a page: a long queue comes back in pages
    key = {"pk": {"S": "APP#payments-api"}, "sk": {"S": "QUEUE#5#e"}}
    pages = [{"Count": 5, "ScannedCount": 5, "LastEvaluatedKey": key}, {"Count": 3, "ScannedCount": 3}]
    with mock.patch.object(store._db, "query", side_effect=pages) as query:
        assert store.queue_length("payments-api") == 8

    assert query.call_args_list[1].kwargs["ExclusiveStartKey"] == key


def test_a_rollout_whose_wait_for_its_turn_failed_leaves_its_place_and_the_next_one_gets_the_turn(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    # Given "first" at the head of the queue with the token of a wait that then failed (its queue
    # task attached it, then failed after every retry), its execution still on its failure path,
    # the lock free, and "second" waiting behind it
    first, second = (running_execution(cloud, name) for name in ("first", "second"))
    for name, arrival, execution in (("first", "1#a", first), ("second", "2#b", second)):
        store.enqueue("payments-api", arrival, name, execution)
        store.attach_queue_token("payments-api", arrival, name, execution, f"token-{name}")
    callbacks = RecordingCallbacks(closed={"token-first"})

    # When its failure path releases the turn, naming its place ("Release rollout lock after
    # failure" passes the execution's arrival)
    release_turn(
        "payments-api", first, store, callbacks, EXECUTIONS, CLOCK, own_place=queue_sk("1#a", "first")
    )

    # Then its place goes first, and the turn goes to "second", not to the execution on its way out
    assert callbacks.succeeded == ["token-second"]
    lock = store.lock("payments-api")
    assert lock is not None and (lock.owner, lock.token) == (second, None)
    assert store.queue_length("payments-api") == 0
