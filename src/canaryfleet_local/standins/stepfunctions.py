"""Step Functions: state machines that execute with their substitutions, SendTaskFailure's and
StopExecution's causes, and the execution status change events."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, cast
from unittest import mock

from moto.core.exceptions import AWSError
from moto.core.models import botocore_stubber
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.stepfunctions.parser.api import (
    ExecutionStatus,
    HistoryEventType,
    StateMachineType,
    TaskFailedEventDetails,
)
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackTimeoutError, HeartbeatTimeoutError
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.stepfunctions.parser.asl.utils.json_path import NoSuchJsonPathError
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend, stepfunctions_parser_backends
from moto.stepfunctions.responses import StepFunctionResponse

from canaryfleet_local.standins.aws_clients import shared_client
from canaryfleet_local.standins.eventbridge import emit_service_event, service_event

logger = logging.getLogger(__name__)


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


# Errors no Retry retries and no Catch catches ("Handling errors in Step Functions workflows",
# Error names): "States.ALL ... can't catch the States.DataLimitExceeded terminal error or Runtime
# error types"; States.Runtime "isn't retriable, and will always cause the execution to fail";
# States.DataLimitExceeded is "a terminal error that can't be caught by the States.ALL error type".
_UNCATCHABLE_BY_ALL = frozenset(
    {StatesErrorNameType.StatesRuntime, StatesErrorNameType.StatesStatesDataLimitExceeded}
)


@contextlib.contextmanager
def runtime_errors_end_the_execution() -> Iterator[None]:
    """Stands in for States.Runtime and States.DataLimitExceeded being terminal.

    On AWS, a ``Parameters`` path that matches nothing in the state's input (``States.Runtime``:
    "The JSONPath ... could not be found in the input") or a payload over its quota fails the
    execution, whatever the state's Retry and Catch say: ``States.ALL`` matches neither, and
    ``States.Runtime`` named on its own matches nothing either. moto's interpreter matched them
    like any error, so a Catch ``[States.ALL]`` went on as if the state had failed the usual way:
    a definition that AWS would fail ran to its end here.

    moto names States.Runtime, beside a path that matches nothing (``NoSuchJsonPathError``), any
    exception a task raised (``ExecutionState._from_error``: "an unhandled exception that lead to
    a State.Runtime error"), the local cloud's own included, which AWS has no counterpart of: a
    task of the service failed. That one is ``States.TaskFailed`` here ("A Task state failed
    during the execution"), retried and caught like any task failure, and logged with its
    exception, so the stand-in never makes a failure of the local cloud end a rollout where AWS
    would have caught it.
    """
    original = ErrorEqualsDecl._eval_body
    original_from_error = ExecutionState._from_error

    def eval_body(decl: ErrorEqualsDecl, env: Environment) -> None:
        error_name = env.stack[-1]
        typ = getattr(error_name, "typ", None) if isinstance(error_name, StatesErrorName) else None
        if typ in _UNCATCHABLE_BY_ALL and (
            typ is StatesErrorNameType.StatesRuntime or ErrorEqualsDecl._STATE_ALL_ERROR in decl.error_names
        ):
            env.stack.pop()
            env.stack.append(False)
            return
        original(decl, env)

    def from_error(state: ExecutionState, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, FailureEventException | NoSuchJsonPathError):  # the definition's: States.Runtime
            return original_from_error(state, env, ex)
        logger.warning("a task failed on an exception of the local cloud", exc_info=ex)
        return FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
            event_type=HistoryEventType.TaskFailed,
            # One detail, as moto's own failure events give it (EventDetails is a TypedDict of all).
            event_details=cast(
                "EventDetails",
                {
                    "taskFailedEventDetails": TaskFailedEventDetails(
                        error=StatesErrorNameType.StatesTaskFailed.to_name(),
                        cause=f"{type(ex).__name__}: {ex}"[:TASK_FAILURE_CAUSE_LIMIT],
                    )
                },
            ),
        )

    with (
        mock.patch.object(ErrorEqualsDecl, "_eval_body", eval_body),
        mock.patch.object(ExecutionState, "_from_error", from_error),
    ):
        yield


# An execution's statuses once it has ended (botocore stepfunctions model, ExecutionStatus).
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# How long StopExecution waits for the stopped execution's thread to record its end itself.
_STOP_SETTLES_WITHIN_SECONDS = 0.5


@contextlib.contextmanager
def stop_execution_aborts_at_once() -> Iterator[None]:
    """Stands in for StopExecution ending an execution when it answers, with its error and cause.

    AWS: StopExecution "Stops an execution" and answers the date it stopped (its output's
    ``stopDate``, required: botocore ``stepfunctions`` ``StopExecutionOutput``; API Reference,
    StopExecution); the execution is ABORTED from then on, whichever state it was in, and its
    ``ExecutionAborted`` history event keeps the request's ``error`` and ``cause`` (API
    Reference, ExecutionAbortedEventDetails). moto differs three ways, each
    mended here: it stops every execution with an empty error and cause, and answers without
    ``stopDate``; a state waiting for a task token (``.waitForTaskToken``) sleeps on until its
    own timeout; and that timeout's error then overwrites the stop, so the execution ends FAILED
    with ``States.Timeout``. Here the stop wakes the execution's task-token waits, and an
    execution once stopped stays stopped: a later error or timeout of its thread changes nothing,
    nor does its end, when a synchronous task it was running returns after the stop (the
    execution was ABORTED at the stop, with the stop's date).
    """

    def stop_execution(response: StepFunctionResponse) -> ActionResult:
        backend: Any = response.stepfunction_backend
        execution = backend.describe_execution(response._get_param("executionArn"))
        stop_date = utcnow()
        execution.stop(
            stop_date=stop_date, error=response._get_param("error"), cause=response._get_param("cause")
        )
        worker = execution.exec_worker
        if worker is not None:
            for endpoint in list(worker.env.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()
        # The execution's thread records the end as soon as its state wakes (milliseconds); one
        # busy in a synchronous call notices only when the call returns, and is ABORTED already.
        deadline = time.monotonic() + _STOP_SETTLES_WITHIN_SECONDS
        while execution.exec_status == ExecutionStatus.RUNNING and time.monotonic() < deadline:
            time.sleep(0.002)
        if execution.exec_status == ExecutionStatus.RUNNING:
            execution.exec_status, execution.stop_date = ExecutionStatus.ABORTED, stop_date
        return ActionResult({"stopDate": execution.stop_date or stop_date})

    original_set_error = Environment.set_error
    original_set_timed_out = Environment.set_timed_out
    original_reflect: Callable[[BaseExecutionWorkerCommunication], None] = (
        BaseExecutionWorkerCommunication._reflect_execution_status
    )

    def reflect_execution_status(communication: BaseExecutionWorkerCommunication) -> None:
        # A stop already recorded (above, while the thread was busy) keeps its date.
        if communication.execution.exec_status != ExecutionStatus.ABORTED:
            original_reflect(communication)

    def set_error(env: Environment, error: Any) -> None:
        if not isinstance(env._program_state, ProgramStopped):
            original_set_error(env, error)

    def set_timed_out(env: Environment) -> None:
        if not isinstance(env._program_state, ProgramStopped):
            original_set_timed_out(env)

    with (
        mock.patch.object(StepFunctionResponse, "stop_execution", stop_execution),
        mock.patch.object(Environment, "set_error", set_error),
        mock.patch.object(Environment, "set_timed_out", set_timed_out),
        mock.patch.object(
            BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect_execution_status
        ),
    ):
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
# StartExecutionInput.name is the model's Name shape (1 to 80 long), whose documentation lists what
# "A name must not contain": white space, brackets < > { } [ ], wildcard characters ? *, special
# characters " # % \ ^ | ~ ` $ & , ; : /, control characters (U+0000-001F, U+007F-009F,
# U+FFFE-FFFF), surrogates (U+D800-DFFF) and invalid characters (U+10FFFF); StartExecution's errors
# include InvalidName ("The provided name is not valid"). moto checks names only in the backend that
# does not execute, and not the last three groups.
EXECUTION_NAME_LIMIT = 80
_NAME_REFUSED = re.compile(
    r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/'  # white space, brackets, wildcards, special characters
    r"\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff\U0010ffff]"  # control, non-characters, surrogates
)


class StepFunctionsValidationError(AWSError):
    TYPE = "ValidationException"
    STATUS = 400


class StepFunctionsInvalidName(AWSError):
    TYPE = "InvalidName"
    STATUS = 400


class TaskTimedOutError(AWSError):
    TYPE = "TaskTimedOut"
    STATUS = 400


class StepFunctionsRequestLimits:
    """Stands in for the Step Functions API's length constraints, which moto does not check, and
    for a task token's end.

    StartExecution's input and SendTaskSuccess's output are refused over 256 KiB (UTF-8 bytes), a
    task token over 2,048 characters, SendTaskFailure's error and cause over 256 and 32,768: each
    with ValidationException, before moto sees the request. So is an execution name over 80
    characters; one with a character a name must not contain is refused with InvalidName.

    SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat with the token of a task that has
    ended are refused with TaskTimedOut ("The task token has either expired or the task
    associated with the token has already been closed", the model's TaskTimedOut, an error of
    all three): a task ends when SendTaskSuccess or SendTaskFailure closed it, when its attempt
    ended otherwise (its ``TimeoutSeconds`` or ``HeartbeatSeconds`` ran out, it failed), and
    with its execution (stopped, or ended however). An attempt whose Lambda invocation failed
    leaves its token open: the state's Retry may attempt it again, with the same token here,
    and AWS does not document whether a retried attempt gets a new one, nor whether the failed
    attempt's token is taken until then. ``failed_attempt_tokens_refused`` plays the other
    reading (a fault plan's ``refuse_failed_attempt_tokens``): refused from the failure until
    the retry's attempt. moto knew only its own pool of tokens: it took a timed-out task's token
    while the execution ran on (its Catch had gone on) and, for SendTaskFailure, a stopped or
    ended execution's, which would tell canaryfleet that a late answer ended a wait it never
    ended. Unknown tokens are moto's own InvalidToken. moto gives a
    retried attempt its first attempt's token (FIDELITY.md, known differences): the token is
    taken again while the retry waits.
    """

    def __init__(self) -> None:
        self.refused: list[str] = []
        self.failed_attempt_tokens_refused = False
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

    def _refuse_name(self, name: object) -> None:
        if not isinstance(name, str):
            return  # no name: Step Functions draws a UUID (start_execution_names_unnamed_executions)
        self._refuse("name", name, EXECUTION_NAME_LIMIT, in_bytes=False)
        refused = _NAME_REFUSED.search(name)  # an empty name botocore refuses before sending (min 1)
        if refused is not None:
            self.refused.append("name")
            raise StepFunctionsInvalidName(f"Invalid Name: '{name}'")

    def _task_ended(self, backend: Any, token: str) -> bool:
        """Whether the task of ``token`` has ended (closed, or its attempt or execution over);
        False for a token this backend never issued, which moto answers InvalidToken."""
        if token in self._closed:
            return True
        for execution in backend._get_executions():
            env = getattr(execution.exec_worker, "env", None)
            if env is not None and token in env.callback_pool_manager._pool:
                return bool(execution.exec_status != ExecutionStatus.RUNNING or not env.is_running())
        return False

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
                if name == "start_execution":
                    limits._refuse_name(response._get_param("name"))
                token = response._get_param("taskToken")
                closes = name in ("send_task_success", "send_task_failure")
                with limits._lock:
                    if isinstance(token, str) and limits._task_ended(response.stepfunction_backend, token):
                        limits.refused.append("taskToken")
                        raise TaskTimedOutError(
                            "Task Timed Out: the task of this token has already been closed"
                        )
                    result = original(response)
                    if closes and token is not None:
                        limits._closed.add(token)
                return result

            return mock.patch.object(StepFunctionResponse, name, handler)

        original_attempt = ExecutionState._evaluate_with_timeout

        def attempt(state: ExecutionState, env: Environment) -> None:
            # One attempt of a state (its TimeoutSeconds runs here; a Retry makes another): a
            # callback task's token is open while the attempt lasts, and closed however it ends.
            task = env.states.context_object.context_object_data.get("Task")
            token = (
                task.get("Token")
                if isinstance(state, state_task_service_callback.StateTaskServiceCallback) and task
                else None
            )
            if token is None:
                original_attempt(state, env)
                return
            with limits._lock:
                limits._closed.discard(token)
            ended = True
            try:
                original_attempt(state, env)
            except (EvalTimeoutError, CallbackTimeoutError, HeartbeatTimeoutError):
                raise
            except Exception:
                # The task's Lambda invocation failed (refused, timed out, raised): its state's
                # Retry may attempt it again, with this same token here. Whether AWS gives a
                # retried attempt a new token is not documented (logic/approval.py,
                # _retried_approval; an answer AWS refused here is kept for the retry,
                # logic/approval_gate.py): the token is left open until an attempt or the
                # execution ends the task, unless the stricter reading is played.
                ended = limits.failed_attempt_tokens_refused
                raise
            finally:
                if ended:
                    with limits._lock:
                        limits._closed.add(token)

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
            mock.patch.object(ExecutionState, "_evaluate_with_timeout", attempt),
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


# "If the combined escaped input and escaped output sent to EventBridge exceeds 248 KiB, then the
# input will be excluded. Similarly, if the escaped output exceeds 248 KiB, then the output will be
# excluded" (Developer Guide, eventbridge-integration.html, Execution Status Change, Remarks).
STATUS_EVENT_PAYLOAD_LIMIT_BYTES = 248 * 1024


def _epoch_millis(date: datetime | None) -> int | None:
    return None if date is None else int(date.timestamp() * 1000)


def _escaped_bytes(text: str | None) -> int:
    return 0 if text is None else len(json.dumps(text).encode())


class StepFunctionsExecutionStatusEvents:
    """Stands in for Standard workflows sending "Step Functions Execution Status Change" events.

    https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html (Execution
    Status Change): each status change of a Standard execution (RUNNING, SUCCEEDED, FAILED,
    TIMED_OUT, ABORTED) is an event from ``aws.states`` on the default bus whose ``detail`` has
    ``executionArn``, ``stateMachineArn``, ``name``, ``status``, ``startDate`` and ``stopDate``
    (epoch milliseconds), ``input`` and ``output`` (JSON strings) with ``inputDetails`` and
    ``outputDetails``, and nothing more: no error or cause, which the execution's history keeps;
    https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-states.html: delivery is best
    effort. moto sends none. Here an execution's start emits RUNNING before its thread runs a
    state, a StopExecution ABORTED as it answers (the execution is ABORTED from then on, even
    while a synchronous task it was running has yet to return: stop_execution_aborts_at_once),
    and any other end the status moto has just given it, in the account and region of its ARN;
    each status once (a second StopExecution, or one of an ended execution, emits nothing). Input
    or output over the documented 248 KiB is left out (null, ``included`` false: how AWS writes
    an excluded payload is not shown). Express executions send no events. An event that cannot
    be emitted is logged, never raised into moto's execution thread.
    """

    def __init__(self) -> None:
        self._statuses: weakref.WeakKeyDictionary[Execution, str] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._silenced = False

    def silence(self) -> None:
        """Send no more events: the local cloud is closing, and the executions it stops then are
        its housekeeping, not operators' stops to recover from."""
        self._silenced = True

    def _claim(self, execution: Execution, status: str) -> bool:
        """True once per status of an execution, and for no status after its end."""
        with self._lock:
            previous = self._statuses.get(execution)
            if previous == status or previous in TERMINAL_STATUSES:
                return False
            self._statuses[execution] = status
            return True

    @staticmethod
    def detail(execution: Execution) -> dict[str, Any]:
        described: dict[str, Any] = dict(execution.to_describe_output())
        status = str(ExecutionStatus(described["status"]).value)
        execution_input: str | None = described["input"]
        output: str | None = described.get("output")
        input_included = _escaped_bytes(execution_input) + _escaped_bytes(output) <= (
            STATUS_EVENT_PAYLOAD_LIMIT_BYTES
        )
        output_included = _escaped_bytes(output) <= STATUS_EVENT_PAYLOAD_LIMIT_BYTES
        return {
            "executionArn": described["executionArn"],
            "stateMachineArn": described["stateMachineArn"],
            "name": described["name"],
            "status": status,
            "startDate": _epoch_millis(described["startDate"]),
            "stopDate": _epoch_millis(described.get("stopDate")),
            "input": execution_input if input_included else None,
            "inputDetails": {"included": input_included},
            "output": output if output_included else None,
            "outputDetails": None if output is None else {"included": output_included},
        }

    def changed(self, execution: Execution) -> None:
        """Emit the execution's status, if it is new; never raises."""
        try:
            if self._silenced:
                return
            if execution.sm_type != StateMachineType.STANDARD or execution.exec_status is None:
                return
            status = str(execution.exec_status.value)
            if not self._claim(execution, status):
                return
            region, account = execution.exec_arn.split(":")[3:5]
            if not self._of_this_cloud(execution, account, region):
                return
            event = service_event(
                account,
                region,
                "aws.states",
                "Step Functions Execution Status Change",
                [execution.exec_arn],
                self.detail(execution),
            )
            emit_service_event(account, region, event)
        except Exception:
            logger.exception("no status change event for execution %s", getattr(execution, "exec_arn", "?"))

    @staticmethod
    def _of_this_cloud(execution: Execution, account: str, region: str) -> bool:
        """Whether the execution is one the running cloud knows. moto's execution threads can end
        after the cloud that started them has closed and the next one (whose state machines have
        the same ARNs) is up: their end is no event of this cloud's. Housekeeping, not AWS."""
        backend: Any = stepfunctions_parser_backends[account][region]
        try:
            return bool(backend.describe_execution(execution.exec_arn) is execution)
        except Exception:  # ExecutionDoesNotExist, or a state machine this cloud does not have
            return False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        stand_in = self
        original_start: Callable[[ExecutionWorker], None] = ExecutionWorker.start
        original_terminated: Callable[[BaseExecutionWorkerCommunication], None] = (
            BaseExecutionWorkerCommunication.terminated
        )

        def start(worker: ExecutionWorker) -> None:
            # Execution.start has just made the execution RUNNING; its thread has not begun.
            communication = worker._execution_communication
            if isinstance(communication, BaseExecutionWorkerCommunication):
                stand_in.changed(communication.execution)
            original_start(worker)

        def terminated(communication: BaseExecutionWorkerCommunication) -> None:
            original_terminated(communication)  # the end status, as DescribeExecution now shows it
            stand_in.changed(communication.execution)

        # StopExecution's own (stop_execution_aborts_at_once, when installed before this).
        original_stop: Callable[[StepFunctionResponse], Any] = StepFunctionResponse.stop_execution

        def stop_execution(response: StepFunctionResponse) -> Any:
            answer = original_stop(response)  # ABORTED now, if it was running
            backend: Any = response.stepfunction_backend
            try:
                execution = backend.describe_execution(response._get_param("executionArn"))
            except Exception:  # the ARN of no execution: moto has already refused the request
                return answer
            stand_in.changed(execution)
            return answer

        with (
            mock.patch.object(ExecutionWorker, "start", start),
            mock.patch.object(BaseExecutionWorkerCommunication, "terminated", terminated),
            mock.patch.object(StepFunctionResponse, "stop_execution", stop_execution),
        ):
            yield
