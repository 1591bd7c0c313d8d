"""Starting rollout executions."""

from __future__ import annotations

import abc

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.models.rollout import ExecutionInput


class RolloutWorkflow(abc.ABC):
    @abc.abstractmethod
    def execution_arn(self, name: str) -> str:
        """The ARN the execution named ``name`` has (or will have)."""

    @abc.abstractmethod
    def start(self, execution: ExecutionInput) -> tuple[str, bool]:
        """Start the execution named after the rollout; return (execution ARN, started now)."""


class StepFunctionsRolloutWorkflow(RolloutWorkflow):
    def __init__(self, state_machine_arn: str) -> None:
        self._state_machine_arn = state_machine_arn

    def execution_arn(self, name: str) -> str:
        return self._state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"

    def start(self, execution: ExecutionInput) -> tuple[str, bool]:
        try:
            response = client("stepfunctions").start_execution(
                stateMachineArn=self._state_machine_arn,
                name=execution.rollout_id,
                input=execution.model_dump_json(),
            )
        except ClientError as exc:
            # The name is derived from the object version: it exists means this event was seen.
            if error_code(exc) == "ExecutionAlreadyExists":
                return self.execution_arn(execution.rollout_id), False
            raise
        return str(response["executionArn"]), True
