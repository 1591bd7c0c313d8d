"""Every stand-in for an AWS behaviour that moto lacks, in one place.

Each class is named after the AWS behaviour it replaces and says which moto gap it fills.
Nothing outside this module patches moto. The stand-ins are installed by
:class:`canaryfleet_local.cloud.LocalCloud` for the life of one local cloud and removed
after it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast
from unittest import mock

import boto3
import botocore.loaders
import botocore.session
from moto.awslambda.models import LambdaBackend, lambda_backends
from moto.core.common_models import CloudFormationModel
from moto.events.models import Rule
from moto.events.utils import EventMessageType, EventTemplateParser
from moto.s3 import notifications as s3_notifications
from moto.s3.models import s3_backends

# --------------------------------------------------------------------------------------
# Lambda: Invoke runs the real handler module in-process
# --------------------------------------------------------------------------------------

# The package the RuntimeLayer ships; each function gets its own copy of its modules.
LAYER_PACKAGE = "canaryfleet"


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


# Opt-in: CANARYFLEET_LOCAL_IAM=enforce runs every function under its own role's credentials,
# and IAM checks each call made with them.
IAM_ENFORCEMENT_VARIABLE = "CANARYFLEET_LOCAL_IAM"

# The IAM prefix of services whose signing name differs from it.
_IAM_PREFIX_OF_SIGNING_NAME = {"monitoring": "cloudwatch"}

# A transaction is authorised by the actions of its parts (there is no TransactWriteItems grant).
_TRANSACTION_PARTS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


class FunctionRoleCredentials:
    """Stands in for Lambda giving a function its execution role's credentials, and for IAM
    checking every call made with them (moto checks no call unless told to, and then all).

    Each function gets credentials of ``sts:AssumeRole`` on its own role, as the Lambda
    runtime puts them in its environment. A request signed with them is checked by moto's
    IAM: signature, then the role's inline policies. Requests signed otherwise (the local
    cloud itself, the fleet simulator, tests) are not checked, as on AWS they would come from
    an administrator. moto knows the resource of a request only for S3 and SQS (elsewhere it
    passes "*", which no ARN in a policy matches): for the other services the check is on
    the action alone, so it catches a missing action, not an ARN that is too narrow.
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._by_role: dict[str, dict[str, str]] = {}
        self._access_keys: set[str] = set()
        # (caller ARN, action) of each check, for tests: how often it was allowed; what was denied.
        self.allowed: dict[tuple[str, str], int] = {}
        self.denied: list[tuple[str, str]] = []

    def environment(self, role_arn: str) -> dict[str, str]:
        """The credential variables the Lambda runtime sets for a function of this role."""
        from moto.sts.models import sts_backends

        credentials = self._by_role.get(role_arn)
        if credentials is None:
            backend = sts_backends[self.account_id]["aws"]
            session = role_arn.rsplit("/", 1)[-1]
            assumed = backend.assume_role(
                region_name=self.region,
                role_session_name=session[:64],
                role_arn=role_arn,
                policy="",
                duration=43200,
                external_id="",
            )
            credentials = {
                "AWS_ACCESS_KEY_ID": assumed.access_key_id,
                "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
                "AWS_SESSION_TOKEN": assumed.session_token,
            }
            self._by_role[role_arn] = credentials
            self._access_keys.add(assumed.access_key_id)
        return credentials

    def _checked(self, authorization: str) -> bool:
        access_key = authorization.partition("Credential=")[2].partition("/")[0]
        return access_key in self._access_keys

    def authorize(self, request: Any, iam_request_cls: type, resource: str) -> None:
        """Check one request signed with a function's credentials, as IAM would."""
        from urllib.parse import urlparse

        from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult

        query = urlparse(request.uri).query
        iam_request = iam_request_cls(
            account_id=request.current_account,
            method=request.method,
            path=request.raw_path + (f"?{query}" if query else ""),
            data=request.data,
            body=request.raw_body,
            headers=request.headers,
            action=request._get_action(),
        )
        iam_request.check_signature()
        service, _, operation = iam_request._action.partition(":")
        action = f"{_IAM_PREFIX_OF_SIGNING_NAME.get(service, service)}:{operation}"
        actions = [action]
        if action in ("dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"):
            parts = json.loads(request.raw_body or b"{}").get("TransactItems", [])
            actions = sorted({_TRANSACTION_PARTS[kind] for item in parts for kind in item})
        statements = [
            statement
            for policy in iam_request._access_key.collect_policies()
            for statement in _policy_statements(policy, IAMPolicy)
        ]
        for wanted in actions:
            results = {
                IAMPolicyStatement(
                    statement if resource != "*" else {**statement, "Resource": "*"}
                ).is_action_permitted(wanted, resource)
                for statement in statements
            }
            caller = (iam_request._access_key.arn, wanted)
            if PermissionResult.DENIED in results or PermissionResult.PERMITTED not in results:
                self.denied.append(caller)
                iam_request._action = wanted
                iam_request._raise_access_denied()
            self.allowed[caller] = self.allowed.get(caller, 0) + 1

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from moto.core.authorization import ActionAuthenticatorMixin

        checker = self
        unchecked = ActionAuthenticatorMixin._authenticate_and_authorize_action

        def authenticate_and_authorize(request: Any, iam_request_cls: type, resource: str = "*") -> None:
            if checker._checked(request.headers.get("Authorization", "")):
                checker.authorize(request, iam_request_cls, resource)
            else:
                unchecked(request, iam_request_cls, resource)

        with mock.patch.object(
            ActionAuthenticatorMixin, "_authenticate_and_authorize_action", authenticate_and_authorize
        ):
            yield


def _policy_statements(policy: Any, iam_policy_class: Any) -> list[dict[str, Any]]:
    """A policy's statements; moto keeps an inline policy from CloudFormation as a plain dict,
    which its own IAMPolicy does not read."""
    if isinstance(policy, dict) and "Statement" in policy:
        document = policy
    elif isinstance(policy, str):
        document = json.loads(policy)
    else:
        document = iam_policy_class(policy)._policy_json
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


class LambdaInvokeInProcess:
    """Stands in for Lambda's Invoke (moto needs Docker, or only echoes the payload).

    Runs the function's real handler module, loaded from its CodeUri, with the environment
    variables of the function's configuration plus those the Lambda runtime sets. One
    invocation runs at a time, because the environment of a process is shared; async
    invocations ("Event", EventBridge targets) go through :class:`AsyncInvocationQueue`.

    With ``CANARYFLEET_LOCAL_IAM=enforce`` in the environment when it is made, each function
    runs with its own role's credentials and IAM checks its calls
    (:class:`FunctionRoleCredentials`).
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
        self.roles = (
            FunctionRoleCredentials(account_id, region)
            if os.environ.get(IAM_ENFORCEMENT_VARIABLE) == "enforce"
            else None
        )
        self._invoking = threading.local()

    def register(self, function_name: str, code: FunctionCode) -> None:
        self.functions[function_name] = code

    @contextlib.contextmanager
    def _execution_environment(self, name: str) -> Iterator[None]:
        """Give the function its own copy of the layer's modules, as its own sandbox would.

        Module state (Logger service, cached settings and clients) then belongs to one
        function, as on AWS, although all functions share this interpreter.
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
            spec = importlib.util.spec_from_file_location(
                f"canaryfleet_local_functions.{code.logical_id}", code.module_file
            )
            if spec is None or spec.loader is None:
                raise FileNotFoundError(code.module_file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._modules[name] = module
        return module

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
            _environment({**fn.environment_vars, **runtime_env}),
            self._execution_environment(name),
        ):
            context = _LambdaContext(name, fn.function_arn, int(fn.memory_size), int(fn.timeout))
            started = time.monotonic()
            error_type: str | None = None
            self._invoking.active = True
            try:
                handler = getattr(self._module(name, code), code.function_attr)
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
            finally:
                self._invoking.active = False
            self.invocations.append(
                Invocation(
                    function=name,
                    logical_id=code.logical_id,
                    invocation_type=invocation_type,
                    started=started,
                    seconds=time.monotonic() - started,
                    error_type=error_type,
                    request_id=context.aws_request_id,
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
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            assert self.queue is not None
            self.queue.submit_invoke(function_name, body)
            return b""
        payload, failed = self.run(function_name, body, invocation_type)
        if failed:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["Content-Length"] = str(len(payload))
        return payload

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        runtime = self

        def invoke(
            backend: LambdaBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: dict[str, str],
        ) -> bytes:
            return runtime.backend_invoke(backend, function_name, qualifier, body, headers, response_headers)

        create_client = botocore.session.Session.create_client
        # While a function runs, the environment holds its role's credentials; a client that
        # another thread (the simulator, a test) makes meanwhile keeps the local cloud's own.
        own_credentials = {
            "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY"),
            "aws_session_token": os.environ.get("AWS_SESSION_TOKEN"),
        }

        def create_client_between_invocations(session: Any, *args: Any, **kwargs: Any) -> Any:
            if (
                runtime.roles is not None
                and not getattr(runtime._invoking, "active", False)
                and kwargs.get("aws_access_key_id") is None
                and getattr(session, "_credentials", None) is None  # none given to the session
            ):
                kwargs.update(own_credentials)
            # Creating a client reads the whole environment (proxy settings); it must not
            # see a variable vanish halfway, while an invocation puts its own back.
            with _ENVIRONMENT_LOCK:
                return create_client(session, *args, **kwargs)

        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch.object(LambdaBackend, "invoke", invoke))
            session_class = botocore.session.Session
            stack.enter_context(
                mock.patch.object(session_class, "create_client", create_client_between_invocations)
            )
            if self.roles is not None:
                stack.enter_context(self.roles.installed())
            yield


def _is_layer_module(name: str) -> bool:
    return name == LAYER_PACKAGE or name.startswith(LAYER_PACKAGE + ".")


# One process environment serves every in-process invocation. Changes to it, and readers
# that walk all of it (botocore's client creation), take this lock, so that no thread sees a
# variable listed and then gone.
_ENVIRONMENT_LOCK = threading.RLock()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    with _ENVIRONMENT_LOCK:
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update({name: str(value) for name, value in values.items()})
    try:
        yield
    finally:
        with _ENVIRONMENT_LOCK:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@dataclass
