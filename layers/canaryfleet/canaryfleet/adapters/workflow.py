"""Rollout executions on Step Functions: starting one, and whether one still runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.models.rollout import ExecutionInput

# The end of an execution that does not exist (or tells no stop date): long ago.
_LONG_AGO = datetime.min.replace(tzinfo=UTC)


class StepFunctionsExecutions:
    """Whether an execution still runs, and since when it has not (the ``ExecutionStatus`` port)."""

    def is_running(self, execution_arn: str) -> bool:
        return self.ended_at(execution_arn) is None

    def ended_at(self, execution_arn: str) -> datetime | None:
        try:
            described = client("stepfunctions").describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return _LONG_AGO
            raise
        if described["status"] == "RUNNING":
            return None
        return described.get("stopDate") or _LONG_AGO


# Step Functions execution names are 1 to 80 characters (botocore stepfunctions model, Name).
EXECUTION_NAME_LENGTH = 80
_RECOVERY_SUFFIX = "-recovery-"
_RECOVERY_DIGEST = 18


def recovery_name(stopped_execution_arn: str) -> str:
    """The recovery execution's name: the stopped one's (cut to fit) and a digest of its ARN, so
    a repeated event starts no second recovery and two long names never share one."""
    name = stopped_execution_arn.rsplit(":", 1)[-1]
    digest = hashlib.sha256(stopped_execution_arn.encode()).hexdigest()[:_RECOVERY_DIGEST]
    room = EXECUTION_NAME_LENGTH - len(_RECOVERY_SUFFIX) - _RECOVERY_DIGEST
    return f"{name[:room]}{_RECOVERY_SUFFIX}{digest}"


# An ended execution's history ends with the event of its end (botocore stepfunctions model,
# HistoryEvent); a few events are read, newest first, in case others are recorded after it.
_LAST_EVENTS = 20
_END_DETAILS = {
    "ExecutionAborted": "executionAbortedEventDetails",
    "ExecutionFailed": "executionFailedEventDetails",
    "ExecutionTimedOut": "executionTimedOutEventDetails",
}


@dataclass(frozen=True)
class DescribedExecution:
    status: str
    input: str | None
    error: str | None
    cause: str | None


class StepFunctionsRolloutWorkflow:
    """The rollout state machine's executions (the ``RolloutExecutions`` and
    ``RecoveryExecutions`` ports)."""

    def __init__(self, state_machine_arn: str) -> None:
        self._state_machine_arn = state_machine_arn

    def execution_arn(self, name: str) -> str:
        return self._state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"

    def start(self, execution: ExecutionInput) -> tuple[str, bool]:
        try:
            response = client("stepfunctions").start_execution(
                stateMachineArn=self._state_machine_arn,
                name=execution.ref.rollout_id,
                input=execution.model_dump_json(),
            )
        except ClientError as exc:
            # The name is derived from the object version: it exists means this event was seen.
            if error_code(exc) == "ExecutionAlreadyExists":
                return self.execution_arn(execution.ref.rollout_id), False
            raise
        return str(response["executionArn"]), True

    def describe(self, execution_arn: str) -> DescribedExecution | None:
        """Its input (DescribeExecution), and the error and cause of its end: the history's last
        ExecutionAborted, ExecutionFailed or ExecutionTimedOut event (GetExecutionHistory, newest
        first), which keeps what StopExecution was given as well as a failure's."""
        sfn = client("stepfunctions")
        try:
            described = sfn.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise
        events = sfn.get_execution_history(
            executionArn=execution_arn, reverseOrder=True, maxResults=_LAST_EVENTS
        )["events"]
        end: Any = next((event for event in events if event["type"] in _END_DETAILS), None)
        details: dict[str, str] = dict(end.get(_END_DETAILS[end["type"]], {})) if end else {}
        return DescribedExecution(
            described["status"],
            described.get("input"),
            details.get("error") or described.get("error"),
            details.get("cause") or described.get("cause"),
        )

    def start_recovery(self, execution: ExecutionInput) -> tuple[str, bool]:
        assert execution.recovery is not None, "a recovery execution names the execution it takes over"
        name = recovery_name(execution.recovery.stopped_execution)
        try:
            response = client("stepfunctions").start_execution(
                stateMachineArn=self._state_machine_arn, name=name, input=execution.model_dump_json()
            )
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return self.execution_arn(name), False
            raise
        return str(response["executionArn"]), True
