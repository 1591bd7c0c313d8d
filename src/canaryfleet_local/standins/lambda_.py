"""Lambda: Invoke runs the real handler module in-process, each function in an execution
environment of its own (its copy of the layer's modules, its own variables)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import pkgutil
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from unittest import mock

import pydantic
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, lambda_backends

from canaryfleet_local.standins.iam import IAM_ENFORCEMENT_VARIABLE, FunctionRoleCredentials
from canaryfleet_local.standins.lambda_environment import LambdaExecutionEnvironmentVariables

if TYPE_CHECKING:  # the queue runs invocations of this runtime: each module names the other
    from canaryfleet_local.standins.lambda_async import AsyncInvocationQueue

# The package the RuntimeLayer ships; each function gets its own copy of its modules.
LAYER_PACKAGE = "canaryfleet"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FunctionCode:
    """Where a function's handler lives, from its CodeUri and Handler in template.yaml."""

    logical_id: str
    code_dir: Path
    handler: str

    @property
    def module_file(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_dir / (module.replace(".", "/") + ".py")

    @property
    def function_attr(self) -> str:
        return self.handler.rpartition(".")[2]


@dataclass
class Invocation:
    """One in-process invocation, kept for tests and timelines."""

    function: str
    logical_id: str
    invocation_type: str
    started: float
    seconds: float
    error_type: str | None
    request_id: str
    # The CPU time of the invoking thread: ``seconds`` without the time spent waiting for the
    # process's other threads (the bench's simulated instances, other functions' Tasks), which
    # on AWS run elsewhere.
    cpu_seconds: float = 0.0


class _LambdaContext:
    """The context object the Lambda runtime passes to a handler."""

    def __init__(self, name: str, arn: str, memory: int, timeout: int) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# logging's own lock, which guards its registry of loggers (getLogger takes it too).
_LOGGING_LOCK = logging._lock  # type: ignore[attr-defined]


def _new_sandbox_logger() -> None:
    """A cold start's Powertools Logger configures its ``logging`` logger afresh, as in a new sandbox.

    The function's copy of the layer is new, but ``logging``'s registry is the process's: it would
    hand the new Logger the logger of its service that an earlier local cloud's copy of the
    function configured, with that cloud's level and handler, and Powertools does not configure
    a logger it finds configured (its ``init`` mark). The registry entry of the function's service
    (``POWERTOOLS_SERVICE_NAME``) and its children are dropped first; whoever still holds the old
    logger keeps it.
    """
    service = os.environ.get("POWERTOOLS_SERVICE_NAME")
    if not service:
        return
    manager = logging.Logger.manager
    with _LOGGING_LOCK:
        for key in [k for k in manager.loggerDict if k == service or k.startswith(f"{service}.")]:
            del manager.loggerDict[key]


class LambdaInvokeInProcess:
    """Stands in for Lambda's Invoke (moto needs Docker, or only echoes the payload).

    Runs the function's real handler module, loaded from its CodeUri, with the environment
    variables of the function's configuration plus those the Lambda runtime sets, which that
    invocation alone sees (:class:`LambdaExecutionEnvironmentVariables`). One invocation runs
    at a time, because each function's copy of the layer's modules takes its place in the
    process's ``sys.modules``; async invocations ("Event", EventBridge targets) go through
    :class:`AsyncInvocationQueue`.

    With ``CANARYFLEET_LOCAL_IAM=enforce`` in the environment when it is made, each function
    runs with its own role's credentials and IAM checks its calls
    (:class:`FunctionRoleCredentials`).

    A function's ``Timeout`` is "The amount of time in seconds that Lambda allows a function to
    run before stopping it" (botocore lambda model, ``FunctionConfiguration.Timeout``). A handler
    in this process cannot be stopped: one that returns (or raises) past its function's timeout
    is answered as a timed-out invocation, a FunctionError whose payload is
    ``{"errorType": "Sandbox.Timedout", "errorMessage": "RequestId: <id> Error: Task timed out
    after <timeout>.00 seconds"}``, and its result is dropped. What it did before the deadline
    happened, as on AWS; what it did after the deadline is not undone (on AWS it never
    happened). The clock starts as the handler is called: the import of a cold start, Lambda's
    Init phase, is not counted, nor the wait for another invocation to end.
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self.functions: dict[str, FunctionCode] = {}
        self.invocations: list[Invocation] = []
        self._modules: dict[str, ModuleType] = {}
        self._layer_modules: dict[str, dict[str, ModuleType]] = {}
        self._lock = threading.RLock()
        self.queue: AsyncInvocationQueue | None = None
        build_shared_layer_modules()
        self.roles = (
            FunctionRoleCredentials(account_id, region)
            if os.environ.get(IAM_ENFORCEMENT_VARIABLE) == "enforce"
            else None
        )

    def register(self, function_name: str, code: FunctionCode) -> None:
        self.functions[function_name] = code

    @contextlib.contextmanager
    def _execution_environment(self, name: str) -> Iterator[None]:
        """Give the function its own copy of the layer's modules, as its own sandbox would.

        Module state (Logger service, cached settings and clients) then belongs to one
        function, as on AWS, although all functions share this interpreter. The models and
        errors, which hold none, are the process's (``SHARED_LAYER_MODULES``).
        """
        shared = {key: sys.modules.pop(key) for key in list(sys.modules) if _is_layer_module(key)}
        sys.modules.update(self._layer_modules.get(name, {}))
        try:
            yield
        finally:
            own = {key: sys.modules.pop(key) for key in list(sys.modules) if _is_layer_module(key)}
            self._layer_modules[name] = own
            sys.modules.update(shared)

    def module_state(self, function_name: str, module: str) -> ModuleType:
        """A layer module as one function's execution environment holds it (for inspection)."""
        return self._layer_modules[function_name][module]

    def _module(self, name: str, code: FunctionCode) -> ModuleType:
        module = self._modules.get(name)
        if module is None:  # a cold start: import the handler module once per function
            _new_sandbox_logger()
            spec = importlib.util.spec_from_file_location(
                f"canaryfleet_local_functions.{code.logical_id}", code.module_file
            )
            if spec is None or spec.loader is None:
                raise FileNotFoundError(code.module_file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._modules[name] = module
        return module

    @contextlib.contextmanager
    def no_invocation_running(self, timeout: float) -> Iterator[None]:
        """While the block runs no invocation does: the one running (an execution's Task on
        moto's thread) ends first, waited for up to ``timeout``. The local cloud closes its
        stand-ins so, and no handler is left reading an environment that was taken away."""
        acquired = self._lock.acquire(timeout=timeout)
        try:
            yield
        finally:
            if acquired:
                self._lock.release()

    def run(
        self, function_name: str, payload: bytes | str | None, invocation_type: str
    ) -> tuple[bytes, bool]:
        """Invoke once; return the response payload and whether the function failed."""
        backend: LambdaBackend = lambda_backends[self.account_id][self.region]
        fn = backend.get_function(function_name)
        name = fn.function_name
        code = self.functions.get(name)
        if code is None:
            raise KeyError(f"function {name} has no handler registered with the local cloud")
        event = json.loads(payload) if payload else {}
        runtime_env = {
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "LAMBDA_TASK_ROOT": str(code.code_dir),
            # There is no X-Ray daemon to send segments to.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        if self.roles is not None:
            runtime_env.update(self.roles.environment(fn.role))
        with (
            self._lock,
            LambdaExecutionEnvironmentVariables.invocation({**fn.environment_vars, **runtime_env}),
            self._execution_environment(name),
        ):
            timeout = int(fn.timeout)
            context = _LambdaContext(name, fn.function_arn, int(fn.memory_size), timeout)
            started = time.monotonic()
            started_cpu = time.thread_time()
            error_type: str | None = None
            handler_started = started
            try:
                handler = getattr(self._module(name, code), code.function_attr)
                handler_started = time.monotonic()
                result = handler(event, context)
                body = json.dumps(result, default=str).encode()
            except Exception as exc:  # the Lambda runtime turns any exception into a FunctionError
                error_type = type(exc).__name__
                body = json.dumps(
                    {
                        "errorMessage": str(exc),
                        "errorType": error_type,
                        "requestId": context.aws_request_id,
                        "stackTrace": traceback.format_tb(exc.__traceback__),
                    }
                ).encode()
            ran = time.monotonic() - handler_started
            if ran > timeout:
                error_type, body = _timed_out(context.aws_request_id, timeout)
                logger.warning(
                    "%s: the handler ran %.2f s, past the function's %d-s timeout: answered as timed out",
                    name,
                    ran,
                    timeout,
                )
            self.invocations.append(
                Invocation(
                    function=name,
                    logical_id=code.logical_id,
                    invocation_type=invocation_type,
                    started=started,
                    seconds=time.monotonic() - started,
                    error_type=error_type,
                    request_id=context.aws_request_id,
                    cpu_seconds=time.thread_time() - started_cpu,
                )
            )
        return body, error_type is not None

    def backend_invoke(
        self,
        backend: LambdaBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        """Replacement for moto's ``LambdaBackend.invoke``."""
        backend.get_function(function_name, qualifier)  # unknown function: moto's own error
        invocation_type = (headers or {}).get("X-Amz-Invocation-Type") or "RequestResponse"
        LambdaPayloadQuotas.check_request(body, invocation_type)
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            assert self.queue is not None
            self.queue.submit_invoke(function_name, body)
            return b""
        payload, failed = self.run(function_name, body, invocation_type)
        payload, failed = LambdaPayloadQuotas.checked_response(payload, failed)
        if failed:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["Content-Length"] = str(len(payload))
        return payload

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        # A function, so that it binds as LambdaBackend's method: the backend comes first.
        def invoke(backend: LambdaBackend, *args: Any) -> bytes:
            return self.backend_invoke(backend, *args)

        with contextlib.ExitStack() as stack:
            # Installed once for the process: each invocation then sees its own variables, and
            # clients made on other threads (the simulator, tests) the process's credentials.
            stack.enter_context(LambdaExecutionEnvironmentVariables.installed())
            stack.enter_context(mock.patch.object(LambdaBackend, "invoke", invoke))
            if self.roles is not None:
                stack.enter_context(self.roles.installed())
            yield


TIMED_OUT = "Sandbox.Timedout"


def _timed_out(request_id: str, timeout: int) -> tuple[str, bytes]:
    """The error type and payload of an invocation Lambda stopped at its function's timeout."""
    message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
    return TIMED_OUT, json.dumps({"errorType": TIMED_OUT, "errorMessage": message}).encode()


class RequestTooLargeError(LambdaClientError):
    code = 413

    def __init__(self, message: str) -> None:
        super().__init__("RequestTooLargeException", message)


class LambdaPayloadQuotas:
    """Stands in for Lambda's invocation payload quotas, which moto does not check.

    "For synchronous invocations, the maximum payload size is 6 MB. For asynchronous invocations,
    the maximum payload size is 1 MB" (Invoke, botocore's lambda model 2015-03-31, and "Lambda
    quotas": https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html, 6 MB each for
    the request and the response). A request over the quota is refused with
    RequestTooLargeException (413, the model's error for it); a synchronous response over it fails
    the invocation with ``Function.ResponseSizeTooLarge``, as the Lambda service reports it.
    """

    SYNC_LIMIT_BYTES = 6 * 1024 * 1024
    ASYNC_LIMIT_BYTES = 1024 * 1024

    @classmethod
    def check_request(cls, body: Any, invocation_type: str) -> None:
        size = len(body.encode() if isinstance(body, str) else bytes(body or b""))
        limit = cls.ASYNC_LIMIT_BYTES if invocation_type == "Event" else cls.SYNC_LIMIT_BYTES
        if size > limit:
            raise RequestTooLargeError(
                f"{size} byte payload is too large for the {invocation_type} invocation type "
                f"(limit {limit} bytes)"
            )

    @classmethod
    def checked_response(cls, payload: bytes, failed: bool) -> tuple[bytes, bool]:
        if len(payload) <= cls.SYNC_LIMIT_BYTES:
            return payload, failed
        error = {
            "errorMessage": "Response payload size exceeded maximum allowed payload size "
            f"({cls.SYNC_LIMIT_BYTES} bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
        return json.dumps(error).encode(), True


# The layer's models and errors: class definitions only, no module state, read nothing from the
# environment (held by tests/integration/test_local_cloud_speedups.py). Imported once for the
# process and shared by every function's copy, not built again for each function of each cloud.
SHARED_LAYER_MODULES = (f"{LAYER_PACKAGE}.models", f"{LAYER_PACKAGE}.errors")


_shared_built = threading.Lock()


def build_shared_layer_modules() -> None:
    """Import the shared modules and build every model's validator now, once for the process.

    The models defer their build to first use (for cold starts on AWS), and pydantic 2.13's
    deferred build is not thread-safe (pydantic issues 11849 and 13419): shared by the
    functions, the simulator and the CLI's threads, they are built here, on one thread, first.
    """
    with _shared_built:
        for module in shared_layer_modules():
            for value in vars(module).values():
                own = isinstance(value, type) and value.__module__ == module.__name__
                if own and issubclass(value, pydantic.BaseModel) and not value.__pydantic_complete__:
                    value.model_rebuild()


def shared_layer_modules() -> list[ModuleType]:
    """Each of ``SHARED_LAYER_MODULES`` and the modules of its package, imported."""
    modules = []
    for shared in SHARED_LAYER_MODULES:
        package = importlib.import_module(shared)
        found = pkgutil.iter_modules(getattr(package, "__path__", []))
        modules += [package, *(importlib.import_module(f"{shared}.{m.name}") for m in found)]
    return modules


_SHARED_PREFIXES = tuple(f"{shared}." for shared in SHARED_LAYER_MODULES)


def _is_layer_module(name: str) -> bool:
    # Asked of every module in sys.modules, twice per invocation: string methods only.
    if not name.startswith(LAYER_PACKAGE):
        return False
    if name in SHARED_LAYER_MODULES or name.startswith(_SHARED_PREFIXES):
        return False
    return name == LAYER_PACKAGE or name.startswith(f"{LAYER_PACKAGE}.")