class FailedDelivery:
    """An async invocation or target delivery that failed every attempt (AWS: the DLQ)."""

    target: str
    error: str
    event: Any


# Errors of the Lambda service itself, before a handler ran: not the function's failures.
LAMBDA_SERVICE_EXCEPTION = "Lambda.ServiceException"
_REFUSED = frozenset({LAMBDA_SERVICE_EXCEPTION, "TooManyRequestsException"})


@dataclass
class AsyncInvocationQueue:
    """Stands in for Lambda's asynchronous invocation queue and EventBridge's delivery retries.

    Deliveries run on worker threads, after the call that caused them has returned, as on
    AWS. A function error (the handler raised, or timed out) is retried twice (Lambda's
    default for async invocations); an invocation the Lambda service refused before the
    handler ran goes back to the queue without using an attempt, as Lambda does with 429 and
    5xx for up to six hours (here: up to ``refusals`` times). What still fails is kept in
    ``failed`` for tests to read, and, where the function has a dead-letter queue
    (``dead_letter_queues``, by function name: moto drops ``DeadLetterConfig``), sent there as
    Lambda sends it: the event as the body, the request id and the error as attributes.
    """

    runtime: LambdaInvokeInProcess
    attempts: int = 3
    refusals: int = 20
    dead_letter_queues: dict[str, str] = field(default_factory=dict)
    failed: list[FailedDelivery] = field(default_factory=list)
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=4))
    _pending: int = 0
    _idle: threading.Condition = field(default_factory=threading.Condition)

    def _submit(self, work: Callable[[], None]) -> Future[None]:
        with self._idle:
            self._pending += 1

        def run() -> None:
            try:
                work()
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

        return self._pool.submit(run)

    def submit_invoke(self, function_name: str, payload: Any) -> None:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)

        def work() -> None:
            error = ""
            attempts = refusals = 0
            while attempts < self.attempts and refusals <= self.refusals:
                response, failed = self.runtime.run(function_name, body, "Event")
                if not failed:
                    return
                error = json.loads(response).get("errorType", "Unhandled")
                if error in _REFUSED:
                    refusals += 1
                else:
                    attempts += 1
            self.failed.append(
                FailedDelivery(target=function_name, error=error, event=json.loads(body or "{}"))
            )
            self._dead_letter(function_name, body, error)

        self._submit(work)

    def _dead_letter(self, function_name: str, body: str | bytes, error: str) -> None:
        queue_url = self.dead_letter_queues.get(function_name.rsplit(":", 1)[-1])
        if queue_url is None:
            return
        text = body.decode() if isinstance(body, bytes) else body
        boto3.client("sqs", region_name=self.runtime.region).send_message(
            QueueUrl=queue_url,
            MessageBody=text or "{}",
            MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": error or "Unhandled"},
            },
        )

    def submit_call(self, target: str, event: Any, call: Callable[[], None]) -> None:
        def work() -> None:
            error = ""
            for _ in range(self.attempts):
                try:
                    call()
                    return
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
            self.failed.append(FailedDelivery(target=target, error=error, event=event))

        self._submit(work)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no delivery is queued or running; False if that took longer than timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------------------
# EventBridge: rules deliver to Lambda functions and Step Functions state machines
# --------------------------------------------------------------------------------------


def _as_moto_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as moto's own deliveries (SQS, logs, buses) read it: as its put_events makes it.

    They take ``time`` and ``ingestion-time`` as Unix seconds (and write ``time`` back in ISO
    8601); service events are made as AWS sends them, with ``time`` in ISO 8601 and no
    ingestion time.
    """
    shaped = dict(event)
    if isinstance(shaped.get("time"), str):
        shaped["time"] = datetime.fromisoformat(shaped["time"].replace("Z", "+00:00")).timestamp()
    shaped.setdefault("ingestion-time", time.time())
    return shaped


class EventBridgeLambdaAndStateMachineTargets:
    """Stands in for EventBridge delivery to Lambda and Step Functions targets.

    moto matches rules and delivers only to SQS, logs and buses. Here a matching rule's
    Lambda targets are invoked asynchronously and its state machine targets start an
    execution; ``Input``, ``InputPath`` and ``InputTransformer`` apply as on AWS. Other
    targets keep moto's own delivery.
    """

    def __init__(self, queue: AsyncInvocationQueue, region: str) -> None:
        self.queue = queue
        self.region = region
        self.delivered: list[tuple[str, str, dict[str, Any]]] = []

    @staticmethod
    def _input_for(target: dict[str, Any], event: dict[str, Any]) -> Any:
        if "Input" in target:
            return json.loads(target["Input"])
        if "InputPath" in target:
            value: Any = event
            for part in target["InputPath"].lstrip("$").strip(".").split("."):
                if part:
                    value = value[part]
            return value
        if "InputTransformer" in target:
            transformer = target["InputTransformer"]
            return EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=cast(EventMessageType, event),
            )
        return event

    def send_to_targets(
        self, original: Callable[..., None], rule: Rule, event: dict[str, Any], transform_input: bool = True
    ) -> None:
        if not rule.event_pattern.matches_event(cast(EventMessageType, event)):
            return
        others = []
        for target in rule.targets:
            arn: str = target["Arn"]
            service = arn.split(":")[2]
            if service == "lambda":
                payload = self._input_for(target, event)
                self.delivered.append((rule.name, arn, event))
                self.queue.submit_invoke(arn, payload)
            elif service == "states":
                payload = self._input_for(target, event)
                self.delivered.append((rule.name, arn, event))
                self.queue.submit_call(arn, payload, self._start_execution(arn, payload))
            else:
                others.append(target)
        if others:
            saved = rule.targets
            rule.targets = others
            try:
                original(rule, _as_moto_event(event), transform_input)
            finally:
                rule.targets = saved

    def _start_execution(self, arn: str, payload: Any) -> Callable[[], None]:
        def call() -> None:
            # EventBridge names each execution; moto would name every unnamed one "None".
            boto3.client("stepfunctions", region_name=self.region).start_execution(
                stateMachineArn=arn,
                name=str(uuid.uuid4()),
                input=json.dumps(payload) if not isinstance(payload, str) else payload,
            )

        return call

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = Rule.send_to_targets
        stand_in = self

        def send_to_targets(rule: Rule, event: dict[str, Any], transform_input: bool = True) -> None:
            stand_in.send_to_targets(original, rule, event, transform_input)

        with mock.patch.object(Rule, "send_to_targets", send_to_targets):
            yield


# --------------------------------------------------------------------------------------
# S3: "Object Created" events to EventBridge, shaped as AWS sends them
# --------------------------------------------------------------------------------------

_S3_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}


class S3EventBridgeNotifications:
    """Stands in for S3's EventBridge notifications.

    moto sends ``eTag`` where AWS sends ``etag``, a ``reason`` of ``ObjectCreated`` where AWS
    sends ``PutObject``, and a numeric ``time``. This sends the event AWS documents
    (Amazon S3 User Guide, "EventBridge message structure") for object creation and
    deletion, to the default bus, as S3 does.
    """

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def event_for(
        self, account_id: str, region: str, event_name: str, bucket: str, key: Any
    ) -> dict[str, Any]:
        created = event_name.startswith("s3:ObjectCreated")
        obj: dict[str, Any] = {"key": key.name, "sequencer": f"{time.time_ns():X}"}
        if created:
            obj.update({"size": key.size, "etag": key.etag.replace('"', "")})
        if key.version_id and key.version_id != "null":
            obj["version-id"] = key.version_id
        detail: dict[str, Any] = {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": _S3_REASONS.get(event_name, "DeleteObject"),
        }
        if not created:
            detail["deletion-type"] = "Permanently Deleted"
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Object Created" if created else "Object Deleted",
            "source": "aws.s3",
            "account": account_id,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": detail,
        }

    def send(self, account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        from moto.events.models import events_backends

        if not (event_name.startswith("s3:ObjectCreated") or event_name.startswith("s3:ObjectRemoved")):
            return
        event = self.event_for(account_id, bucket.region_name, event_name, bucket.name, key)
        self.sent.append(event)
        default_bus = events_backends[account_id][bucket.region_name].event_buses.get("default")
        if default_bus is None:
            return
        for rule in list(default_bus.rules.values()):
            if rule.state == "ENABLED":
                rule.send_to_targets(cast(EventMessageType, event), transform_input=True)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        with mock.patch.object(s3_notifications, "_send_event_bridge_message", self.send):
            yield


# --------------------------------------------------------------------------------------
# CloudFormation: what moto's CloudFormation leaves out of a stack
# --------------------------------------------------------------------------------------


# Bucket name -> the policy document the template declared (see CloudFormationBucketPolicy).
CLOUDFORMATION_BUCKET_POLICIES: dict[str, dict[str, Any]] = {}


class CloudFormationBucketPolicy(CloudFormationModel):
    """Stands in for the ``AWS::S3::BucketPolicy`` resource, which moto's CloudFormation skips.

    moto resolves the properties (Ref, GetAtt, Sub) before handing them over. moto's S3
    enforces a bucket policy but ignores its Conditions, so a TLS-only statement (deny when
    ``aws:SecureTransport`` is false) would deny every request; such statements are left out
    of what moto enforces (every local request uses an https endpoint, where AWS would not
    deny either) and kept, with the rest, in ``document``.
    """

    def __init__(self, bucket: str, account_id: str, document: dict[str, Any]) -> None:
        self.bucket = bucket
        self.account_id = account_id
        self.document = document

    @staticmethod
    def _denies_only_insecure_transport(statement: dict[str, Any]) -> bool:
        condition = statement.get("Condition", {})
        return statement.get("Effect") == "Deny" and condition == {"Bool": {"aws:SecureTransport": "false"}}

    @classmethod
    def enforceable(cls, document: dict[str, Any]) -> dict[str, Any]:
        statements = document.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        kept = [s for s in statements if not cls._denies_only_insecure_transport(s)]
        return {**document, "Statement": kept}

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationBucketPolicy:
        props = cloudformation_json["Properties"]
        bucket = props["Bucket"]
        document = props["PolicyDocument"]
        enforced = cls.enforceable(document)
        if enforced["Statement"]:
            s3_backends[account_id]["global"].put_bucket_policy(bucket, json.dumps(enforced).encode())
        policy = cls(bucket, account_id, document)
        CLOUDFORMATION_BUCKET_POLICIES[bucket] = document
        return policy

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> CloudFormationBucketPolicy:
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        bucket = cloudformation_json["Properties"]["Bucket"]
        with contextlib.suppress(Exception):
            s3_backends[account_id]["global"].delete_bucket_policy(bucket)

    def is_created(self) -> bool:
        return True


class CloudFormationSnsSubscription(CloudFormationModel):
    """Stands in for the ``AWS::SNS::Subscription`` resource, which moto's CloudFormation skips.

    The subscription is made through moto's SNS (which then delivers to it, e.g. an SQS
    queue, in Publish), with the attributes the template sets; Ref is its ARN.
    """

    _ATTRIBUTES = ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy")

    def __init__(self, arn: str, account_id: str, region_name: str) -> None:
        self.arn = arn
        self.account_id = account_id
        self.region_name = region_name

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationSnsSubscription:
        from moto.sns.models import sns_backends

        props = cloudformation_json["Properties"]
        backend = sns_backends[account_id][region_name]
        subscription = backend.subscribe(props["TopicArn"], props["Endpoint"], props["Protocol"])
        for name in cls._ATTRIBUTES:
            if name in props:
                value = props[name]
                text = json.dumps(value) if isinstance(value, dict) else str(value).lower()
                backend.set_subscription_attributes(subscription.arn, name, text)
        return cls(subscription.arn, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> CloudFormationSnsSubscription:
        cls.delete_from_cloudformation_json(original_resource.arn, {}, account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        from moto.sns.models import sns_backends

        sns_backends[account_id][region_name].unsubscribe(resource_name)

    def is_created(self) -> bool:
        return True


class CloudFormationSqsQueuePolicy(CloudFormationModel):
    """Stands in for the ``AWS::SQS::QueuePolicy`` resource, which moto's CloudFormation skips.

    The policy is set as each queue's ``Policy`` attribute, as CloudFormation does through
    SetQueueAttributes. moto keeps it but does not enforce it on SNS's deliveries.
    """

    def __init__(self, queue_urls: list[str], account_id: str, region_name: str) -> None:
        self.queue_urls = queue_urls
        self.account_id = account_id
        self.region_name = region_name

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SQS::QueuePolicy"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return ",".join(self.queue_urls)

    @staticmethod
    def _set(queue_urls: list[str], policy: str, account_id: str, region_name: str) -> None:
        from moto.sqs.models import sqs_backends

        for url in queue_urls:
            sqs_backends[account_id][region_name].set_queue_attributes(
                url.rsplit("/", 1)[-1], {"Policy": policy}
            )

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationSqsQueuePolicy:
        props = cloudformation_json["Properties"]
        urls = [str(url) for url in props["Queues"]]
        cls._set(urls, json.dumps(props["PolicyDocument"]), account_id, region_name)
        return cls(urls, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> CloudFormationSqsQueuePolicy:
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        urls = [str(url) for url in cloudformation_json.get("Properties", {}).get("Queues", [])]
        with contextlib.suppress(Exception):
            cls._set(urls, "", account_id, region_name)

    def is_created(self) -> bool:
        return True


def register_cloudformation_resource_types() -> None:
    """Make moto's CloudFormation see the resource types defined above."""
    from moto.cloudformation import parsing

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


