"""Step Functions sends each Standard execution's status changes to the default bus, on moto with
the stand-in (src/canaryfleet_local/FIDELITY.md lists the rule and its sources)."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.sqs.models import SQSBackend
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from canaryfleet_local.standins import stepfunctions
from canaryfleet_local.standins.eventbridge import (
    EventBridgeLambdaAndStateMachineTargets,
    emit_service_event,
)
from canaryfleet_local.standins.lambda_async import AsyncInvocationQueue
from canaryfleet_local.standins.stepfunctions import (
    StepFunctionsExecutionStatusEvents,
    stop_execution_aborts_at_once,
)
from tests.integration.helpers import eventually, moto_account

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sfn"
PATTERN = {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]}
HANG_SECONDS = 30  # moto's execution threads end long before this, unless one hangs

PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"ok": True}, "End": True}}}
ECHO = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
WAIT = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}}}
FAIL = {
    "StartAt": "Fail",
    "States": {"Fail": {"Type": "Fail", "Error": "Canary.Unhealthy", "Cause": "error rate 7% over 2%"}},
}
TIMES_OUT = {**WAIT, "TimeoutSeconds": 1}


class StatusEvents:
    """The default bus's Step Functions events, routed by a rule to an SQS queue, as they arrive."""

    def __init__(self, stand_in: StepFunctionsExecutionStatusEvents) -> None:
        self.stand_in = stand_in
        sqs, events = boto3.client("sqs"), boto3.client("events")
        self.url = sqs.create_queue(QueueName="status-events")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]
        arn = attributes["QueueArn"]
        events.put_rule(Name="execution-status", EventPattern=json.dumps(PATTERN))
        events.put_targets(Rule="execution-status", Targets=[{"Id": "queue", "Arn": arn}])
        self.received: list[dict[str, Any]] = []

    def _receive(self) -> None:
        sqs = boto3.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            self.received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def of(self, execution: str) -> list[dict[str, Any]]:
        self._receive()
        return [event for event in self.received if event["detail"]["executionArn"] == execution]

    def until(self, execution: str, status: str) -> list[dict[str, Any]]:
        """The execution's events, once one says ``status``."""

        def arrived() -> list[dict[str, Any]]:
            events = self.of(execution)
            return events if any(e["detail"]["status"] == status for e in events) else []

        arrived.__doc__ = f"{execution} sent {status}"
        return list(eventually(arrived, timeout=HANG_SECONDS))


@pytest.fixture
def status_events() -> Iterator[StatusEvents]:
    queue = AsyncInvocationQueue(None)  # type: ignore[arg-type]  # only SQS targets: moto delivers them
    stand_in = StepFunctionsExecutionStatusEvents()
    with (
        moto_account(REGION, {"stepfunctions": {"execute_state_machine": True}}),
        EventBridgeLambdaAndStateMachineTargets(queue, REGION).installed(),
        stop_execution_aborts_at_once(),
        stand_in.installed(),
    ):
        yield StatusEvents(stand_in)
    queue.shutdown()


def _machine(definition: dict[str, Any]) -> str:
    name = f"machine-{uuid.uuid4().hex[:8]}"
    sfn = boto3.client("stepfunctions")
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]


def _start(machine: str, execution_input: str = '{"rollout": "r1"}') -> str:
    sfn = boto3.client("stepfunctions")
    return sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=execution_input)[
        "executionArn"
    ]


def _waiting(execution: str) -> None:
    """Until the execution waits in its Wait state (moto ignores a stop that comes before)."""
    sfn = boto3.client("stepfunctions")

    def entered() -> bool:
        events = sfn.get_execution_history(executionArn=execution)["events"]
        return any(event["type"] == "WaitStateEntered" for event in events)

    eventually(entered, timeout=HANG_SECONDS)


def _statuses(events: list[dict[str, Any]]) -> list[str]:
    return [event["detail"]["status"] for event in events]


