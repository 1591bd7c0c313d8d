"""Rollout executions on Step Functions: starting one, and whether one still runs."""

from __future__ import annotations

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.models.rollout import ExecutionInput


class StepFunctionsExecutions:
    """Whether an execution still runs (the ``ExecutionStatus`` port)."""

    def is_running(self, execution_arn: str) -> bool:
        try:
            status = client("stepfunctions").describe_execution(executionArn=execution_arn)["status"]
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return False
            raise
        return bool(status == "RUNNING")


class StepFunctionsRolloutWorkflow:
    """The rollout state machine's executions (the ``RolloutExecutions`` port)."""

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