@functools.lru_cache(maxsize=4)
def _shared_data_loader(search_path: str | None) -> botocore.loaders.Loader:
    return botocore.loaders.create_loader(search_path)


@contextlib.contextmanager
def one_botocore_data_loader() -> Iterator[None]:
    """Not an AWS behaviour: every botocore session of the process reads service models once.

    On AWS each function's execution environment reads botocore's JSON models for itself;
    here all functions share one process, and each function's own session (a copy of the
    layer each) would read them again: a third of a second per function and cloud.
    """
    with mock.patch.object(botocore.session, "create_loader", _shared_data_loader):
        yield


@contextlib.contextmanager
def cloudformation_json_template_parsing() -> Iterator[None]:
    """Stands in for CloudFormation's parsing of a JSON template body.

    moto reads every template, JSON included, with PyYAML's pure-Python loader: about a
    second for the platform's. A JSON body is read as JSON here (the same document), and
    anything else still goes to moto's YAML parsing.
    """
    from moto.cloudformation.models import Stack

    yaml_or_json = Stack.parse_template

    def parse_template(template: str) -> dict[str, Any]:
        if template.lstrip().startswith("{"):
            with contextlib.suppress(ValueError):
                parsed: dict[str, Any] = json.loads(template)
                return parsed
        return yaml_or_json(template)

    with mock.patch.object(Stack, "parse_template", staticmethod(parse_template)):
        yield


