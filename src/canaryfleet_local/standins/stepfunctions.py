"""Step Functions: state machines that execute with their substitutions, and SendTaskFailure's cause."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
from moto.core.responses import EmptyResult
from moto.stepfunctions.responses import StepFunctionResponse


def create_executable_state_machine(
    name: str, definition: str, substitutions: dict[str, str], role_arn: str
) -> str:
    """Stands in for ``DefinitionSubstitutions`` on ``AWS::StepFunctions::StateMachine``.

    moto's CloudFormation ignores the definition and its substitutions and keeps the state
    machine in a backend that never executes. This creates it, under the same name and so
    the same ARN, through the Step Functions API, which executes it.
    """
    resolved = definition
    for key, value in substitutions.items():
        resolved = resolved.replace("${" + key + "}", value)
    left = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", resolved)))
    if left:
        raise ValueError(f"state machine {name}: no DefinitionSubstitutions for {', '.join(left)}")
    client = boto3.client("stepfunctions")
    response = client.create_state_machine(name=name, definition=resolved, roleArn=role_arn, type="STANDARD")
    return str(response["stateMachineArn"])


@contextlib.contextmanager
def send_task_failure_with_cause() -> Iterator[None]:
    """Stands in for SendTaskFailure's ``cause``, which moto's response handler drops.

    Without it every callback failure (an alarm, a rejection, an abort) would reach the
    state machine's Catch with an empty Cause, and the rollback could not say why.
    """

    def send_task_failure(response: StepFunctionResponse) -> EmptyResult:
        backend: Any = response.stepfunction_backend  # the executing backend takes a cause
        backend.send_task_failure(
            response._get_param("taskToken"),
            error=response._get_param("error"),
            cause=response._get_param("cause"),
        )
        return EmptyResult()

    with mock.patch.object(StepFunctionResponse, "send_task_failure", send_task_failure):
        yield