def test_a_succeeding_execution_sends_running_then_succeeded_with_its_output(
    status_events: StatusEvents,
) -> None:
    machine = _machine(PASS)

    execution = _start(machine)

    events = status_events.until(execution, "SUCCEEDED")
    assert _statuses(events) == ["RUNNING", "SUCCEEDED"]
    running, succeeded = (event["detail"] for event in events)
    assert running["stopDate"] is None
    assert running["output"] is None
    assert running["outputDetails"] is None
    assert json.loads(succeeded["output"]) == {"ok": True}
    assert succeeded["outputDetails"] == {"included": True}


def test_each_event_has_the_documented_fields_and_types(
    status_events: StatusEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto's delivery to an SQS target leaves the event's account out: it is read as emitted
    emitted: list[tuple[str, str, dict[str, Any]]] = []

    def recorded(account: str, region: str, event: dict[str, Any]) -> None:
        emitted.append((account, region, event))
        emit_service_event(account, region, event)

    monkeypatch.setattr(stepfunctions, "emit_service_event", recorded)
    sfn = boto3.client("stepfunctions")
    machine = _machine(PASS)

    execution = _start(machine, '{"rollout": "r1", "attempt": 2}')

    events = status_events.until(execution, "SUCCEEDED")
    described = sfn.describe_execution(executionArn=execution)
    assert [(account, region, event["account"]) for account, region, event in emitted] == [
        (ACCOUNT, REGION, ACCOUNT)
    ] * 2
    for event in events:
        assert set(event) >= {"version", "id", "detail-type", "source", "time", "region", "resources"}
        assert event["version"] == "0"
        assert event["source"] == "aws.states"
        assert event["detail-type"] == "Step Functions Execution Status Change"
        assert event["region"] == REGION
        assert event["resources"] == [execution]
        detail = event["detail"]
        assert set(detail) == {
            "executionArn",
            "stateMachineArn",
            "name",
            "status",
            "startDate",
            "stopDate",
            "input",
            "inputDetails",
            "output",
            "outputDetails",
        }  # no error or cause: the Developer Guide's event structure has none
        assert detail["executionArn"] == execution
        assert detail["stateMachineArn"] == machine
        assert detail["name"] == described["name"]
        # Epoch milliseconds, as DescribeExecution's dates
        assert isinstance(detail["startDate"], int)
        assert detail["startDate"] == int(described["startDate"].timestamp() * 1000)
        assert isinstance(detail["input"], str)
        assert json.loads(detail["input"]) == {"rollout": "r1", "attempt": 2}
        assert detail["inputDetails"] == {"included": True}
    stopped = events[-1]["detail"]["stopDate"]
    assert isinstance(stopped, int)
    assert stopped == int(described["stopDate"].timestamp() * 1000)
    assert stopped >= events[-1]["detail"]["startDate"]


def test_a_stopped_execution_sends_aborted_and_its_history_keeps_the_stops_error_and_cause(
    status_events: StatusEvents,
) -> None:
    sfn = boto3.client("stepfunctions")
    execution = _start(_machine(WAIT))
    _waiting(execution)

    sfn.stop_execution(executionArn=execution, error="Operator.Stop", cause="stopped from the console")

    events = status_events.until(execution, "ABORTED")
    assert _statuses(events) == ["RUNNING", "ABORTED"]
    aborted = events[-1]["detail"]
    assert aborted["output"] is None
    assert isinstance(aborted["stopDate"], int)
    history = sfn.get_execution_history(executionArn=execution)["events"]
    details = [e["executionAbortedEventDetails"] for e in history if e["type"] == "ExecutionAborted"]
    assert details == [{"error": "Operator.Stop", "cause": "stopped from the console"}]


def test_an_execution_waiting_for_a_task_token_is_aborted_when_stopped(status_events: StatusEvents) -> None:
    sfn, sqs = boto3.client("stepfunctions"), boto3.client("sqs")
    tokens = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    waits = {
        "StartAt": "Wait for approval",
        "States": {
            "Wait for approval": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": tokens, "MessageBody": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 600,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    execution = _start(_machine(waits))
    sent = eventually(lambda: sqs.receive_message(QueueUrl=tokens).get("Messages"), timeout=HANG_SECONDS)
    assert json.loads(sent[0]["Body"])["token"]

    answer = sfn.stop_execution(executionArn=execution, error="Operator.Stop", cause="paged")

    # Stopped when StopExecution answers, not at the task's 600 s timeout, and no Catch ran
    described = sfn.describe_execution(executionArn=execution)
    assert described["status"] == "ABORTED"
    assert answer["stopDate"] <= described["stopDate"]
    assert _statuses(status_events.until(execution, "ABORTED")) == ["RUNNING", "ABORTED"]
    history = sfn.get_execution_history(executionArn=execution)["events"]
    aborted = [e["executionAbortedEventDetails"] for e in history if e["type"] == "ExecutionAborted"]
    assert aborted == [{"error": "Operator.Stop", "cause": "paged"}]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["Wait for approval"]
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"  # and stays so


def test_an_execution_stopped_during_a_synchronous_task_sends_aborted_at_the_stop(
    status_events: StatusEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an execution whose task is a synchronous call that has not returned (a Lambda
    # function still running, say): here an SQS SendMessage held until the test lets it go
    sfn, sqs = boto3.client("stepfunctions"), boto3.client("sqs")
    work = sqs.create_queue(QueueName="work")["QueueUrl"]
    in_flight, released = threading.Event(), threading.Event()
    send_message = SQSBackend.send_message

    def held(backend: SQSBackend, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        if message_body == "held":
            in_flight.set()
            released.wait(HANG_SECONDS)
        return send_message(backend, queue_name, message_body, *args, **kwargs)

    monkeypatch.setattr(SQSBackend, "send_message", held)
    task = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True}
    task["Parameters"] = {"QueueUrl": work, "MessageBody": "held"}
    execution = _start(_machine({"StartAt": "Work", "States": {"Work": task}}))
    try:
        assert in_flight.wait(HANG_SECONDS)

        # When it is stopped
        answer = sfn.stop_execution(executionArn=execution, error="Operator.Stop", cause="paged")

        # Then ABORTED goes out at the stop (AWS: an event at each status change; StopExecution
        # sets ABORTED at once), not once the task returns: the task is still in flight here
        events = eventually(lambda: status_events.of(execution)[1:], timeout=5)
        assert not released.is_set()
        assert _statuses(events) == ["ABORTED"]
        described = sfn.describe_execution(executionArn=execution)
        assert described["status"] == "ABORTED"
        assert events[0]["detail"]["stopDate"] == int(described["stopDate"].timestamp() * 1000)
        assert answer["stopDate"] <= described["stopDate"]
    finally:
        released.set()

    # and the task's return later changes nothing: no second event, the same stop date
    later = _start(_machine(PASS))
    status_events.until(later, "SUCCEEDED")
    eventually(lambda: "TaskSucceeded" in str(sfn.get_execution_history(executionArn=execution)), 10)
    assert _statuses(status_events.of(execution)) == ["RUNNING", "ABORTED"]
    again = sfn.describe_execution(executionArn=execution)
    assert (again["status"], again["stopDate"]) == ("ABORTED", described["stopDate"])


def test_a_fail_state_sends_failed_and_the_execution_keeps_its_error_and_cause(
    status_events: StatusEvents,
) -> None:
    execution = _start(_machine(FAIL))

    events = status_events.until(execution, "FAILED")

    assert _statuses(events) == ["RUNNING", "FAILED"]
    assert events[-1]["detail"]["output"] is None
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution)
    assert (described["error"], described["cause"]) == ("Canary.Unhealthy", "error rate 7% over 2%")


def test_an_execution_over_its_timeout_sends_timed_out(status_events: StatusEvents) -> None:
    execution = _start(_machine(TIMES_OUT))

    events = status_events.until(execution, "TIMED_OUT")

    assert _statuses(events) == ["RUNNING", "TIMED_OUT"]


def test_stopping_again_or_stopping_an_ended_execution_sends_nothing_more(
    status_events: StatusEvents,
) -> None:
    sfn = boto3.client("stepfunctions")
    waiting = _start(_machine(WAIT))
    _waiting(waiting)
    ended = _start(_machine(PASS))
    status_events.until(ended, "SUCCEEDED")

    # When the waiting execution is stopped twice, and the ended one once
    sfn.stop_execution(executionArn=waiting, cause="first")
    sfn.stop_execution(executionArn=waiting, cause="second")
    status_events.until(waiting, "ABORTED")
    sfn.stop_execution(executionArn=waiting, cause="third")
    sfn.stop_execution(executionArn=ended, cause="too late")
    # (and were moto's thread to report an end again)
    backend: Any = stepfunctions_parser_backends[ACCOUNT][REGION]
    status_events.stand_in.changed(backend.describe_execution(waiting))

    # Then, once a later execution's events have come through the same rule, each sent one end
    later = _start(_machine(PASS))
    status_events.until(later, "SUCCEEDED")
    assert _statuses(status_events.of(waiting)) == ["RUNNING", "ABORTED"]
    history = sfn.get_execution_history(executionArn=waiting)["events"]
    assert [
        e["executionAbortedEventDetails"]["cause"] for e in history if e["type"] == "ExecutionAborted"
    ] == ["first"]
    assert _statuses(status_events.of(ended)) == ["RUNNING", "SUCCEEDED"]
    assert sfn.describe_execution(executionArn=ended)["status"] == "SUCCEEDED"


def test_input_and_output_over_248_kb_are_left_out_of_the_event(status_events: StatusEvents) -> None:
    sfn = boto3.client("stepfunctions")
    large = json.dumps({"pad": "x" * 255_000})  # within StartExecution's 256 KiB, over 248 KB escaped

    execution = _start(_machine(ECHO), large)

    events = status_events.until(execution, "SUCCEEDED")
    for event in events:
        assert event["detail"]["input"] is None
        assert event["detail"]["inputDetails"] == {"included": False}
    succeeded = events[-1]["detail"]
    assert succeeded["output"] is None
    assert succeeded["outputDetails"] == {"included": False}
    # DescribeExecution still has both
    described = sfn.describe_execution(executionArn=execution)
    assert json.loads(described["input"]) == json.loads(described["output"]) == json.loads(large)


def test_an_event_that_cannot_be_sent_does_not_stop_the_execution(
    status_events: StatusEvents, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unavailable(_account: str, _region: str, _event: dict[str, Any]) -> None:
        raise RuntimeError("the bus is unavailable")

    monkeypatch.setattr(stepfunctions, "emit_service_event", unavailable)
    sfn = boto3.client("stepfunctions")

    with caplog.at_level(logging.ERROR, logger=stepfunctions.__name__):
        execution = _start(_machine(PASS))

        def ended() -> bool:
            return sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"

        eventually(ended, timeout=HANG_SECONDS)
        eventually(lambda: len(caplog.records) == 2, timeout=HANG_SECONDS)

    assert [str(record.exc_info[1]) for record in caplog.records if record.exc_info] == [
        "the bus is unavailable"
    ] * 2
    assert status_events.of(execution) == []


def test_an_execution_of_a_closed_cloud_sends_nothing_to_the_next(
    status_events: StatusEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an execution whose thread outlives its cloud, and the next cloud up (same account,
    # region and state machine ARNs; none of the old executions)
    execution = _start(_machine(PASS))
    status_events.until(execution, "SUCCEEDED")
    backend: Any = stepfunctions_parser_backends[ACCOUNT][REGION]
    old = backend.describe_execution(execution)
    backend.reset()
    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr(
        stepfunctions, "emit_service_event", lambda account, region, event: emitted.append(event)
    )

    # When its end is reported to the next cloud's stand-in
    StepFunctionsExecutionStatusEvents().changed(old)

    # Then no event reaches that cloud's rules
    assert emitted == []
