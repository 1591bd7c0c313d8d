"""A task token is taken only while its task waits: once the task timed out, failed, succeeded, or
its execution was stopped or ended, Step Functions refuses it with TaskTimedOut, on moto with the
stand-in (src/canaryfleet_local/FIDELITY.md lists the rule and its sources)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState

from canaryfleet_local.standins.stepfunctions import (
    StepFunctionsRequestLimits,
    runtime_errors_end_the_execution,
    send_task_failure_with_cause,
    stop_execution_aborts_at_once,
)
from tests.integration.helpers import eventually, moto_account

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
HANG_SECONDS = 30  # moto's execution threads get there long before this, unless one hangs
QUEUE = "tokens"


def _waits(queue_url: str, timeout_seconds: int, then: dict[str, Any], **task: Any) -> dict[str, Any]:
    """A callback task that sends its token to the queue, caught to ``then`` (a Pass or a Wait)."""
    return {
        "StartAt": "Bake",
        "States": {
            "Bake": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": timeout_seconds,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Rolling back"}],
                "End": True,
                **task,
            },
            "Rolling back": {**then, "End": True},
        },
    }


PASS = {"Type": "Pass"}
WAIT = {"Type": "Wait", "Seconds": 60}


@contextlib.contextmanager
def _on_moto(stand_in: StepFunctionsRequestLimits) -> Iterator[StepFunctionsRequestLimits]:
    """moto's executing Step Functions with the stand-ins these rules need, ``stand_in`` last."""
    with (
        moto_account(REGION, {"stepfunctions": {"execute_state_machine": True}}),
        send_task_failure_with_cause(),
        stop_execution_aborts_at_once(),
        runtime_errors_end_the_execution(),
        stand_in.installed(),
    ):
        yield stand_in


@pytest.fixture
def limits() -> Iterator[StepFunctionsRequestLimits]:
    with _on_moto(StepFunctionsRequestLimits()) as stand_in:
        yield stand_in
        sfn = boto3.client("stepfunctions")
        for machine in sfn.list_state_machines()["stateMachines"]:
            running = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
            for execution in running["executions"]:
                sfn.stop_execution(executionArn=execution["executionArn"])


def _queue_url() -> str:
    return str(boto3.client("sqs").create_queue(QueueName=QUEUE)["QueueUrl"])


def _start(definition: dict[str, Any]) -> str:
    sfn = boto3.client("stepfunctions")
    name = f"machine-{uuid.uuid4().hex[:8]}"
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
    return str(sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"])


def _token() -> str:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sent = eventually(lambda: sqs.receive_message(QueueUrl=url).get("Messages"), timeout=HANG_SECONDS)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=sent[0]["ReceiptHandle"])
    return str(json.loads(sent[0]["Body"])["token"])


def _history(execution: str) -> list[str]:
    events = boto3.client("stepfunctions").get_execution_history(executionArn=execution)["events"]
    return [str(event["type"]) for event in events]


def _status(execution: str) -> str:
    return str(boto3.client("stepfunctions").describe_execution(executionArn=execution)["status"])


def _answers(token: str) -> dict[str, str]:
    """What SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat answer with ``token``."""
    sfn = boto3.client("stepfunctions")
    calls = {
        "SendTaskSuccess": lambda: sfn.send_task_success(taskToken=token, output='{"late": true}'),
        "SendTaskFailure": lambda: sfn.send_task_failure(taskToken=token, error="CanaryAlarm", cause="late"),
        "SendTaskHeartbeat": lambda: sfn.send_task_heartbeat(taskToken=token),
    }
    answers = {}
    for name, call in calls.items():
        try:
            call()
            answers[name] = "accepted"
        except ClientError as exc:
            answers[name] = str(exc.response["Error"]["Code"])
    return answers


def _timed_out_and_caught() -> tuple[str, str]:
    """A wait whose 1-s TimeoutSeconds ran out, caught to a long Wait: the execution and its token."""
    execution = _start(_waits(_queue_url(), 1, WAIT))
    token = _token()
    eventually(lambda: "WaitStateEntered" in _history(execution), timeout=HANG_SECONDS)
    return execution, token


CLOSED = dict.fromkeys(("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"), "TaskTimedOut")


def test_a_token_whose_task_timed_out_is_refused_while_its_execution_runs_on(
    limits: StepFunctionsRequestLimits,
) -> None:
    # Given a wait whose TimeoutSeconds ran out, caught: the execution goes on rolling back
    execution, token = _timed_out_and_caught()
    assert _status(execution) == "RUNNING"

    # When a late answer comes with its token, Then Step Functions says the task is closed
    assert _answers(token) == CLOSED

    # and the late answers changed nothing: the task ended by its timeout, once
    history = _history(execution)
    assert history.count("TaskTimedOut") == 1
    assert "TaskSucceeded" not in history and "TaskFailed" not in history
    assert _status(execution) == "RUNNING"


def test_a_late_answer_through_the_platforms_adapter_is_told_the_wait_already_ended(
    limits: StepFunctionsRequestLimits,
) -> None:
    _, token = _timed_out_and_caught()

    callbacks = StepFunctionsCallbacks()
    assert callbacks.succeed(token, {"approved_by": "late approver"}) is False
    assert callbacks.fail(token, "CanaryAlarm", "a late alarm") is False


