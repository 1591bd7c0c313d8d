"""Step Functions: state machines that execute with their substitutions, and SendTaskFailure's cause."""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.core.exceptions import AWSError
from moto.core.models import botocore_stubber
from moto.core.responses import EmptyResult
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from canaryfleet_local.standins.aws_clients import shared_client


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
    client = shared_client("stepfunctions")
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


@contextlib.contextmanager
def start_execution_names_unnamed_executions() -> Iterator[None]:
    """Stands in for StartExecution naming an execution that the request does not name.

    The StartExecution API reference (``name``): "If you don't provide a name for the execution,
    Step Functions automatically generates a universally unique identifier (UUID) as the
    execution name." moto's executing backend names every such execution ``None``: they all get
    one ARN, a second one with the same input is taken for a retry of the first, and a
    ``$$.Execution.Id`` no longer tells them apart. (moto's non-executing backend does draw a
    UUID.) Used by every StartExecution without a name: the approval gate's tests, the bench's
    polling baseline, and any caller that leaves naming to Step Functions.
    """
    original = StepFunctionsParserBackend.start_execution

    def start_execution(
        backend: StepFunctionsParserBackend,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        trace_header: Any = None,
    ) -> Any:
        return original(backend, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    with mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution):
        yield


# botocore's stepfunctions model (2016-11-23): StartExecutionInput.input and SendTaskSuccessInput.output
# are SensitiveData, max 262144, "Length constraints apply to the payload size, and are expressed as
# bytes in UTF-8 encoding"; TaskToken is 1 to 2048 long; SendTaskFailure's error (SensitiveError) at
# most 256 and cause (SensitiveCause) at most 32768. AWS answers a request that breaks a model
# constraint with ValidationException ("1 validation error detected: ..."). Inside an execution, a
# state's input or a task's result over 256 KiB fails with States.DataLimitExceeded, which moto's
# interpreter already raises (moto.stepfunctions.parser.quotas).
STEP_FUNCTIONS_PAYLOAD_LIMIT_BYTES = 262_144
TASK_TOKEN_LIMIT = 2_048
TASK_FAILURE_ERROR_LIMIT = 256
TASK_FAILURE_CAUSE_LIMIT = 32_768


class StepFunctionsValidationError(AWSError):
    TYPE = "ValidationException"
    STATUS = 400


class TaskTimedOutError(AWSError):
    TYPE = "TaskTimedOut"
    STATUS = 400


class StepFunctionsRequestLimits:
    """Stands in for the Step Functions API's length constraints, which moto does not check.

    StartExecution's input and SendTaskSuccess's output are refused over 256 KiB (UTF-8 bytes), a
    task token over 2,048 characters, SendTaskFailure's error and cause over 256 and 32,768: each
    with ValidationException, before moto sees the request. A token whose task was already closed
    by SendTaskSuccess or SendTaskFailure is refused with TaskTimedOut ("The task token has either
    expired or the task associated with the token has already been closed", the model's
    TaskTimedOut): moto accepts it again, which would tell canaryfleet a wait ended twice. Unknown
    tokens are moto's own InvalidToken.
    """

    def __init__(self) -> None:
        self.refused: list[str] = []
        self._closed: set[str] = set()
        self._lock = threading.RLock()

    def _refuse(self, member: str, value: str, limit: int, in_bytes: bool) -> None:
        size = len(value.encode()) if in_bytes else len(value)
        if size > limit:
            self.refused.append(member)
            raise StepFunctionsValidationError(
                f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {limit}"
            )

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        limits = self

        def checked(name: str, checks: tuple[tuple[str, int, bool], ...]) -> Any:
            original = getattr(StepFunctionResponse, name)  # send_task_failure may be a stand-in already

            def handler(response: StepFunctionResponse) -> Any:
                for member, limit, in_bytes in checks:
                    value = response._get_param(member)
                    if isinstance(value, str):
                        limits._refuse(member, value, limit, in_bytes)
                token = response._get_param("taskToken")
                closes = name in ("send_task_success", "send_task_failure")
                with limits._lock:
                    if token is not None and token in limits._closed:
                        limits.refused.append("taskToken")
                        raise TaskTimedOutError(
                            "Task Timed Out: the task of this token has already been closed"
                        )
                    result = original(response)
                    if closes and token is not None:
                        limits._closed.add(token)
                return result

            return mock.patch.object(StepFunctionResponse, name, handler)

        token = ("taskToken", TASK_TOKEN_LIMIT, False)
        with (
            checked("start_execution", (("input", STEP_FUNCTIONS_PAYLOAD_LIMIT_BYTES, True),)),
            checked("send_task_success", (token, ("output", STEP_FUNCTIONS_PAYLOAD_LIMIT_BYTES, True))),
            checked(
                "send_task_failure",
                (
                    token,
                    ("error", TASK_FAILURE_ERROR_LIMIT, False),
                    ("cause", TASK_FAILURE_CAUSE_LIMIT, False),
                ),
            ),
            checked("send_task_heartbeat", (token,)),
        ):
            yield


@contextlib.contextmanager
def one_client_per_service() -> Iterator[None]:
    """Not an AWS behaviour: moto's interpreter reuses one boto3 client per service and region.

    moto's Step Functions makes a new client for every Task it runs (``boto_client_for``): tens of
    milliseconds of botocore set-up each, a good part of a rollout's time on the local cloud. The
    clients it makes are all alike (fixed keys, no retries, the same timeouts) and a boto3 client
    is thread-safe, so one per service, region and endpoint serves every Task of this cloud.
    """
    original = boto_client.boto_client_for
    clients: dict[tuple[str, str, bool], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, botocore_stubber.enabled)
        with lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = original(region, service, state_credentials)
        return client

    # Each of moto's modules imported the function by name; the Lambda task's is the one that counts.
    users = {lambda_eval_utils.__name__: lambda_eval_utils}
    users.update(
        (name, module)
        for name, module in list(sys.modules.items())
        if name.startswith("moto.stepfunctions.parser")
        and getattr(module, "boto_client_for", None) is original
    )
    with contextlib.ExitStack() as patches:
        for module in users.values():
            patches.enter_context(mock.patch.object(module, "boto_client_for", boto_client_for))
        yield