def _resolve_parameters(value: Any, parameters: dict[str, str]) -> Any:
    """Resolve ``Ref`` to template parameters, the only intrinsic these properties use."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            name = value["Ref"]
            if name not in parameters:
                raise ValueError(f"cannot resolve Ref {name} outside moto's CloudFormation")
            return parameters[name]
        return {key: _resolve_parameters(item, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_parameters(item, parameters) for item in value]
    return value


def lambda_dead_letter_queues(cfn_template: dict[str, Any], physical_ids: dict[str, str]) -> dict[str, str]:
    """Stands in for ``DeadLetterConfig``, which moto's Lambda drops: function name -> queue URL.

    Only SQS targets named by ``Fn::GetAtt <queue>.Arn`` (how template.yaml names them).
    """
    queues = {}
    for logical_id, resource in cfn_template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function" or logical_id not in physical_ids:
            continue
        target = resource.get("Properties", {}).get("DeadLetterConfig", {}).get("TargetArn")
        if isinstance(target, dict) and "Fn::GetAtt" in target:
            queue_id, attribute = target["Fn::GetAtt"]
            if attribute == "Arn" and cfn_template["Resources"][queue_id]["Type"] == "AWS::SQS::Queue":
                queues[physical_ids[logical_id]] = physical_ids[queue_id]
    return queues


def apply_properties_moto_skips(
    cfn_template: dict[str, Any], physical_ids: dict[str, str], parameters: dict[str, str]
) -> None:
    """Stands in for the properties moto's CloudFormation accepts but does not apply.

    ``AWS::S3::Bucket``: versioning, public access block, ownership controls, lifecycle
    rules and EventBridge notifications (without which S3 sends no event at all).
    ``AWS::DynamoDB::Table``: time to live and point-in-time recovery. Each is applied
    through the service's own API, as CloudFormation would.
    """
    defaults = {
        name: str(spec["Default"])
        for name, spec in cfn_template.get("Parameters", {}).items()
        if "Default" in spec
    }
    values = {**defaults, **parameters}
    s3 = boto3.client("s3")
    dynamodb = boto3.client("dynamodb")
    for logical_id, resource in cfn_template["Resources"].items():
        physical = physical_ids.get(logical_id)
        if physical is None or resource["Type"] not in ("AWS::S3::Bucket", "AWS::DynamoDB::Table"):
            continue
        props = _resolve_parameters(resource.get("Properties", {}), values)
        if resource["Type"] == "AWS::S3::Bucket":
            if "VersioningConfiguration" in props:
                s3.put_bucket_versioning(
                    Bucket=physical,
                    VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]},
                )
            if "PublicAccessBlockConfiguration" in props:
                s3.put_public_access_block(
                    Bucket=physical,
                    PublicAccessBlockConfiguration={
                        key: value in (True, "true")
                        for key, value in props["PublicAccessBlockConfiguration"].items()
                    },
                )
            if "OwnershipControls" in props:
                s3.put_bucket_ownership_controls(
                    Bucket=physical, OwnershipControls=props["OwnershipControls"]
                )
            if "LifecycleConfiguration" in props:
                s3.put_bucket_lifecycle_configuration(
                    Bucket=physical,
                    LifecycleConfiguration={
                        "Rules": [_lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]
                    },
                )
            notification = props.get("NotificationConfiguration", {})
            if notification.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled") in (True, "true"):
                s3.put_bucket_notification_configuration(
                    Bucket=physical, NotificationConfiguration={"EventBridgeConfiguration": {}}
                )
        elif resource["Type"] == "AWS::DynamoDB::Table":
            ttl = props.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled") in (True, "true"):
                dynamodb.update_time_to_live(
                    TableName=physical,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )
            pitr = props.get("PointInTimeRecoverySpecification", {})
            if pitr.get("PointInTimeRecoveryEnabled") in (True, "true"):
                dynamodb.update_continuous_backups(
                    TableName=physical,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the shape of the S3 API."""
    api: dict[str, Any] = {
        "ID": rule.get("Id", ""),
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return api


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


# --------------------------------------------------------------------------------------
# EventBridge: events that AWS services emit (CodeDeploy, CloudWatch alarms, EC2, ...)
# --------------------------------------------------------------------------------------


def emit_service_event(account_id: str, region: str, event: dict[str, Any]) -> None:
    """Stands in for an AWS service putting its event on the default bus.

    moto's services emit no EventBridge events of their own (S3 aside); the fleet
    simulator builds each event in the shape AWS documents and hands it here, and the
    default bus's enabled rules route it as EventBridge would.
    """
    from moto.events.models import events_backends

    bus = events_backends[account_id][region].event_buses.get("default")
    if bus is None:
        return
    for rule in list(bus.rules.values()):
        if rule.state == "ENABLED":
            rule.send_to_targets(cast(EventMessageType, event), transform_input=True)


def service_event(
    account_id: str, region: str, source: str, detail_type: str, resources: list[str], detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


# --------------------------------------------------------------------------------------
# CodeDeploy: revisions, deployments that progress, StopDeployment
# --------------------------------------------------------------------------------------


class CodeDeployLifecycle:
    """Stands in for CodeDeploy's deployment lifecycle and the API calls moto lacks.

    moto records a created deployment and leaves it "Created" for ever, and has no
    RegisterApplicationRevision, GetApplicationRevision or StopDeployment. Here revisions
    are kept per application, every created deployment is handed to ``on_created`` (the
    fleet simulator decides how it progresses), and StopDeployment stops a running one.
    """

    def __init__(self) -> None:
        self.revisions: dict[str, list[dict[str, Any]]] = {}
        self.on_created: Callable[[Any], None] | None = None
        self.on_stopped: Callable[[Any], None] | None = None
        self.created: list[Any] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from moto.codedeploy.models import CodeDeployBackend
        from moto.codedeploy.responses import CodeDeployResponse
        from moto.core.responses import ActionResult

        lifecycle = self
        original_create = CodeDeployBackend.create_deployment

        def create_deployment(backend: CodeDeployBackend, *args: Any, **kwargs: Any) -> str:
            deployment_id = original_create(backend, *args, **kwargs)
            deployment = backend.deployments[deployment_id]
            lifecycle.created.append(deployment)
            if lifecycle.on_created is not None:
                lifecycle.on_created(deployment)
            return deployment_id

        def register_application_revision(response: CodeDeployResponse) -> ActionResult:
            application = response._get_param("applicationName")
            backend = response.codedeploy_backend
            backend.get_application(application)  # moto's own error for an unknown application
            lifecycle.revisions.setdefault(application, []).append(
                {
                    "revision": response._get_param("revision"),
                    "description": response._get_param("description"),
                }
            )
            return ActionResult({})

        def stop_deployment(response: CodeDeployResponse) -> ActionResult:
            from moto.codedeploy.exceptions import DeploymentDoesNotExistException

            deployment_id = response._get_param("deploymentId")
            deployment = response.codedeploy_backend.deployments.get(deployment_id)
            if deployment is None:
                raise DeploymentDoesNotExistException(f"The deployment {deployment_id} could not be found.")
            if deployment.status in ("Succeeded", "Failed", "Stopped"):
                from moto.core.exceptions import JsonRESTError

                raise JsonRESTError(
                    "DeploymentAlreadyCompletedException", f"The deployment {deployment_id} has completed."
                )
            deployment.status = "Stopped"
            deployment.complete_time = datetime.now(UTC)
            if lifecycle.on_stopped is not None:
                lifecycle.on_stopped(deployment)
            return ActionResult({"status": "Succeeded", "statusMessage": "Stopped by request"})

        with (
            mock.patch.object(CodeDeployBackend, "create_deployment", create_deployment),
            mock.patch.object(
                CodeDeployResponse,
                "register_application_revision",
                register_application_revision,
                create=True,
            ),
            mock.patch.object(CodeDeployResponse, "stop_deployment", stop_deployment, create=True),
        ):
            yield


# --------------------------------------------------------------------------------------
# CloudWatch: metrics the Application Load Balancer publishes
# --------------------------------------------------------------------------------------


def publish_alb_metrics(account_id: str, region: str, metric_data: list[dict[str, Any]]) -> None:
    """Stands in for the ALB publishing its AWS/ApplicationELB metrics.

    Nobody but AWS may put data in an ``AWS/`` namespace, so this writes to moto's
    CloudWatch backend directly, as the load balancer would.
    """
    from moto.cloudwatch.models import cloudwatch_backends

    # moto keeps metric timestamps as naive UTC, as its API parses them.
    data = [
        {**datum, "Timestamp": datum["Timestamp"].astimezone(UTC).replace(tzinfo=None)}
        if isinstance(datum.get("Timestamp"), datetime)
        else datum
        for datum in metric_data
    ]
    cloudwatch_backends[account_id][region].put_metric_data("AWS/ApplicationELB", data)


# --------------------------------------------------------------------------------------
# Fleet stacks (fleet/template.yaml): what moto's CloudFormation cannot create or skips
# --------------------------------------------------------------------------------------


def _cfn_bool(value: Any) -> bool:
    """A CloudFormation boolean, which may arrive as a string."""
    return value in (True, "true", "True")


def _lower_camel(value: Any) -> Any:
    """CloudFormation's PascalCase property names as the CodeDeploy API's camelCase (not tags)."""
    if isinstance(value, list):
        return [_lower_camel(item) for item in value]
    if isinstance(value, dict):
        return {
            key[:1].lower() + key[1:]: item if key == "Tags" else _lower_camel(item)
            for key, item in value.items()
        }
    return value


class CloudFormationCodeDeployApplication(CloudFormationModel):
    """Stands in for the ``AWS::CodeDeploy::Application`` resource, which moto's CloudFormation lacks.

    moto's CodeDeploy API has applications; this creates one through it (Ref: the name).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "ApplicationName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CodeDeploy::Application"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "ApplicationName"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.name

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationCodeDeployApplication:
        props = cloudformation_json.get("Properties", {})
        boto3.client("codedeploy", region_name=region_name).create_application(
            applicationName=resource_name,
            computePlatform=props.get("ComputePlatform", "Server"),
            tags=props.get("Tags", []),
        )
        return cls(resource_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> CloudFormationCodeDeployApplication:
        return cast(CloudFormationCodeDeployApplication, original_resource)

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        with contextlib.suppress(Exception):
            boto3.client("codedeploy", region_name=region_name).delete_application(
                applicationName=resource_name
            )

    def is_created(self) -> bool:
        return True


class CloudFormationCodeDeployDeploymentGroup(CloudFormationModel):
    """Stands in for the ``AWS::CodeDeploy::DeploymentGroup`` resource, which moto's CloudFormation lacks.

    The properties go to moto's CodeDeploy ``CreateDeploymentGroup`` as they are (camelCase
    keys, booleans as booleans). As CodeDeploy does, each named Auto Scaling group gets a
    launch hook (a new instance receives the last successful revision before it takes
    traffic), and ``GetDeploymentGroup`` names the groups and hooks in AWS's shape (moto
    answers ``[{}]``). moto always answers ``alarmConfiguration`` empty; its backend keeps
    the alarms set here. Ref: the group's name.
    """

    def __init__(self, application: str, name: str) -> None:
        self.application = application
        self.name = name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "DeploymentGroupName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CodeDeploy::DeploymentGroup"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def _request(resource_name: str, props: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = _lower_camel(
            {key: value for key, value in props.items() if key != "Deployment"}
        )
        request["deploymentGroupName"] = resource_name
        for section in ("autoRollbackConfiguration", "alarmConfiguration"):
            if section in request:
                request[section]["enabled"] = _cfn_bool(request[section].get("enabled"))
        alarms = request.get("alarmConfiguration", {})
        if "ignorePollAlarmFailure" in alarms:
            alarms["ignorePollAlarmFailure"] = _cfn_bool(alarms["ignorePollAlarmFailure"])
        if "terminationHookEnabled" in request:
            request["terminationHookEnabled"] = _cfn_bool(request["terminationHookEnabled"])
        terminate = request.get("blueGreenDeploymentConfiguration", {}).get(
            "terminateBlueInstancesOnDeploymentSuccess", {}
        )
        if "terminationWaitTimeInMinutes" in terminate:
            terminate["terminationWaitTimeInMinutes"] = int(terminate["terminationWaitTimeInMinutes"])
        return request

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationCodeDeployDeploymentGroup:
        from moto.autoscaling.models import autoscaling_backends
        from moto.codedeploy.models import codedeploy_backends

        request = cls._request(resource_name, cloudformation_json["Properties"])
        application = request["applicationName"]
        boto3.client("codedeploy", region_name=region_name).create_deployment_group(**request)
        group = codedeploy_backends[account_id][region_name].get_deployment_group(application, resource_name)
        groups: list[Any] = []  # moto keeps names; its GetDeploymentGroup serializes AWS's {name, hook}
        for name in request.get("autoScalingGroups", []):
            hook = (
                f"CodeDeploy-managed-automatic-launch-deployment-hook-{resource_name}-{uuid.uuid4().hex[:8]}"
            )
            autoscaling_backends[account_id][region_name].create_lifecycle_hook(
                name=hook,
                as_name=name,
                transition="autoscaling:EC2_INSTANCE_LAUNCHING",
                timeout=600,
                result="ABANDON",
            )
            groups.append({"name": name, "hook": hook})
        group.auto_scaling_groups = groups
        return cls(application, resource_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> CloudFormationCodeDeployDeploymentGroup:
        cls.delete_from_cloudformation_json(
            original_resource.name, cloudformation_json, account_id, region_name
        )
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        application = cloudformation_json["Properties"]["ApplicationName"]
        with contextlib.suppress(Exception):
            boto3.client("codedeploy", region_name=region_name).delete_deployment_group(
                applicationName=application, deploymentGroupName=resource_name
            )

    def is_created(self) -> bool:
        return True


_ALARM_INTEGERS = ("EvaluationPeriods", "DatapointsToAlarm", "Period")
_ALARM_PASSED_AS_IS = (
    "AlarmDescription",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "ComparisonOperator",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Unit",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "ThresholdMetricId",
    "Tags",
)


class CloudFormationCloudWatchAlarm(CloudFormationModel):
    """Stands in for the ``AWS::CloudWatch::Alarm`` resource, which moto's CloudFormation lacks.

    The alarm is created with moto's ``PutMetricAlarm`` (metric math included), numbers and
    booleans converted from their template form. Ref: the alarm's name.
    """

    def __init__(self, name: str, arn: str) -> None:
        self.name = name
        self.arn = arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def _request(name: str, props: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {"AlarmName": name}
        request.update({key: props[key] for key in _ALARM_PASSED_AS_IS if key in props})
        request.update({key: int(props[key]) for key in _ALARM_INTEGERS if key in props})
        if "Threshold" in props:
            request["Threshold"] = float(props["Threshold"])
        if "ActionsEnabled" in props:
            request["ActionsEnabled"] = _cfn_bool(props["ActionsEnabled"])
        if "Metrics" in props:
            metrics = []
            for query in props["Metrics"]:
                metric = {**query}
                if "ReturnData" in metric:
                    metric["ReturnData"] = _cfn_bool(metric["ReturnData"])
                if "Period" in metric:
                    metric["Period"] = int(metric["Period"])
                if "MetricStat" in metric:
                    metric["MetricStat"] = {
                        **metric["MetricStat"],
                        "Period": int(metric["MetricStat"]["Period"]),
                    }
                metrics.append(metric)
            request["Metrics"] = metrics
        return request

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationCloudWatchAlarm:
        client = boto3.client("cloudwatch", region_name=region_name)
        client.put_metric_alarm(**cls._request(resource_name, cloudformation_json["Properties"]))
        arn = client.describe_alarms(AlarmNames=[resource_name])["MetricAlarms"][0]["AlarmArn"]
        return cls(resource_name, arn)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> CloudFormationCloudWatchAlarm:
        if original_resource.name != new_resource_name:
            cls.delete_from_cloudformation_json(
                original_resource.name, cloudformation_json, account_id, region_name
            )
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        boto3.client("cloudwatch", region_name=region_name).delete_alarms(AlarmNames=[resource_name])

    def is_created(self) -> bool:
        return True


# Association id -> the association as the template declared it (see CloudFormationSsmAssociation).
SSM_ASSOCIATIONS: dict[str, dict[str, Any]] = {}


class CloudFormationSsmAssociation(CloudFormationModel):
    """Stands in for the ``AWS::SSM::Association`` resource (State Manager).

    moto has no association API at all, so nothing can run one on a schedule; the
    association is kept, with its resolved properties, in ``SSM_ASSOCIATIONS`` under a new
    association id (Ref), for tests and the fleet simulator to read.
    """

    def __init__(self, association_id: str, properties: dict[str, Any]) -> None:
        self.association_id = association_id
        self.properties = properties

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SSM::Association"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "AssociationId"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.association_id

    @property
    def physical_resource_id(self) -> str:
        return self.association_id

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationSsmAssociation:
        association = cls(str(uuid.uuid4()), dict(cloudformation_json["Properties"]))
        SSM_ASSOCIATIONS[association.association_id] = association.properties
        return association

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> CloudFormationSsmAssociation:
        original_resource.properties = dict(cloudformation_json["Properties"])
        SSM_ASSOCIATIONS[original_resource.association_id] = original_resource.properties
        return cast(CloudFormationSsmAssociation, original_resource)

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        SSM_ASSOCIATIONS.pop(resource_name, None)

    def is_created(self) -> bool:
        return True


class CloudFormationNoValueInLists:
    """Stands in for ``AWS::NoValue`` as an element of a list.

    CloudFormation drops a list element that resolves to ``AWS::NoValue`` (an ``Fn::If``
    whose branch is empty, such as an optional instance type); moto's template parser
    keeps it as a null that the resource then fails on. While installed, nulls are left
    out of every list moto resolves.
    """

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from moto.cloudformation import parsing

        original = parsing.clean_json

        def clean_json(resource_json: Any, resources_map: Any) -> Any:
            cleaned = original(resource_json, resources_map)
            if isinstance(resource_json, list) and isinstance(cleaned, list):
                return [item for item in cleaned if item is not None]
            return cleaned

        with mock.patch.object(parsing, "clean_json", clean_json):
            yield


class CloudFormationTargetGroupProperties:
    """Stands in for what moto's ``AWS::ElasticLoadBalancingV2::TargetGroup`` lacks.

    moto answers no ``Fn::GetAtt`` of a target group (``TargetGroupName``,
    ``TargetGroupFullName``, ``LoadBalancerArns``) and skips its ``Tags`` and
    ``TargetGroupAttributes`` (the deregistration delay the drains rely on). While
    installed, the attributes resolve as on AWS and the skipped properties are applied
    through moto's ELBv2 backend after the group is created.
    """

    @staticmethod
    def attribute(target_group: Any, attribute_name: str) -> Any:
        if attribute_name == "TargetGroupName":
            return target_group.name
        if attribute_name == "TargetGroupFullName":
            return target_group.arn.split(":")[-1]  # targetgroup/<name>/<id>
        if attribute_name == "LoadBalancerArns":
            return list(target_group.load_balancer_arns)
        if attribute_name == "TargetGroupArn":
            return target_group.arn
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from moto.elbv2.models import FakeTargetGroup, elbv2_backends

        original_create = FakeTargetGroup.create_from_cloudformation_json

        def create_from_cloudformation_json(
            resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:
            group = original_create(resource_name, cloudformation_json, account_id, region_name, **kwargs)
            props = cloudformation_json["Properties"]
            backend = elbv2_backends[account_id][region_name]
            attributes = {item["Key"]: str(item["Value"]) for item in props.get("TargetGroupAttributes", [])}
            if attributes:
                backend.modify_target_group_attributes(group.arn, attributes)
            if props.get("Tags"):
                backend.add_tags([group.arn], props["Tags"])
            return group

        with (
            mock.patch.object(
                FakeTargetGroup,
                "create_from_cloudformation_json",
                staticmethod(create_from_cloudformation_json),
            ),
            mock.patch.object(FakeTargetGroup, "get_cfn_attribute", self.attribute, create=True),
        ):
            yield


class CloudFormationAutoScalingGroupProperties:
    """Stands in for what moto's ``AWS::AutoScaling::AutoScalingGroup`` skips or gets wrong.

    moto ignores ``CapacityRebalance`` and ``LifecycleHookSpecificationList`` (the
    termination hook the drains serve), and with a mixed instances policy it rounds the
    On-Demand share down and drops the remainder: a group of one at 50% On-Demand gets no
    instance, where AWS fills the whole desired capacity. While installed, the hooks and
    the setting are applied through moto's Auto Scaling backend right after the group is
    created, then the instances it is short of are launched and registered with its
    target groups.
    """

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from moto.autoscaling.models import FakeAutoScalingGroup, autoscaling_backends

        original_create = FakeAutoScalingGroup.create_from_cloudformation_json

        def create_from_cloudformation_json(
            resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> Any:
            group = original_create(resource_name, cloudformation_json, account_id, region_name, **kwargs)
            props = cloudformation_json["Properties"]
            backend = autoscaling_backends[account_id][region_name]
            for hook in props.get("LifecycleHookSpecificationList", []):
                backend.create_lifecycle_hook(
                    name=hook["LifecycleHookName"],
                    as_name=group.name,
                    transition=hook["LifecycleTransition"],
                    timeout=int(hook["HeartbeatTimeout"]) if "HeartbeatTimeout" in hook else None,
                    result=hook.get("DefaultResult", "ABANDON"),
                )
            group.capacity_rebalance = _cfn_bool(props.get("CapacityRebalance", False))
            missing = (group.desired_capacity or 0) - len(group.instance_states)
            if missing > 0:
                group.replace_autoscaling_group_instances(missing, group.get_propagated_tags())
                backend.update_attached_target_groups(group.name)
            return group

        with mock.patch.object(
            FakeAutoScalingGroup,
            "create_from_cloudformation_json",
            staticmethod(create_from_cloudformation_json),
        ):
            yield


@contextlib.contextmanager
def fleet_stack_stand_ins() -> Iterator[None]:
    """The stand-ins a fleet stack needs while moto's CloudFormation creates it."""
    register_cloudformation_resource_types()
    with (
        CloudFormationNoValueInLists().installed(),
        CloudFormationTargetGroupProperties().installed(),
        CloudFormationAutoScalingGroupProperties().installed(),
    ):
        yield


