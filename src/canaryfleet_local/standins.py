"""Every stand-in for an AWS behaviour that moto lacks, in one place.

Each class is named after the AWS behaviour it replaces and says which moto gap it fills.
Nothing outside this module patches moto. The stand-ins are installed by
:class:`canaryfleet_local.cloud.LocalCloud` for the life of one local cloud and removed
after it.
"""

from __future__ import annotations

import contextlib
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
from typing import Any, cast
from unittest import mock

import boto3
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


class LambdaInvokeInProcess:
    """Stands in for Lambda's Invoke (moto needs Docker, or only echoes the payload).

    Runs the function's real handler module, loaded from its CodeUri, with the environment
    variables of the function's configuration plus those the Lambda runtime sets. One
    invocation runs at a time, because the environment of a process is shared; async
    invocations ("Event", EventBridge targets) go through :class:`AsyncInvocationQueue`.
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
        with (
            self._lock,
            _environment({**fn.environment_vars, **runtime_env}),
            self._execution_environment(name),
        ):
            context = _LambdaContext(name, fn.function_arn, int(fn.memory_size), int(fn.timeout))
            started = time.monotonic()
            error_type: str | None = None
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

        with mock.patch.object(LambdaBackend, "invoke", invoke):
            yield


def _is_layer_module(name: str) -> bool:
    return name == LAYER_PACKAGE or name.startswith(LAYER_PACKAGE + ".")


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update({name: str(value) for name, value in values.items()})
    try:
        yield
    finally:
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


@dataclass
class AsyncInvocationQueue:
    """Stands in for Lambda's asynchronous invocation queue and EventBridge's delivery retries.

    Deliveries run on worker threads, after the call that caused them has returned, as on
    AWS. A failed Lambda invocation is retried twice (Lambda's default for async
    invocations); what still fails is kept in ``failed`` for tests to read.
    """

    runtime: LambdaInvokeInProcess
    attempts: int = 3
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
            for _ in range(self.attempts):
                response, failed = self.runtime.run(function_name, body, "Event")
                if not failed:
                    return
                error = json.loads(response).get("errorType", "Unhandled")
            self.failed.append(
                FailedDelivery(target=function_name, error=error, event=json.loads(body or "{}"))
            )

        self._submit(work)

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
                original(rule, event, transform_input)
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


def register_cloudformation_resource_types() -> None:
    """Make moto's CloudFormation see the resource types defined above."""
    from moto.cloudformation import parsing

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


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
