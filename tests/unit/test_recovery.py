"""A rollout whose execution ended where no Catch runs is taken over and rolled back (logic/recovery.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from canaryfleet.adapters.workflow import recovery_name
from canaryfleet.logic.outcome import record_rollback
from canaryfleet.logic.queue import queue_rollout
from canaryfleet.logic.recovery import OWN_ENDS, recover, sweep, take_over_stopped
from canaryfleet.models.app_config import AppConfig, Color, Strategy
from canaryfleet.models.rollout import ExecutionInput, Recovery, Revision, RolloutPlan, RolloutRef, Stage
from canaryfleet.models.rollout_record import Wait, queue_sk
from canaryfleet.models.tasks import ExecutionStatusChange, QueueTask, TakeOverTask
from canaryfleet.observability import metrics
from canaryfleet.ports.clock import FixedClock

from tests.helpers import STATE_MACHINES
from tests.unit.fakes import (
    FakeExecutions,
    FakeRule,
    InMemoryRolloutStore,
    RecordingCallbacks,
    RecordingEndedApprovals,
    a_rollout,
    an_app,
)

APP = "payments-api"
ROLLOUT_ID = "payments-api-2_7_0-5e0c2c7a41d2b7b3b1f04a6d"
REF = RolloutRef(application=APP, rollout_id=ROLLOUT_ID, version="2.7.0")
ARRIVAL = f"1#{ROLLOUT_ID}"
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:rollout"
STOPPED = f"arn:aws:states:eu-west-1:123456789012:execution:rollout:{ROLLOUT_ID}"
RECOVERY = f"arn:aws:states:eu-west-1:123456789012:execution:rollout:{recovery_name(STOPPED)}"


def _input(app: AppConfig | None = None, recovery: Recovery | None = None) -> ExecutionInput:
    return ExecutionInput(
        ref=REF,
        arrival=ARRIVAL,
        revision=Revision(bucket="artifacts", key=f"{APP}/2.7.0.zip", version="2.7.0"),
        app=app or an_app(APP),
        plan=RolloutPlan(steps=(), deployment_timeout_seconds=120, inconclusive_extensions=0),
        recovery=recovery,
    )


def _ended(status: str, raw_input: str | None = None) -> ExecutionStatusChange:
    """The event as the Developer Guide shows it: no error, no cause."""
    detail = {
        "executionArn": STOPPED,
        "stateMachineArn": MACHINE,
        "name": ROLLOUT_ID,
        "status": status,
        "startDate": 1551225014968,
        "stopDate": 1551225017576,
        "input": raw_input if raw_input is not None else _input().model_dump_json(),
        "inputDetails": {"included": True},
        "output": None,
        "outputDetails": None,
    }
    return ExecutionStatusChange.model_validate(detail)


@dataclass(frozen=True)
class Described:
    input: str | None
    error: str | None = None
    cause: str | None = None
    status: str = "ABORTED"


class FakeRecoveries:
    """Step Functions as recover() sees it: one execution per name, and what the ended execution
    says of itself (its input, its end's error and cause)."""

    def __init__(self, described: Described | None = None) -> None:
        self.described: Described | None = described or Described(_input().model_dump_json())
        self.started: dict[str, ExecutionInput] = {}

    def describe(self, execution_arn: str) -> Described | None:
        assert execution_arn == STOPPED
        return self.described

    def start_recovery(self, execution: ExecutionInput) -> tuple[str, bool]:
        assert execution.recovery is not None
        name = recovery_name(execution.recovery.stopped_execution)
        first = name not in self.started
        self.started.setdefault(name, execution)
        return name, first


def test_given_a_stopped_rollout_when_its_end_comes_twice_then_one_recovery_starts_with_its_input() -> None:
    recoveries = FakeRecoveries(Described(None, "Manual", "on-call: bad build"))
    ended = _ended("ABORTED")

    assert recover(ended, recoveries) == "recovery started"
    assert recover(ended, recoveries) == "recovery already started"

    (started,) = recoveries.started.values()
    assert started.model_copy(update={"recovery": None}) == _input()
    assert started.recovery == Recovery(
        stopped_execution=STOPPED, status="ABORTED", error="Manual", cause="on-call: bad build"
    )


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED"])
def test_given_an_execution_that_runs_or_succeeded_then_nothing_is_recovered(status: str) -> None:
    recoveries = FakeRecoveries()

    assert recover(_ended(status), recoveries) == "ignored"
    assert recoveries.started == {}


# The rollout state machine's own ends: the errors of its top-level Fail states (a Fail state
# inside the canary steps' Map ends its iteration, and the Map's Catch takes it to the rollback).
OWN_FAIL_ERRORS = sorted(
    state["Error"]
    for state in json.loads((STATE_MACHINES / "rollout.asl.json").read_text())["States"].values()
    if state["Type"] == "Fail"
)


def test_a_recovery_that_took_nothing_over_is_the_one_fail_state_not_an_own_end() -> None:
    assert OWN_FAIL_ERRORS == [
        "RecoveryFailed",
        "Rejected",
        "ReleaseNotRecorded",
        "RolledBack",
        "RolloutFailed",
    ]
    assert sorted(OWN_ENDS) == [error for error in OWN_FAIL_ERRORS if error != "RecoveryFailed"]


def test_given_a_recovery_that_could_not_take_the_stopped_rollout_over_then_its_alarm_tells_on_call() -> None:
    # Its take-over failed past its retries: nothing was rolled back and the lock is still the
    # stopped execution's (the canary's share of the traffic may still be on the build)
    recovery = Recovery(stopped_execution=STOPPED, status="ABORTED")
    recoveries = FakeRecoveries(Described(None, "RecoveryFailed", "ThrottlingException: Rate exceeded"))
    ended = _ended("FAILED", raw_input=_input(recovery=recovery).model_dump_json())
    metrics.clear_metrics()

    assert recover(ended, recoveries) == "recovery ended"
    assert recoveries.started == {}
    assert "RolloutRecoveriesFailed" in metrics.metric_set


@pytest.mark.parametrize("error", sorted(OWN_ENDS))
def test_given_a_rollout_that_failed_on_its_own_path_then_nothing_is_recovered(error: str) -> None:
    recoveries = FakeRecoveries(Described(None, error, "canary alarm"))

    assert recover(_ended("FAILED"), recoveries) == "ended by its own path"
    assert recoveries.started == {}


def test_given_a_failure_no_catch_takes_then_its_error_is_read_from_the_execution() -> None:
    runtime = "An error occurred while executing the state 'Record rollback'."
    recoveries = FakeRecoveries(Described(None, "States.Runtime", runtime))

    assert recover(_ended("FAILED"), recoveries) == "recovery started"

    (started,) = recoveries.started.values()
    assert started.recovery is not None
    assert (started.recovery.error, started.recovery.cause) == ("States.Runtime", runtime)


@pytest.mark.parametrize(
    "left_out",
    [
        {"input": None, "inputDetails": {"included": False}},
        {"input": "", "inputDetails": {"included": False}},
        {"input": ""},
        # (what the event gives when it says it left the input out is not the execution's input)
        {"inputDetails": {"included": False}},
    ],
    ids=["null", "empty, left out", "empty", "said left out"],
)
def test_given_an_event_that_leaves_the_input_out_then_the_execution_gives_it(
    left_out: dict[str, Any],
) -> None:
    recoveries = FakeRecoveries(Described(_input().model_dump_json()))
    detail = _ended("TIMED_OUT").model_dump(by_alias=True) | left_out
    if "input" not in left_out:
        detail["input"] = '{"not": "the execution\'s input"}'

    assert recover(ExecutionStatusChange.model_validate(detail), recoveries) == "recovery started"
    (started,) = recoveries.started.values()
    assert started.model_copy(update={"recovery": None}) == _input()


def test_given_a_recovery_that_was_itself_stopped_then_it_is_not_recovered_again() -> None:
    recovery = Recovery(stopped_execution=STOPPED, status="ABORTED")
    recoveries = FakeRecoveries()

    ended = _ended("ABORTED", raw_input=_input(recovery=recovery).model_dump_json())
    metrics.clear_metrics()

    assert recover(ended, recoveries) == "recovery ended"
    assert recoveries.started == {}
    assert "RolloutRecoveriesFailed" in metrics.metric_set  # its alarm tells on-call


@pytest.mark.parametrize("raw_input", ["{}", '{"comment": "started by hand"}', "not json"])
def test_given_an_execution_started_by_hand_then_there_is_nothing_to_recover(raw_input: str) -> None:
    recoveries = FakeRecoveries()

    assert recover(_ended("ABORTED", raw_input=raw_input), recoveries) == "not a rollout"
    assert recoveries.started == {}


def test_given_an_event_about_an_execution_step_functions_does_not_know_then_nothing_starts() -> None:
    recoveries = FakeRecoveries()
    recoveries.described = None

    assert recover(_ended("ABORTED"), recoveries) == "no such execution"
    assert recoveries.started == {}


def test_given_a_long_execution_name_then_the_recovery_name_fits_and_differs_per_execution() -> None:
    long_a = f"{MACHINE.replace('stateMachine', 'execution')}:{'a' * 79}1"
    long_b = f"{MACHINE.replace('stateMachine', 'execution')}:{'a' * 79}2"

    assert len(recovery_name(long_a)) <= 80
    assert recovery_name(long_a) != recovery_name(long_b)
    assert recovery_name(STOPPED).startswith(ROLLOUT_ID)


# -- the recovery's take-over ---------------------------------------------------------------


@pytest.fixture
def store(clock: FixedClock) -> InMemoryRolloutStore:
    return InMemoryRolloutStore(clock)


@pytest.fixture
def callbacks() -> RecordingCallbacks:
    return RecordingCallbacks()


@pytest.fixture
def executions() -> FakeExecutions:
    """Every execution runs (the stopped one until the recovery takes over)."""
    running = FakeExecutions()
    running.running.update({"arn:running", "arn:next", RECOVERY})
    return running


def _wait_for_turn(
    store: InMemoryRolloutStore,
    rollout_id: str,
    arrival: str,
    execution_arn: str,
    clock: FixedClock,
    callbacks: RecordingCallbacks,
    executions: FakeExecutions,
) -> None:
    ref = RolloutRef(application=APP, rollout_id=rollout_id, version="2.7.0")
    store.enqueue(APP, arrival, rollout_id, execution_arn)
    task = QueueTask(token=f"token-{rollout_id}", ref=ref, arrival=arrival, execution_arn=execution_arn)
    executions.running.add(execution_arn)
    queue_rollout(task, store, callbacks, executions, clock)


def _take_over(
    store: InMemoryRolloutStore,
    clock: FixedClock,
    callbacks: RecordingCallbacks,
    executions: FakeExecutions,
    app: AppConfig | None = None,
    status: str = "ABORTED",
    ended_approvals: RecordingEndedApprovals | None = None,
    rule: FakeRule | None = None,
) -> dict[str, object]:
    """The recovery's take-over; ``rule``: the listener rule's weights (as the fleet stack makes
    it, every request to blue, unless given)."""
    executions.running.discard(STOPPED)
    recovery = Recovery.model_validate(
        {"stopped_execution": STOPPED, "status": status, "error": "Manual", "cause": "on-call"}
    )
    task = TakeOverTask(
        action="take_over",
        ref=REF,
        arrival=ARRIVAL,
        app=app or an_app(APP),
        execution_arn=RECOVERY,
        recovery=recovery,
    )
    traffic = rule or FakeRule(task.app)
    return take_over_stopped(task, store, callbacks, executions, clock, traffic, ended_approvals)


def _holding_its_turn(
    store: InMemoryRolloutStore,
    clock: FixedClock,
    callbacks: RecordingCallbacks,
    executions: FakeExecutions,
    next_in_line: bool = False,
) -> None:
    """The rollout to be stopped holds its application's turn (and another waits, if asked)."""
    a_rollout(store, rollout_id=ROLLOUT_ID)
    _wait_for_turn(store, ROLLOUT_ID, ARRIVAL, STOPPED, clock, callbacks, executions)
    if next_in_line:
        _wait_for_turn(store, "next", "2#next", "arn:next", clock, callbacks, executions)


def _queued_behind_a_running_rollout(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    """The rollout to be stopped waits in the queue; another holds the turn."""
    a_rollout(store, rollout_id=ROLLOUT_ID)
    _wait_for_turn(store, "running", "0#running", "arn:running", clock, callbacks, executions)
    _wait_for_turn(store, ROLLOUT_ID, ARRIVAL, STOPPED, clock, callbacks, executions)


def _assert_ended(store: InMemoryRolloutStore, outcome: str, decided: str) -> None:
    """The stopped rollout's record says ``outcome``, and its version is ``decided``."""
    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.outcome == outcome
    decision = store.version_status(APP, "2.7.0")
    assert decision is not None and decision.status == decided


def _assert_the_next_has_the_turn(store: InMemoryRolloutStore, callbacks: RecordingCallbacks) -> None:
    """The next rollout in line holds the lock, and its wait for its turn was ended."""
    lock = store.lock(APP)
    assert lock is not None and lock.owner == "arn:next"
    assert "token-next" in callbacks.succeeded


def test_given_a_stopped_rollout_that_held_its_turn_then_the_recovery_holds_it_and_rolls_back(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    _holding_its_turn(store, clock, callbacks, executions, next_in_line=True)

    result = _take_over(store, clock, callbacks, executions)
    again = _take_over(store, clock, callbacks, executions)

    assert result["held"] is True and again["held"] is True  # a retried task holds it still
    assert result["error"] == {
        "Error": "ExecutionAborted",
        "Cause": "stopped outside canaryfleet: Manual: on-call",
    }
    lock = store.lock(APP)
    assert lock is not None and (lock.owner, lock.rollout_id) == (RECOVERY, ROLLOUT_ID)
    assert store.queue_length(APP) == 1  # the next waits for the recovery's rollback to release it
    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.outcome is None  # the rollback path records it


def test_given_a_rollout_stopped_while_queued_then_its_place_goes_and_the_record_says_why(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    _queued_behind_a_running_rollout(store, clock, callbacks, executions)

    result = _take_over(store, clock, callbacks, executions, status="TIMED_OUT")

    assert result["held"] is False
    assert result["rollback"] == {
        "outcome": "rolled_back",
        "reason": (
            "execution timed out: Manual: on-call; "
            "nothing was deployed, so version 2.7.0 may be uploaded again"
        ),
    }
    lock = store.lock(APP)
    assert lock is not None and lock.owner == "arn:running"  # the running rollout keeps its turn
    assert store.queue_length(APP) == 0
    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.outcome == "rolled_back"
    assert store.version_status(APP, "2.7.0") is None  # its build never ran: not judged


def test_given_the_stopped_head_of_the_queue_then_the_next_in_line_gets_the_turn(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    _queued_behind_a_running_rollout(store, clock, callbacks, executions)
    _wait_for_turn(store, "next", "2#next", "arn:next", clock, callbacks, executions)
    store.release_lock(APP, "arn:running")  # the running one released, its hand-over not yet made

    result = _take_over(store, clock, callbacks, executions)

    assert result["held"] is False
    _assert_the_next_has_the_turn(store, callbacks)


def test_given_a_rollout_released_before_it_was_stopped_then_only_its_turn_is_passed_on(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    _holding_its_turn(store, clock, callbacks, executions, next_in_line=True)
    store.decide_version(APP, "2.7.0", "released", ROLLOUT_ID, "released")
    store.record_outcome(APP, ROLLOUT_ID, "released", "")

    result = _take_over(store, clock, callbacks, executions)

    assert (result["held"], result["rollback"]) == (False, None)
    lock = store.lock(APP)
    assert lock is not None and lock.owner == "arn:next"
    _assert_ended(store, "released", "released")


def test_given_a_blue_green_rollout_stopped_then_the_rollback_drives_the_colors_it_chose(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    app = an_app(APP).model_copy(update={"strategy": "blue_green"})
    _holding_its_turn(store, clock, callbacks, executions)
    store.set_colors(APP, ROLLOUT_ID, "blue_green", "green", "blue")

    result = _take_over(store, clock, callbacks, executions, app=app)

    assert result["held"] is True
    assert result["app"] == json.loads(app.for_release("green").model_dump_json())


@pytest.mark.parametrize(
    ("green_share", "stored", "live"),
    [
        (100, "blue", "green"),  # a release onto green whose record failed: the rule says green
        (0, "green", "blue"),  # the rule says blue, whatever the table says
        (50, "green", "green"),  # split by hand: only a person can say; the last release's color
        (0, None, "blue"),  # no release yet
    ],
)
def test_given_a_blue_green_rollout_stopped_before_it_chose_colors_then_the_rollback_keeps_the_serving_one(
    store: InMemoryRolloutStore,
    clock: FixedClock,
    callbacks: RecordingCallbacks,
    executions: FakeExecutions,
    green_share: int,
    stored: Color | None,
    live: Color,
) -> None:
    # Given a blue/green rollout stopped while it held its turn but before it chose its colors,
    # the listener rule sending green_share% to green, and the table's last release on ``stored``
    app = an_app(APP).model_copy(update={"strategy": "blue_green"})
    _holding_its_turn(store, clock, callbacks, executions)
    if stored is not None:
        store.set_last_good(APP, _input().revision, "earlier", color=stored)
    rule = FakeRule(app)
    rule.set_canary_weight(app, green_share)  # the stack's canary group is green

    # When its recovery takes over
    result = _take_over(store, clock, callbacks, executions, app=app, rule=rule)

    # Then the rollback returns the traffic to the color that serves it, never to one the rule
    # has moved away from (which may be at zero instances)
    assert result["held"] is True
    assert result["app"] == json.loads(app.for_release(live).model_dump_json())


def _released(store: InMemoryRolloutStore, clock: FixedClock, strategy: Strategy = "blue_green") -> None:
    """The rollout released (blue to green), its turn passed on, keeping blue warm."""
    store.set_colors(APP, ROLLOUT_ID, strategy, "blue", "green")
    store.record_stage(APP, ROLLOUT_ID, Stage.RELEASED, clock.now())
    store.decide_version(APP, "2.7.0", "released", ROLLOUT_ID, "released")
    store.record_outcome(APP, ROLLOUT_ID, "released", "")
    store.release_lock(APP, STOPPED)


def test_given_a_blue_green_release_stopped_while_its_old_color_is_warm_then_it_is_scaled_down_in_time(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    # Given a blue/green rollout released ten minutes ago, its old color kept warm for 30 minutes
    app = an_app(APP).model_copy(update={"strategy": "blue_green", "scale_down_delay_seconds": 1_800})
    _holding_its_turn(store, clock, callbacks, executions)
    _released(store, clock)
    clock.advance(600)

    # When its execution is stopped in that wait
    result = _take_over(store, clock, callbacks, executions, app=app)

    # Then the recovery takes blue to zero once the 20 minutes left are over
    assert result["held"] is False and result["rollback"] is None
    assert result["scale_down_old_in"] == 1_200
    assert result["app"] == json.loads(app.for_release("blue").model_dump_json())


@pytest.mark.parametrize("strategy", ["in_place", "blue_green"])
def test_given_a_release_stopped_with_no_old_color_warm_then_nothing_is_scaled_down(
    store: InMemoryRolloutStore,
    clock: FixedClock,
    callbacks: RecordingCallbacks,
    executions: FakeExecutions,
    strategy: Strategy,
) -> None:
    app = an_app(APP).model_copy(update={"strategy": strategy, "scale_down_delay_seconds": 600})
    _holding_its_turn(store, clock, callbacks, executions)
    if strategy == "blue_green":  # rolled back, not released: its release color went to zero then
        store.set_colors(APP, ROLLOUT_ID, strategy, "blue", "green")
        store.record_outcome(APP, ROLLOUT_ID, "rolled_back", "canary alarm")
        store.record_stage(APP, ROLLOUT_ID, Stage.ROLLED_BACK, clock.now())
    else:
        _released(store, clock, strategy)

    result = _take_over(store, clock, callbacks, executions, app=app)

    assert result["scale_down_old_in"] is None


def test_given_a_rollout_stopped_in_the_middle_of_its_rollback_then_it_is_rolled_back_again_for_its_reason(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    _holding_its_turn(store, clock, callbacks, executions)
    store.remember_deployment(ROLLOUT_ID, "canary", "d-1", "payments-api-canary")
    record_rollback(REF, "CanaryAlarm", "canary alarm hello-5xx went to ALARM", store, clock)

    result = _take_over(store, clock, callbacks, executions)
    # ... and the rollback path's "Record rollback" runs again with the recovery's error
    again = record_rollback(REF, "ExecutionAborted", "stopped outside canaryfleet", store, clock)

    assert result["held"] is True
    assert (again["outcome"], again["reason"]) == ("rolled_back", "canary alarm hello-5xx went to ALARM")
    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and (record.reason, record.error) == (again["reason"], "CanaryAlarm")


def test_given_a_rollout_rolled_back_and_said_before_it_was_stopped_then_only_its_turn_is_passed_on(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    _holding_its_turn(store, clock, callbacks, executions)
    store.remember_deployment(ROLLOUT_ID, "canary", "d-1", "payments-api-canary")
    record_rollback(REF, "CanaryAlarm", "canary alarm hello-5xx went to ALARM", store, clock)
    store.record_stage(APP, ROLLOUT_ID, Stage.ROLLED_BACK, clock.now())

    result = _take_over(store, clock, callbacks, executions)

    assert (result["held"], result["rollback"]) == (False, None)
    assert store.lock(APP) is None


APPROVAL_ID = "a" * 22


@pytest.mark.parametrize(
    ("status", "because"),
    [
        ("ABORTED", "stopped outside canaryfleet: Manual: on-call"),
        ("TIMED_OUT", "execution timed out: Manual: on-call"),
    ],
)
def test_given_a_rollout_stopped_awaiting_its_approval_then_its_wait_is_forgotten_and_the_approval_settled(
    store: InMemoryRolloutStore,
    clock: FixedClock,
    callbacks: RecordingCallbacks,
    executions: FakeExecutions,
    status: str,
    because: str,
) -> None:
    # Given a rollout holding its turn, stopped (or timed out) while it waited for its approval
    _holding_its_turn(store, clock, callbacks, executions)
    wait = Wait(kind="approval", token="token-approval", started_at=clock.now(), approval_id=APPROVAL_ID)
    store.set_wait(APP, ROLLOUT_ID, wait)
    ended = RecordingEndedApprovals()

    # When the recovery takes it over, twice (a retried task)
    result = _take_over(store, clock, callbacks, executions, status=status, ended_approvals=ended)
    _take_over(store, clock, callbacks, executions, status=status, ended_approvals=ended)

    # Then it rolls back, nothing can end the stopped wait's task any more, and the approval is
    # settled once, now rather than at its expiry (its Slack buttons give way to why)
    assert result["held"] is True
    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.waits_with("approval") is None
    assert ended.settled == [APPROVAL_ID]
    # and the record says why, as the rollback will, for the approval to close saying so
    assert record.stopped_because == because


def test_given_a_rollout_stopped_during_its_bake_then_the_wait_is_forgotten_and_no_approval_is_settled(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    _holding_its_turn(store, clock, callbacks, executions)
    store.set_wait(APP, ROLLOUT_ID, Wait(kind="bake", token="token-bake", started_at=clock.now()))
    ended = RecordingEndedApprovals()

    _take_over(store, clock, callbacks, executions, ended_approvals=ended)

    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.waits_with("bake") is None  # a late alarm ends no dead task
    assert ended.settled == []


def _sweep(
    store: InMemoryRolloutStore,
    recoveries: FakeRecoveries,
    callbacks: RecordingCallbacks,
    executions: FakeExecutions,
    clock: FixedClock,
) -> dict[str, str]:
    return sweep([APP, "ledger"], store, recoveries, callbacks, executions, clock)


def test_given_a_stop_whose_status_event_never_came_then_the_sweep_starts_its_recovery_once(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    # Given a rollout holding its turn whose execution was stopped, and no event about it
    _holding_its_turn(store, clock, callbacks, executions)
    executions.running.discard(STOPPED)
    recoveries = FakeRecoveries(Described(_input().model_dump_json(), "Manual", "on-call", status="ABORTED"))

    # When the sweep runs, and again five minutes later (the event only late, or the recovery slow)
    first = _sweep(store, recoveries, callbacks, executions, clock)
    again = _sweep(store, recoveries, callbacks, executions, clock)

    # Then the recovery the event would have started starts, once, with the stop's reason
    assert first == {APP: "recovery started"} and again == {APP: "recovery already started"}
    (started,) = recoveries.started.values()
    assert started.recovery is not None and started.recovery.stopped_execution == STOPPED
    assert (started.recovery.error, started.recovery.cause) == ("Manual", "on-call")


def test_given_a_rollout_that_ended_its_own_way_but_kept_its_lock_then_the_sweep_passes_its_turn_on(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    # Given a rollout that rolled back on its own path but could not release its lock, and the
    # next rollout waiting its turn
    _holding_its_turn(store, clock, callbacks, executions, next_in_line=True)
    record_rollback(REF, "Canary.Alarm", "canary alarm", store, clock)
    executions.running.discard(STOPPED)
    recoveries = FakeRecoveries(Described(_input().model_dump_json(), "RolledBack", status="FAILED"))

    # When the sweep runs
    done = _sweep(store, recoveries, callbacks, executions, clock)

    # Then no recovery starts (its own path put the fleet back), and the next rollout has its turn
    assert done == {APP: "turn passed on"}
    assert recoveries.started == {}
    _assert_the_next_has_the_turn(store, callbacks)


def test_given_a_running_owner_whose_hand_over_was_never_confirmed_then_the_sweep_ends_its_wait(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    # Given the lock was handed to a running rollout, and the function died before SendTaskSuccess
    a_rollout(store, rollout_id=ROLLOUT_ID)
    executions.running.add(STOPPED)
    store.attach_queue_token(APP, ARRIVAL, ROLLOUT_ID, STOPPED, "token-turn")
    head = store.queue_head(APP)
    assert head is not None and store.hand_lock_to(APP, head)
    recoveries = FakeRecoveries()

    # When the sweep runs, twice
    first = _sweep(store, recoveries, callbacks, executions, clock)
    again = _sweep(store, recoveries, callbacks, executions, clock)

    # Then its wait for the turn (which has no timeout) ends, once
    assert (first, again) == ({APP: "turn given again"}, {})
    assert callbacks.succeeded == {"token-turn": {"turn": "acquired"}}
    lock = store.lock(APP)
    assert lock is not None and (lock.owner, lock.token) == (STOPPED, None)


def test_given_a_running_owner_or_no_lock_then_the_sweep_does_nothing(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    _holding_its_turn(store, clock, callbacks, executions)
    recoveries = FakeRecoveries()

    assert _sweep(store, recoveries, callbacks, executions, clock) == {}
    lock = store.lock(APP)
    assert lock is not None and lock.owner == STOPPED
    assert recoveries.started == {}


def test_given_an_ended_recovery_holding_the_lock_then_the_sweep_leaves_it_and_counts_it_no_more(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    # Given a lock held by a recovery execution that was itself stopped (its end already counted)
    _holding_its_turn(store, clock, callbacks, executions)
    executions.running.discard(STOPPED)
    recovery = Recovery(stopped_execution="arn:first-stop", status="ABORTED")
    described = Described(_input(recovery=recovery).model_dump_json(), "Manual", status="ABORTED")
    recoveries = FakeRecoveries(described)
    metrics.clear_metrics()

    # When the sweep runs
    done = _sweep(store, recoveries, callbacks, executions, clock)

    # Then nothing is started or released, and no alarm is raised again at every sweep
    assert done == {APP: "recovery ended"}
    assert recoveries.started == {}
    lock = store.lock(APP)
    assert lock is not None and lock.owner == STOPPED
    assert "RolloutRecoveriesFailed" not in metrics.metric_set


class _ThrottledFor(FakeExecutions):
    """DescribeExecution throttled for one execution, as Step Functions answers under load."""

    def __init__(self, base: FakeExecutions, throttled: str) -> None:
        super().__init__()
        self.running, self.ended, self.throttled = base.running, base.ended, throttled

    def ended_at(self, execution_arn: str) -> datetime | None:
        if execution_arn == self.throttled:
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "DescribeExecution")
        return super().ended_at(execution_arn)


def test_given_one_application_whose_read_is_throttled_then_the_others_are_swept_and_the_sweep_fails(
    store: InMemoryRolloutStore, clock: FixedClock, callbacks: RecordingCallbacks, executions: FakeExecutions
) -> None:
    # Given a stopped rollout of payments-api with no event, and ledger's lock unreadable now
    _holding_its_turn(store, clock, callbacks, executions)
    executions.running.discard(STOPPED)
    store.attach_queue_token("ledger", "1#ledger-1", "ledger-1", "arn:ledger", "token-ledger-1")
    head = store.queues["ledger"][queue_sk("1#ledger-1", "ledger-1")]
    assert store.hand_lock_to("ledger", head)
    store.turn_delivered("ledger", "arn:ledger")
    recoveries = FakeRecoveries(Described(_input().model_dump_json(), "Manual", status="ABORTED"))
    throttled = _ThrottledFor(executions, "arn:ledger")

    # When the sweep runs
    with pytest.raises(ClientError):
        sweep(["ledger", APP], store, recoveries, callbacks, throttled, clock)

    # Then payments-api's recovery started all the same, and the invocation fails to be retried
    assert len(recoveries.started) == 1