# --------------------------------------------------------------------------------------
# Step Functions: SendTaskFailure keeps its cause
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def send_task_failure_with_cause() -> Iterator[None]:
    """Stands in for SendTaskFailure's ``cause``, which moto's response handler drops.

    Without it every callback failure (an alarm, a rejection, an abort) would reach the
    state machine's Catch with an empty Cause, and the rollback could not say why.
    """
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

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


# --------------------------------------------------------------------------------------
# Fleet operations (drains): SQS event source batches, Run Command on managed instances,
# termination lifecycle hooks, Spot interruptions and rebalance recommendations
# --------------------------------------------------------------------------------------


@dataclass
class SqsBatchDelivery:
    """One batch an SQS event source mapping handed to its function."""

    function: str
    queue: str
    size: int
    failed: int
    function_error: str | None


class SqsEventSourceMappingBatches:
    """Stands in for Lambda's SQS event source mapping: batches, the batching window, partial failures.

    moto invokes the function once per message, synchronously inside SendMessage (through
    Docker), and ignores ``BatchSize`` beyond its receive, the batching window and
    ``ReportBatchItemFailures``. Here a queue with a mapping is polled on the asynchronous
    invocation queue: a batch of up to ``BatchSize`` messages goes to the function in one
    synchronous invocation, in the record shape AWS documents; messages the function reports
    in ``batchItemFailures`` (or all, if it fails) become visible again and the others are
    deleted, so the queue's redrive policy moves a message that keeps failing to its
    dead-letter queue. The local cloud runs one invocation at a time, so events that AWS
    turns into messages at once arrive here one by one, spread over more time than the
    window; the window is therefore counted from the last message, not the first: a batch
    goes when it is full, or once no message has come for ``min(window, QUIET_SECONDS)``
    and nothing else under way could still send one (at the latest after the window).
    """

    QUIET_SECONDS = 0.3
    _POLL_SECONDS = 0.02

    def __init__(self, runtime: LambdaInvokeInProcess, queue: AsyncInvocationQueue, region: str) -> None:
        self.runtime = runtime
        self.queue = queue
        self.region = region
        self.deliveries: list[SqsBatchDelivery] = []
        self._lock = threading.Lock()
        self._polling: set[tuple[str, str]] = set()
        self._closed = False

    def _notify(self, sqs_queue: Any, mappings: dict[str, Any]) -> None:
        for mapping in list(mappings.values()):
            if not mapping.enabled:
                continue
            key = (sqs_queue.queue_arn, mapping.function_arn)
            with self._lock:
                if key in self._polling or self._closed:
                    continue
                self._polling.add(key)
            self.queue.submit_call(
                f"sqs-event-source:{sqs_queue.name}", None, self._poller(sqs_queue, mapping, key)
            )

    def _others_in_flight(self) -> int:
        """Deliveries and invocations under way besides the pollers: they may still send messages."""
        with self.queue._idle:
            pending = self.queue._pending
        with self._lock:
            return pending - len(self._polling)

    def _poller(self, sqs_queue: Any, mapping: Any, key: tuple[str, str]) -> Callable[[], None]:
        batch_size = int(mapping.batch_size or 10)
        window = float(mapping.max_batch_window or 0)
        quiet = min(window, self.QUIET_SECONDS)

        def poll() -> None:
            last_count, changed = -1, time.monotonic()
            while True:
                with self._lock:
                    count = len(sqs_queue.messages)
                    if count == 0 or self._closed:
                        self._polling.discard(key)
                        return
                now = time.monotonic()
                if count != last_count:
                    last_count, changed = count, now
                waited = now - changed
                full = count >= batch_size
                if full or (waited >= quiet and (waited >= window or self._others_in_flight() <= 0)):
                    try:
                        self._deliver(sqs_queue, mapping, batch_size)
                    except Exception as exc:  # a poller must outlive any one delivery
                        self.deliveries.append(
                            SqsBatchDelivery(mapping.function_arn, sqs_queue.name, 0, 0, repr(exc))
                        )
                    last_count = -1
                    continue
                time.sleep(self._POLL_SECONDS)

        return poll

    def _deliver(self, sqs_queue: Any, mapping: Any, batch_size: int) -> None:
        from moto.sqs.models import sqs_backends

        backend = sqs_backends[sqs_queue.account_id][self.region]
        messages = backend.receive_message(sqs_queue.name, batch_size, 0, int(sqs_queue.visibility_timeout))
        if not messages:
            return
        records = [
            {
                "messageId": message.id,
                "receiptHandle": message.receipt_handle,
                "body": message.body,
                "attributes": {
                    "ApproximateReceiveCount": str(message.approximate_receive_count),
                    "SentTimestamp": str(message.sent_timestamp),
                    "SenderId": message.sender_id,
                    "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
                },
                "messageAttributes": {},
                "md5OfBody": message.body_md5,
                "eventSource": "aws:sqs",
                "eventSourceARN": sqs_queue.queue_arn,
                "awsRegion": self.region,
            }
            for message in messages
        ]
        response, failed = self.runtime.run(
            mapping.function_arn, json.dumps({"Records": records}), "RequestResponse"
        )
        error: str | None = None
        if failed:
            error = str(json.loads(response).get("errorType", "Unhandled"))
            retry = {m.id for m in messages}
        elif "ReportBatchItemFailures" in (mapping.function_response_types or []):
            body = json.loads(response or b"null")
            failures = body.get("batchItemFailures", []) if isinstance(body, dict) else []
            retry = {str(f.get("itemIdentifier")) for f in failures}
        else:
            retry = set()
        for message in messages:
            if message.id in retry:
                backend.change_message_visibility(
                    sqs_queue.name, str(message.receipt_handle), visibility_timeout=0
                )
            else:
                backend.delete_message(sqs_queue.name, str(message.receipt_handle))
        self.deliveries.append(
            SqsBatchDelivery(mapping.function_arn, sqs_queue.name, len(messages), len(retry), error)
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from moto.sqs.models import Queue

        original = Queue.add_message
        stand_in = self

        def add_message(sqs_queue: Any, message: Any) -> None:
            # moto would invoke the mapped functions right here, one message at a time.
            with stand_in._lock:
                mappings = sqs_queue.lambda_event_source_mappings
                sqs_queue.lambda_event_source_mappings = {}
                try:
                    original(sqs_queue, message)
                finally:
                    sqs_queue.lambda_event_source_mappings = mappings
            if mappings:
                stand_in._notify(sqs_queue, mappings)

        try:
            with mock.patch.object(Queue, "add_message", add_message):
                yield
        finally:
            with self._lock:
                self._closed = True


@dataclass
class CommandInvocationResult:
    """How the document ended on one instance, as the instance's SSM agent reports it."""

    status: str  # Success, Failed, TimedOut, ...
    output: str = ""
    error: str = ""


class ManagedInstanceAgent(Protocol):
    """The SSM agent of the simulated instances (canaryfleet_local.instances implements it)."""

    def manages(self, instance_id: str) -> bool:
        """Whether the instance runs an agent registered with Systems Manager."""
        ...

    def run(
        self, command_id: str, instance_id: str, document: str, parameters: dict[str, list[str]]
    ) -> CommandInvocationResult:
        """Run the document on the instance."""
        ...


@dataclass
class RunCommandCall:
    command_id: str
    document: str
    instance_ids: list[str]
    parameters: dict[str, list[str]]
    comment: str


_COMMAND_LIMIT = 50


class SsmRunCommandOnManagedInstances:
    """Stands in for Run Command running a document on managed instances.

    moto records a SendCommand as already ended "Success", runs nothing, checks neither the
    document, its parameters nor the instances, emits no event, and (given InstanceIds and no
    Targets) adds every instance of the account to the command. Here the command has the
    instances it names; the document must exist (``InvalidDocument``); the parameters must
    be ones it declares, within their allowed values and patterns (``InvalidParameters``; the
    defaults fill the rest); at most 50 instances (``ValidationException``), each running
    and managed by an SSM agent (``InvalidInstanceId``, as AWS answers for an instance whose
    agent is not registered). After SendCommand returns, the command runs on each instance through
    ``agent`` (the fleet simulator), the invocations take its statuses, and Systems Manager's
    "EC2 Command Invocation Status-change Notification" (per instance) and "EC2 Command
    Status-change Notification" (per command) are emitted to the default bus as AWS
    documents them. Without an agent no instance is managed.
    """

    def __init__(self, queue: AsyncInvocationQueue, account_id: str, region: str) -> None:
        self.queue = queue
        self.account_id = account_id
        self.region = region
        self.agent: ManagedInstanceAgent | None = None
        self.calls: list[RunCommandCall] = []
        self.rejected: list[tuple[str, str]] = []  # (error code, message)

    def _reject(self, code: str, message: str) -> None:
        from moto.ssm.exceptions import SSMException

        self.rejected.append((code, message))
        raise SSMException(code, message)

    def _resolved_parameters(self, backend: Any, command: Any) -> dict[str, list[str]]:
        documents = backend._documents.get(command.document_name)
        if documents is None:
            self._reject("InvalidDocument", f"Document {command.document_name} does not exist.")
        declared: dict[str, Any] = documents.get_default_version().content_json.get("parameters") or {}
        given: dict[str, list[str]] = dict(command.parameters or {})
        unknown = sorted(set(given) - set(declared))
        if unknown:
            self._reject(
                "InvalidParameters", f"Document {command.document_name} has no parameter {unknown[0]}."
            )
        resolved: dict[str, list[str]] = {}
        for name, spec in declared.items():
            values = given.get(name)
            if values is None:
                if "default" not in spec:
                    self._reject("InvalidParameters", f"Parameter {name} is required.")
                default = spec["default"]
                values = [str(v) for v in default] if isinstance(default, list) else [str(default)]
            for value in values:
                allowed = spec.get("allowedValues")
                if allowed is not None and value not in [str(a) for a in allowed]:
                    self._reject("InvalidParameters", f"Parameter {name} must be one of {allowed}.")
                pattern = spec.get("allowedPattern")
                if pattern is not None and not re.search(pattern, value):
                    self._reject("InvalidParameters", f"Parameter {name} does not match {pattern}.")
            resolved[name] = values
        return resolved

    def _check_instances(self, instance_ids: list[str]) -> None:
        from moto.ec2.models import ec2_backends

        if len(instance_ids) > _COMMAND_LIMIT:
            self._reject("ValidationException", f"InstanceIds has {len(instance_ids)} members; at most 50.")
        ec2 = ec2_backends[self.account_id][self.region]
        running = {
            instance.id
            for reservation in ec2.all_reservations()
            for instance in reservation.instances
            if instance.state == "running"
        }
        invalid = [
            i for i in instance_ids if i not in running or self.agent is None or not self.agent.manages(i)
        ]
        if invalid:
            self._reject(
                "InvalidInstanceId",
                f"Instances [[{', '.join(invalid)}]] not in a valid state for account {self.account_id}",
            )

    def _execute(self, command: Any, parameters: dict[str, list[str]]) -> Callable[[], None]:
        def run() -> None:
            failed = 0
            for invocation in command.invocations:
                instance_id = invocation["InstanceId"]
                try:
                    assert self.agent is not None
                    result = self.agent.run(
                        command.command_id, instance_id, command.document_name, parameters
                    )
                except Exception as exc:  # the agent's own crash: the invocation fails
                    result = CommandInvocationResult("Failed", error=repr(exc))
                invocation.update(
                    Status=result.status,
                    StatusDetails=result.status,
                    ResponseCode=0 if result.status == "Success" else 1,
                    StandardOutputContent=result.output[:24_000],
                    StandardErrorContent=result.error[:8_000],
                )
                failed += result.status != "Success"
                self._emit(
                    "EC2 Command Invocation Status-change Notification",
                    [self._instance_arn(instance_id)],
                    {
                        "command-id": command.command_id,
                        "document-name": command.document_name,
                        "instance-id": instance_id,
                        "requested-date-time": self._requested(command),
                        "status": result.status,
                    },
                )
            command.status = "Failed" if failed else "Success"
            command.status_details = command.status
            command.error_count = failed
            self._emit(
                "EC2 Command Status-change Notification",
                [self._instance_arn(i) for i in command.instance_ids],
                {
                    "command-id": command.command_id,
                    "document-name": command.document_name,
                    "expire-after": command.expires_after.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    "parameters": parameters,
                    "requested-date-time": self._requested(command),
                    "status": command.status,
                },
            )

        return run

    @staticmethod
    def _requested(command: Any) -> str:
        return str(command.requested_date_time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")

    def _instance_arn(self, instance_id: str) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account_id}:instance/{instance_id}"

    def _emit(self, detail_type: str, resources: list[str], detail: dict[str, Any]) -> None:
        event = service_event(self.account_id, self.region, "aws.ssm", detail_type, resources, detail)
        emit_service_event(self.account_id, self.region, event)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from moto.ssm.models import SimpleSystemManagerBackend

        original = SimpleSystemManagerBackend.send_command
        stand_in = self

        def send_command(backend: SimpleSystemManagerBackend, **kwargs: Any) -> Any:
            requested = list(kwargs.get("instance_ids") or [])
            command = original(backend, **kwargs)
            if not kwargs.get("targets"):  # moto reads no Targets as "every instance"
                command.instance_ids = requested
                command.invocations = [i for i in command.invocations if i["InstanceId"] in requested]
                command.target_count = len(requested)
            try:
                parameters = stand_in._resolved_parameters(backend, command)
                stand_in._check_instances(list(command.instance_ids))
            except Exception:
                backend._commands.remove(command)  # AWS creates no command for a refused call
                raise
            command.status = command.status_details = "InProgress"
            command.completed_count = 0
            for invocation in command.invocations:
                invocation.update(Status="InProgress", StatusDetails="InProgress")
            stand_in.calls.append(
                RunCommandCall(
                    command.command_id,
                    str(command.document_name),
                    list(command.instance_ids),
                    parameters,
                    command.comment,
                )
            )
            stand_in.queue.submit_call(
                f"ssm:{command.command_id}", None, stand_in._execute(command, parameters)
            )
            return command

        with mock.patch.object(SimpleSystemManagerBackend, "send_command", send_command):
            yield


@dataclass
class LifecycleAction:
    """An instance in Terminating:Wait, held by a termination hook."""

    token: str
    hook: str
    group: str
    instance_id: str
    started: float
    heartbeats: int = 0
    result: str | None = None
    ended_by: str | None = None  # CompleteLifecycleAction, or the Spot notice's end
    ended: float | None = None


class AutoScalingTerminationLifecycle:
    """Stands in for termination lifecycle hooks, which moto skips, and for the two calls that end them.

    moto terminates a scaled-in instance at once, whatever hooks its group has, and has no
    CompleteLifecycleAction or RecordLifecycleActionHeartbeat. Here, in a group with an
    ``autoscaling:EC2_INSTANCE_TERMINATING`` hook, scale-in (SetDesiredCapacity,
    UpdateAutoScalingGroup) and TerminateInstanceInAutoScalingGroup put the instances in
    ``Terminating:Wait`` and emit Auto Scaling's "EC2 Instance-terminate Lifecycle Action"
    event with a new token. CompleteLifecycleAction (by token, or by instance id) ends the
    wait and terminates the instance; RecordLifecycleActionHeartbeat counts a heartbeat;
    both answer ``ValidationError`` when no action is active, as AWS does. Neither the
    group's own deregistration before the wait nor the hook's timeout is played: ``pending``
    lists what would be left to time out. moto also registers every instance of a group in
    its target groups on any change; instances that are leaving are left out here.
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self.actions: dict[str, LifecycleAction] = {}
        self._lock = threading.RLock()

    @property
    def pending(self) -> list[LifecycleAction]:
        with self._lock:
            return [a for a in self.actions.values() if a.ended is None]

    @property
    def completed(self) -> list[LifecycleAction]:
        with self._lock:
            return [a for a in self.actions.values() if a.ended_by == "CompleteLifecycleAction"]

    def _backend(self) -> Any:
        from moto.autoscaling.models import autoscaling_backends

        return autoscaling_backends[self.account_id][self.region]

    def termination_hook(self, group: Any) -> Any:
        for hook in self._backend().lifecycle_hooks.values():
            if (
                hook.auto_scaling_group_name == group.name
                and hook.lifecycle_transition == "autoscaling:EC2_INSTANCE_TERMINATING"
            ):
                return hook
        return None

    def begin(self, group: Any, state: Any) -> LifecycleAction | None:
        """Put one InService instance of ``group`` in Terminating:Wait; None if it has no hook."""
        hook = self.termination_hook(group)
        if hook is None or state.lifecycle_state != "InService":
            return None
        state.lifecycle_state = "Terminating:Wait"
        action = LifecycleAction(
            str(uuid.uuid4()), hook.name, group.name, state.instance.id, time.monotonic()
        )
        with self._lock:
            self.actions[action.token] = action
        event = service_event(
            self.account_id,
            self.region,
            "aws.autoscaling",
            "EC2 Instance-terminate Lifecycle Action",
            [group.arn],
            {
                "LifecycleActionToken": action.token,
                "AutoScalingGroupName": group.name,
                "LifecycleHookName": hook.name,
                "EC2InstanceId": action.instance_id,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "Origin": "AutoScalingGroup",
                "Destination": "EC2",
            },
        )
        emit_service_event(self.account_id, self.region, event)
        return action

    def _find(self, token: str | None, instance_id: str | None, hook: str, group: str) -> LifecycleAction:
        from moto.autoscaling.exceptions import ValidationError

        with self._lock:
            for action in self.actions.values():
                if action.ended is not None or (action.hook, action.group) != (hook, group):
                    continue
                if (token and action.token == token) or (not token and action.instance_id == instance_id):
                    return action
        raise ValidationError(f"No active Lifecycle Action found with token {token or instance_id}")

    def terminate(self, instance_id: str, ended_by: str, result: str | None = None) -> None:
        """End the instance: out of its group, terminated in EC2; its pending action ends too."""
        backend = self._backend()
        with self._lock:
            for action in self.actions.values():
                if action.instance_id == instance_id and action.ended is None:
                    action.ended, action.ended_by, action.result = time.monotonic(), ended_by, result
            for group in backend.autoscaling_groups.values():
                group.instance_states = [s for s in group.instance_states if s.instance.id != instance_id]
        instance = backend.ec2_backend.get_instance(instance_id)
        if instance.state != "terminated":
            backend.ec2_backend.terminate_instances([instance_id])

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
        from moto.autoscaling.responses import AutoScalingResponse
        from moto.core.responses import EmptyResult

        stand_in = self
        original_desired = FakeAutoScalingGroup.set_desired_capacity
        original_terminate = AutoScalingBackend.terminate_instance
        original_register = AutoScalingBackend.update_attached_target_groups

        def set_desired_capacity(group: FakeAutoScalingGroup, new_capacity: int | None) -> None:
            active = group.active_instances()
            target = (group.min_size or 0) if new_capacity is None else new_capacity
            if stand_in.termination_hook(group) is None or target >= len(active):
                original_desired(group, new_capacity)
                return
            group.desired_capacity = target
            leaving = [s for s in active if not s.protected_from_scale_in][: len(active) - target]
            for state in leaving:
                stand_in.begin(group, state)

        def terminate_instance(backend: AutoScalingBackend, instance_id: str, should_decrement: bool) -> Any:
            state: Any = next(
                (
                    s
                    for g in backend.autoscaling_groups.values()
                    for s in g.instance_states
                    if s.instance.id == instance_id
                ),
                None,
            )
            group: Any = getattr(state.instance, "autoscaling_group", None) if state is not None else None
            if group is None or stand_in.termination_hook(group) is None:
                return original_terminate(backend, instance_id, should_decrement)
            from moto.autoscaling.models import TerminateInstanceActivity

            original_size = group.desired_capacity
            if should_decrement:
                group.desired_capacity = (group.desired_capacity or 0) - 1
            stand_in.begin(group, state)
            return TerminateInstanceActivity(state.instance, original_size)

        def update_attached_target_groups(backend: AutoScalingBackend, group_name: str) -> None:
            group = backend.autoscaling_groups[group_name]
            leaving = [s for s in group.instance_states if s.lifecycle_state.startswith("Terminating")]
            group.instance_states = [s for s in group.instance_states if s not in leaving]
            try:
                original_register(backend, group_name)
            finally:
                group.instance_states.extend(leaving)

        def complete_lifecycle_action(response: AutoScalingResponse) -> EmptyResult:
            action = stand_in._find(
                response._get_param("LifecycleActionToken"),
                response._get_param("InstanceId"),
                response._get_param("LifecycleHookName"),
                response._get_param("AutoScalingGroupName"),
            )
            stand_in.terminate(
                action.instance_id, "CompleteLifecycleAction", response._get_param("LifecycleActionResult")
            )
            return EmptyResult()

        def record_lifecycle_action_heartbeat(response: AutoScalingResponse) -> EmptyResult:
            action = stand_in._find(
                response._get_param("LifecycleActionToken"),
                response._get_param("InstanceId"),
                response._get_param("LifecycleHookName"),
                response._get_param("AutoScalingGroupName"),
            )
            with stand_in._lock:
                action.heartbeats += 1
            return EmptyResult()

        with (
            mock.patch.object(FakeAutoScalingGroup, "set_desired_capacity", set_desired_capacity),
            mock.patch.object(AutoScalingBackend, "terminate_instance", terminate_instance),
            mock.patch.object(
                AutoScalingBackend, "update_attached_target_groups", update_attached_target_groups
            ),
            mock.patch.object(
                AutoScalingResponse, "complete_lifecycle_action", complete_lifecycle_action, create=True
            ),
            mock.patch.object(
                AutoScalingResponse,
                "record_lifecycle_action_heartbeat",
                record_lifecycle_action_heartbeat,
                create=True,
            ),
        ):
            yield


class Ec2SpotInterruptions:
    """Stands in for EC2 reclaiming Spot capacity and recommending rebalancing, which moto never does.

    ``interrupt`` emits the "EC2 Spot Instance Interruption Warning" of each instance; the
    instance's Auto Scaling group, if it has a termination hook, then puts it in
    Terminating:Wait (its lifecycle action event), and at the notice's end EC2 terminates
    it, hook or not. ``recommend_rebalance`` emits "EC2 Instance Rebalance Recommendation".
    Both events have the shape the EC2 User Guide documents.
    """

    def __init__(self, lifecycle: AutoScalingTerminationLifecycle, account_id: str, region: str) -> None:
        self.lifecycle = lifecycle
        self.account_id = account_id
        self.region = region
        self.interrupted: list[str] = []
        self.reclaimed: list[str] = []
        self._timers: list[threading.Timer] = []
        self._closed = False

    def _arn(self, instance_id: str) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account_id}:instance/{instance_id}"

    def _state(self, instance_id: str) -> Any:
        for group in self.lifecycle._backend().autoscaling_groups.values():
            for state in group.instance_states:
                if state.instance.id == instance_id:
                    return state
        return None

    def interrupt(self, instance_ids: list[str], notice_seconds: float = 120.0) -> None:
        for instance_id in instance_ids:
            self.interrupted.append(instance_id)
            event = service_event(
                self.account_id,
                self.region,
                "aws.ec2",
                "EC2 Spot Instance Interruption Warning",
                [self._arn(instance_id)],
                {"instance-id": instance_id, "instance-action": "terminate"},
            )
            emit_service_event(self.account_id, self.region, event)
            state = self._state(instance_id)
            if state is not None:
                self.lifecycle.begin(state.instance.autoscaling_group, state)
        timer = threading.Timer(notice_seconds, self._reclaim, (list(instance_ids),))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def recommend_rebalance(self, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            event = service_event(
                self.account_id,
                self.region,
                "aws.ec2",
                "EC2 Instance Rebalance Recommendation",
                [self._arn(instance_id)],
                {"instance-id": instance_id},
            )
            emit_service_event(self.account_id, self.region, event)

    def _reclaim(self, instance_ids: list[str]) -> None:
        if self._closed:
            return
        for instance_id in instance_ids:
            self.reclaimed.append(instance_id)
            with contextlib.suppress(Exception):
                self.lifecycle.terminate(instance_id, "Spot interruption")

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        try:
            yield
        finally:
            self._closed = True
            for timer in self._timers:
                timer.cancel()


@dataclass
class FleetOperations:
    """The stand-ins drains need, installed together for the life of a local cloud."""

    sqs: SqsEventSourceMappingBatches
    run_command: SsmRunCommandOnManagedInstances
    lifecycle: AutoScalingTerminationLifecycle
    spot: Ec2SpotInterruptions


@contextlib.contextmanager
def fleet_operations(
    runtime: LambdaInvokeInProcess, queue: AsyncInvocationQueue, account_id: str, region: str
) -> Iterator[FleetOperations]:
    lifecycle = AutoScalingTerminationLifecycle(account_id, region)
    operations = FleetOperations(
        sqs=SqsEventSourceMappingBatches(runtime, queue, region),
        run_command=SsmRunCommandOnManagedInstances(queue, account_id, region),
        lifecycle=lifecycle,
        spot=Ec2SpotInterruptions(lifecycle, account_id, region),
    )
    with (
        operations.sqs.installed(),
        operations.run_command.installed(),
        operations.lifecycle.installed(),
        operations.spot.installed(),
    ):
        yield operations


# --------------------------------------------------------------------------------------
# Approval gate: Secrets Manager secrets, their rotation schedule and RotateSecret running the
# rotation function; HTTP APIs and their stages (canaryfleet_local.approval_server serves them)
# --------------------------------------------------------------------------------------


class _ApprovalGateResource:
    """What the approval gate's CloudFormation stand-ins share: no update, no cleanup needed.

    A mixin: moto finds resource types among CloudFormationModel's direct subclasses only.
    """

    def __init__(self, physical_id: str, attributes: dict[str, str] | None = None) -> None:
        self.physical_id = physical_id
        self.attributes = attributes or {}

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.attribute_names()

    @classmethod
    def attribute_names(cls) -> tuple[str, ...]:
        return ()

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.attributes[attribute_name]

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        return None

    def is_created(self) -> bool:
        return True


class CloudFormationSecretsManagerSecret(_ApprovalGateResource, CloudFormationModel):
    """Stands in for ``AWS::SecretsManager::Secret``, which moto's CloudFormation lacks.

    Creates the secret through moto's Secrets Manager API: ``SecretString`` as given, or
    ``GenerateSecretString`` through GetRandomPassword (with ``SecretStringTemplate`` and
    ``GenerateStringKey`` as CloudFormation combines them). Ref: the secret's ARN.
    """

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def attribute_names(cls) -> tuple[str, ...]:
        return ("Id",)

    @staticmethod
    def _generated(client: Any, spec: dict[str, Any]) -> str:
        options = {
            "PasswordLength": int(spec.get("PasswordLength", 32)),
            "ExcludeCharacters": spec.get("ExcludeCharacters", ""),
            "ExcludeNumbers": _cfn_bool(spec.get("ExcludeNumbers", False)),
            "ExcludePunctuation": _cfn_bool(spec.get("ExcludePunctuation", False)),
            "ExcludeUppercase": _cfn_bool(spec.get("ExcludeUppercase", False)),
            "ExcludeLowercase": _cfn_bool(spec.get("ExcludeLowercase", False)),
            "IncludeSpace": _cfn_bool(spec.get("IncludeSpace", False)),
            "RequireEachIncludedType": _cfn_bool(spec.get("RequireEachIncludedType", True)),
        }
        password = str(client.get_random_password(**options)["RandomPassword"])
        if "SecretStringTemplate" in spec and "GenerateStringKey" in spec:
            document = json.loads(spec["SecretStringTemplate"])
            document[spec["GenerateStringKey"]] = password
            return json.dumps(document)
        return password

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationSecretsManagerSecret:
        props = cloudformation_json.get("Properties", {})
        client = boto3.client("secretsmanager", region_name=region_name)
        value = (
            props["SecretString"]
            if "SecretString" in props
            else cls._generated(client, props.get("GenerateSecretString", {}))
        )
        created = client.create_secret(
            Name=props.get("Name", resource_name),
            Description=props.get("Description", ""),
            SecretString=value,
            Tags=props.get("Tags", []),
        )
        return cls(created["ARN"], {"Id": created["ARN"]})


class CloudFormationSecretsManagerRotationSchedule(_ApprovalGateResource, CloudFormationModel):
    """Stands in for ``AWS::SecretsManager::RotationSchedule``, which moto's CloudFormation lacks.

    Records the rotation function and period on the secret, so that a later RotateSecret
    (``rotate_secret(SecretId=...)``, as the schedule would call it) runs the real function
    through moto. AWS also rotates once when the schedule is created; here the functions are
    not registered with the local cloud yet at that moment, so that first rotation is left out.
    """

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::RotationSchedule"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationSecretsManagerRotationSchedule:
        from moto.secretsmanager.models import secretsmanager_backends

        props = cloudformation_json.get("Properties", {})
        secret: Any = secretsmanager_backends[account_id][region_name].secrets[props["SecretId"]]
        rules = props.get("RotationRules", {})
        days = rules.get("AutomaticallyAfterDays")
        match = re.fullmatch(r"rate\((\d+) days?\)", str(rules.get("ScheduleExpression", "")))
        secret.rotation_lambda_arn = props.get("RotationLambdaARN", "")
        secret.auto_rotate_after_days = int(days if days is not None else match.group(1) if match else 0)
        secret.rotation_enabled = secret.rotation_requested = True
        return cls(f"{props['SecretId']}|rotation")


class CloudFormationHttpApi(_ApprovalGateResource, CloudFormationModel):
    """Stands in for ``AWS::ApiGatewayV2::Api`` (an HTTP API with an OpenAPI ``Body``, as SAM writes it).

    moto's CloudFormation lacks the type; its API Gateway v2 API imports the body, so the
    routes and Lambda integrations the template declares exist as on AWS. Ref: the API id;
    ApiEndpoint: its execute-api URL (the local server is canaryfleet_local.approval_server).
    """

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApiGatewayV2::Api"

    @classmethod
    def attribute_names(cls) -> tuple[str, ...]:
        return ("ApiEndpoint", "ApiId")

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationHttpApi:
        props = cloudformation_json.get("Properties", {})
        body = props.get("Body", {})
        client = boto3.client("apigatewayv2", region_name=region_name)
        title = body.get("info", {}).get("title") or props.get("Name") or resource_name
        api = client.create_api(Name=str(title), ProtocolType=props.get("ProtocolType", "HTTP"))
        if body:
            client.reimport_api(ApiId=api["ApiId"], Body=json.dumps(body))
        return cls(api["ApiId"], {"ApiEndpoint": api["ApiEndpoint"], "ApiId": api["ApiId"]})


class CloudFormationHttpApiStage(_ApprovalGateResource, CloudFormationModel):
    """Stands in for ``AWS::ApiGatewayV2::Stage``, which moto's CloudFormation lacks (Ref: its name)."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApiGatewayV2::Stage"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationHttpApiStage:
        props = cloudformation_json.get("Properties", {})
        settings = {
            key: int(value) if key == "ThrottlingBurstLimit" else float(value)
            for key, value in props.get("DefaultRouteSettings", {}).items()
            if key in ("ThrottlingBurstLimit", "ThrottlingRateLimit")
        }
        optional = {"DefaultRouteSettings": settings, "AccessLogSettings": props.get("AccessLogSettings")}
        boto3.client("apigatewayv2", region_name=region_name).create_stage(
            ApiId=props["ApiId"],
            StageName=props.get("StageName", "$default"),
            AutoDeploy=_cfn_bool(props.get("AutoDeploy", False)),
            **{key: value for key, value in optional.items() if value},
        )
        return cls(props.get("StageName", "$default"))


class _RotationStepsFailLoudly:
    """A Lambda backend whose failed invocations raise (moto's RotateSecret ignores them)."""

    def __init__(self, backend: LambdaBackend) -> None:
        self._backend = backend

    def get_function(self, function_name: str, qualifier: str | None = None) -> Any:
        return self._backend.get_function(function_name, qualifier)

    def invoke(
        self, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes | str | None:
        payload = self._backend.invoke(function_name, qualifier, body, headers, response_headers)
        if response_headers.get("x-amz-function-error"):
            raise RuntimeError(f"rotation step {json.loads(body).get('Step')} failed: {payload!r:.500}")
        return payload


def rotate_secret_with_its_function(secret_id: str, client_request_token: str | None = None) -> str:
    """Stands in for Secrets Manager's RotateSecret calling the secret's rotation function.

    moto's RotateSecret forgets the secret's function unless it is passed again, invokes it
    through the Lambda backend that only echoes payloads, and ignores what it answers. This runs the same
    RotateSecret with moto's real Lambda backend (the local cloud runs the real handler for
    createSecret, setSecret, testSecret and finishSecret) and fails if a step fails.
    Returns the new version's id.
    """
    token = client_request_token or str(uuid.uuid4())

    def backend(account_id: str, region: str) -> _RotationStepsFailLoudly:
        return _RotationStepsFailLoudly(lambda_backends[account_id][region])

    client = boto3.client("secretsmanager")
    # AWS rotates with the function the secret names; moto forgets it unless it is passed again.
    function = client.describe_secret(SecretId=secret_id).get("RotationLambdaARN")
    if not function:
        raise ValueError(f"secret {secret_id} has no rotation function")
    with mock.patch("moto.awslambda.utils.get_backend", backend):
        client.rotate_secret(SecretId=secret_id, ClientRequestToken=token, RotationLambdaARN=function)
    return token


# --------------------------------------------------------------------------------------
# DynamoDB: concurrent requests
# --------------------------------------------------------------------------------------


class DynamoDBConcurrentRequests:
    """Stands in for DynamoDB serving requests from many callers at once.

    moto's tables are plain dicts: a Query or Scan iterating one while another thread's
    PutItem adds a key fails with "dictionary changed size during iteration". On the local
    cloud functions, state machine threads, the simulator and tests call DynamoDB at the same
    time, so each request is handled whole under one lock, as DynamoDB's own isolation of
    single-item operations would have it.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from moto.dynamodb.responses import DynamoHandler

        original = DynamoHandler.call_action
        lock = self._lock

        def call_action(handler: Any) -> Any:
            with lock:
                return original(handler)

        with mock.patch.object(DynamoHandler, "call_action", call_action):
            yield