def test_a_token_whose_task_was_failed_is_refused_while_its_execution_runs_on(
    limits: StepFunctionsRequestLimits,
) -> None:
    execution = _start(_waits(_queue_url(), 600, WAIT))
    token = _token()
    sfn = boto3.client("stepfunctions")
    eventually(lambda: "TaskSubmitted" in _history(execution), timeout=HANG_SECONDS)
    sfn.send_task_failure(taskToken=token, error="Rejected", cause="approver said no")
    eventually(lambda: "WaitStateEntered" in _history(execution), timeout=HANG_SECONDS)

    assert _answers(token) == CLOSED
    assert _history(execution).count("TaskFailed") == 1


def test_a_token_of_a_stopped_execution_is_refused(limits: StepFunctionsRequestLimits) -> None:
    # Given an execution waiting on a token (600 s to go), stopped
    execution = _start(_waits(_queue_url(), 600, PASS))
    token = _token()
    eventually(lambda: "TaskSubmitted" in _history(execution), timeout=HANG_SECONDS)
    boto3.client("stepfunctions").stop_execution(executionArn=execution, cause="operator stop")

    # Then its token is closed with it (moto had taken SendTaskFailure)
    assert _answers(token) == CLOSED
    assert _status(execution) == "ABORTED"
    assert "TaskFailed" not in _history(execution)


def test_a_token_of_an_ended_execution_is_refused(limits: StepFunctionsRequestLimits) -> None:
    # Given an execution that went on past its timed-out wait to its end
    execution = _start(_waits(_queue_url(), 1, PASS))
    token = _token()
    eventually(lambda: _status(execution) == "SUCCEEDED", timeout=HANG_SECONDS)

    # Then its token is refused by all three (moto: InvalidToken for success, accepted a failure)
    assert _answers(token) == CLOSED
    assert _status(execution) == "SUCCEEDED"


def test_a_token_is_taken_while_its_task_waits_and_refused_once_used(
    limits: StepFunctionsRequestLimits,
) -> None:
    execution = _start(_waits(_queue_url(), 600, PASS, HeartbeatSeconds=300))
    token = _token()
    sfn = boto3.client("stepfunctions")
    eventually(lambda: "TaskSubmitted" in _history(execution), timeout=HANG_SECONDS)

    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_success(taskToken=token, output='{"approved": true}')

    assert _answers(token) == CLOSED
    eventually(lambda: _status(execution) == "SUCCEEDED", timeout=HANG_SECONDS)
    assert "TaskSucceeded" in _history(execution)


def _first_attempt_failed(retry_after_seconds: int) -> tuple[str, str]:
    """A wait whose first attempt failed before waiting (its queue "later" is not there), its
    Retry due ``retry_after_seconds`` later: the queue's URL and the execution."""
    sqs = boto3.client("sqs")
    later = str(sqs.create_queue(QueueName="later")["QueueUrl"])
    sqs.delete_queue(QueueUrl=later)
    retried = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": retry_after_seconds, "MaxAttempts": 1}]
    execution = _start(_waits(later, 600, PASS, Retry=retried))
    eventually(lambda: "TaskFailed" in _history(execution), timeout=HANG_SECONDS)
    return later, execution


def test_a_retried_wait_takes_its_token_again(limits: StepFunctionsRequestLimits) -> None:
    # Given a wait whose first attempt fails before waiting (its queue is not there yet), retried
    later, execution = _first_attempt_failed(retry_after_seconds=2)
    sqs = boto3.client("sqs")
    sqs.create_queue(QueueName="later")

    # When the retry waits, its token is taken (moto gives it the first attempt's token)
    sent = eventually(lambda: sqs.receive_message(QueueUrl=later).get("Messages"), timeout=HANG_SECONDS)
    token = json.loads(sent[0]["Body"])["token"]
    eventually(lambda: _history(execution).count("TaskSubmitted") == 1, timeout=HANG_SECONDS)
    boto3.client("stepfunctions").send_task_success(taskToken=token, output='{"approved": true}')

    # Then the wait ends with it
    eventually(lambda: _status(execution) == "SUCCEEDED", timeout=HANG_SECONDS)
    assert _answers(token) == CLOSED


def test_with_the_stricter_reading_a_failed_attempts_token_is_refused_until_its_retry() -> None:
    # Given the stand-in playing the reading a fault plan chooses (refuse_failed_attempt_tokens),
    # and a wait whose first attempt fails (its queue is not there yet), retried 3 s later
    tokens: list[str] = []
    real_attempt = ExecutionState._evaluate_with_timeout

    def recording(state: ExecutionState, env: Any) -> None:
        task = env.states.context_object.context_object_data.get("Task")
        if task and task.get("Token"):
            tokens.append(task["Token"])
        real_attempt(state, env)

    stand_in = StepFunctionsRequestLimits()
    stand_in.failed_attempt_tokens_refused = True
    with mock.patch.object(ExecutionState, "_evaluate_with_timeout", recording), _on_moto(stand_in):
        _, execution = _first_attempt_failed(retry_after_seconds=3)

        # Then between the failure and the retry, its token is refused as a closed task's
        assert _status(execution) == "RUNNING"
        assert _answers(tokens[0]) == CLOSED

        # And the retry's attempt takes it again (moto gives it the same token) until answered
        boto3.client("sqs").create_queue(QueueName="later")
        eventually(lambda: _history(execution).count("TaskSubmitted") == 1, timeout=HANG_SECONDS)
        boto3.client("stepfunctions").send_task_success(taskToken=tokens[-1], output='{"approved": true}')
        eventually(lambda: _status(execution) == "SUCCEEDED", timeout=HANG_SECONDS)
        sfn = boto3.client("stepfunctions")
        assert json.loads(sfn.describe_execution(executionArn=execution)["output"]) == {"approved": True}
