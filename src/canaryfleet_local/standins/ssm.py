"""Systems Manager: State Manager associations from templates, and Run Command on managed instances."""

from __future__ import annotations

import contextlib
import datetime
import inspect
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, Self
from unittest import mock

from moto.core.common_models import CloudFormationModel
from moto.core.utils import utcnow  # now as moto keeps a command's times: UTC, no offset
from moto.ec2.models import ec2_backends
from moto.ssm.exceptions import SSMException
from moto.ssm.models import SimpleSystemManagerBackend

from canaryfleet_local.standins.cloudformation import CloudFormationStandIn
from canaryfleet_local.standins.eventbridge import emit_service_event, service_event
from canaryfleet_local.standins.lambda_async import AsyncInvocationQueue

# Association id -> the association as the template declared it (see CloudFormationSsmAssociation).
SSM_ASSOCIATIONS: dict[str, dict[str, Any]] = {}


class CloudFormationSsmAssociation(CloudFormationStandIn, CloudFormationModel):
    """Stands in for the ``AWS::SSM::Association`` resource (State Manager).

    moto has no association API at all, so nothing can run one on a schedule; the
    association is kept, with its resolved properties, in ``SSM_ASSOCIATIONS`` under a new
    association id (Ref), for tests and the fleet simulator to read.
    """

    RESOURCE_TYPE = "AWS::SSM::Association"
    ATTRIBUTES = ("AssociationId",)
    ON_UPDATE = "kept"

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        association_id = str(uuid.uuid4())
        SSM_ASSOCIATIONS[association_id] = dict(props)
        return cls(association_id, {"AssociationId": association_id})

    @classmethod
    def update_resource(cls, resource: Self, props: dict[str, Any]) -> None:
        SSM_ASSOCIATIONS[resource.physical_id] = dict(props)  # it keeps its id: only what it runs changes

    @classmethod
    def delete_resource(cls, physical_id: str, props: dict[str, Any], account_id: str, region: str) -> None:
        SSM_ASSOCIATIONS.pop(physical_id, None)


@dataclass
class CommandInvocationResult:
    """How the document ended on one instance, as the instance's SSM agent reports it."""

    status: str  # Success, Failed, TimedOut, ...
    output: str = ""
    error: str = ""
    # Systems Manager sends Run Command's events "on a best effort basis" ("Monitoring Systems
    # Manager events with Amazon EventBridge", Systems Manager User Guide): True plays this
    # invocation's status-change event never delivered (its status is still GetCommandInvocation's).
    event_lost: bool = False


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

    def delivery_delay(self, instance_id: str) -> float:
        """Seconds after SendCommand that the instance's agent can take a command (0: at once)."""
        ...


@dataclass
class RunCommandCall:
    command_id: str
    document: str
    instance_ids: list[str]
    parameters: dict[str, list[str]]
    comment: str


_COMMAND_LIMIT = 50
# botocore's ssm model (2014-11-06), SendCommandRequest.MaxConcurrency: "The maximum number of
# managed nodes that are allowed to run the command at the same time. You can specify a number
# such as 10 or a percentage such as 10%. The default value is 50." (pattern
# ^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$).
_DEFAULT_MAX_CONCURRENCY = "50"


# Command document plugin reference, aws:runShellScript: "timeoutSeconds ... Default: 3600".
_DEFAULT_PLUGIN_TIMEOUT_SECONDS = 3600
_PARAMETER = re.compile(r"\{\{\s*([A-Za-z0-9_.:-]+)\s*\}\}")


def execution_timeout(content: dict[str, Any], parameters: dict[str, list[str]]) -> int:
    """The document's execution timeout: its steps' ``timeoutSeconds``, each with its
    ``{{ Parameter }}`` put in place as Run Command does, or the plugin's default.

    The Systems Manager User Guide (Understanding command statuses) counts "the Execution timeout
    parameter", one document's ``timeoutSeconds``, into a command's expiry; for a document of
    several steps, each with its own, it says nothing: their sum is taken (they run one after the
    other).
    """
    total = 0
    for step in content.get("mainSteps") or []:
        written = str((step.get("inputs") or {}).get("timeoutSeconds", _DEFAULT_PLUGIN_TIMEOUT_SECONDS))
        value = _PARAMETER.sub(lambda m: (parameters.get(m[1]) or [""])[0], written)
        total += int(value) if value.strip().isdigit() else _DEFAULT_PLUGIN_TIMEOUT_SECONDS
    return total or _DEFAULT_PLUGIN_TIMEOUT_SECONDS


def _timestamp(at: datetime.datetime) -> str:
    """A time as Run Command writes it: ISO 8601, milliseconds, UTC ("Z")."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# An invocation's detailed status (StatusDetails) -> its Status, where they differ: botocore's ssm
# model, CommandInvocationStatus (Pending, InProgress, Delayed, Success, Cancelled, TimedOut,
# Failed, Cancelling) and GetCommandInvocation's StatusDetails ("Delivery Timed Out", "Execution
# Timed Out": Status TimedOut).
_STATUS = {"DeliveryTimedOut": "TimedOut", "ExecutionTimedOut": "TimedOut"}


def max_concurrency(value: str | None, targets: int) -> int:
    """How many of a command's ``targets`` instances run it at once (at least one)."""
    text = str(value or _DEFAULT_MAX_CONCURRENCY)
    if text.endswith("%"):
        return max(1, math.ceil(targets * int(text[:-1]) / 100))
    return max(1, min(int(text), max(1, targets)))


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
    documents them. The instances of one command run it at the same time, as each instance's
    agent runs its own invocation, at most ``MaxConcurrency`` at once (the model's default, 50,
    when the request gives none); each invocation's event goes out as its instance finishes,
    the command's once all have. Without an agent no instance is managed.
    """

    def __init__(self, queue: AsyncInvocationQueue, account_id: str, region: str) -> None:
        self.queue = queue
        self.account_id = account_id
        self.region = region
        self.agent: ManagedInstanceAgent | None = None
        self.calls: list[RunCommandCall] = []
        self.rejected: list[tuple[str, str]] = []  # (error code, message)
        self.lost_events: list[tuple[str, str]] = []  # (command id, instance id) of each event not sent

    def _reject(self, code: str, message: str) -> None:
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
        """The command's run: each instance's agent runs the document at the same time as the
        others, at most ``MaxConcurrency`` at once, on threads of their own (an instance's run
        takes as long as its document, and must not hold up Lambda's queue)."""
        instance_ids = [str(invocation["InstanceId"]) for invocation in command.invocations]
        concurrency = max_concurrency(getattr(command, "max_concurrency", None), len(instance_ids))
        invocations = {str(invocation["InstanceId"]): invocation for invocation in command.invocations}

        def run_on(instance_id: str) -> bool:
            assert self.agent is not None
            result = self._deliver(command, invocations[instance_id], self.agent.delivery_delay(instance_id))
            if result is None and utcnow() >= command.expires_after:
                # Its turn (MaxConcurrency) came after the expiry: Pending then, it never runs.
                result = CommandInvocationResult(
                    "DeliveryTimedOut", error="the command expired before its run"
                )
            if result is None:
                invocations[instance_id].update(ExecutionStartDateTime=_timestamp(utcnow()))
                result = self._run_until_expiry(command, instance_id, parameters)
            invocations[instance_id].update(
                Status=_STATUS.get(result.status, result.status),
                StatusDetails=result.status,
                ResponseCode=0 if result.status == "Success" else 1,
                StandardOutputContent=result.output[:24_000],
                StandardErrorContent=result.error[:8_000],
            )
            if result.status != "DeliveryTimedOut":
                invocations[instance_id].update(ExecutionEndDateTime=_timestamp(utcnow()))
            if result.event_lost:
                self.lost_events.append((command.command_id, instance_id))
            else:
                self._emit(
                    "EC2 Command Invocation Status-change Notification",
                    [self._instance_arn(instance_id)],
                    {
                        "command-id": command.command_id,
                        "document-name": command.document_name,
                        "instance-id": instance_id,
                        "requested-date-time": self._requested(command),
                        "status": _STATUS.get(result.status, result.status),
                    },
                )
            return result.status == "Success"

        def finish(succeeded: list[bool]) -> None:
            failed = succeeded.count(False)
            command.status = "Failed" if failed else "Success"
            command.status_details = command.status
            command.error_count = failed
            self._emit(
                "EC2 Command Status-change Notification",
                [self._instance_arn(i) for i in command.instance_ids],
                {
                    "command-id": command.command_id,
                    "document-name": command.document_name,
                    "expire-after": _timestamp(command.expires_after),
                    "parameters": parameters,
                    "requested-date-time": self._requested(command),
                    "status": command.status,
                },
            )

        def run() -> None:
            release = self.queue.hold()

            def on_threads() -> None:
                try:
                    with ThreadPoolExecutor(concurrency, thread_name_prefix="ssm-agent") as agents:
                        finish(list(agents.map(run_on, instance_ids)))
                finally:
                    release()

            threading.Thread(target=on_threads, name=f"ssm-{command.command_id}", daemon=True).start()

        return run

    @staticmethod
    def _deliver(command: Any, invocation: dict[str, Any], delay: float) -> CommandInvocationResult | None:
        """Wait until the instance's agent takes the command (None), or the command expires first.

        Run Command retries a command it could not send ("Delayed: The system attempted to send
        the command to the managed node but wasn't successful. The system retries again.") and
        keeps it Pending until the sum of its Timeout (seconds) and the document's execution
        timeout has passed, then the invocation is "Delivery Timed Out" (Systems Manager User
        Guide, Understanding command statuses; ExpiresAfter, set at SendCommand above).
        """
        if delay <= 0:
            return None
        invocation.update(Status="Delayed", StatusDetails="Delayed")
        window = (command.expires_after - command.requested_date_time).total_seconds()
        time.sleep(min(delay, window))
        if delay >= window:
            return CommandInvocationResult(
                "DeliveryTimedOut", error="the command expired before its delivery"
            )
        invocation.update(Status="InProgress", StatusDetails="InProgress")
        return None

    def _run_until_expiry(
        self, command: Any, instance_id: str, parameters: dict[str, list[str]]
    ) -> CommandInvocationResult:
        """The agent's run, or "Delivery Timed Out" if the command expires first.

        botocore's ssm model, Command.ExpiresAfter: "If a command expires, it changes status to
        DeliveryTimedOut for all invocations that have the status InProgress, Pending, or
        Delayed." Here the instance's agent is not stopped by that: it runs the document to its end
        (or to its own execution timeout), uploading what the document uploads, and its result
        changes nothing of the invocation, whose status is final. AWS's pages do not say whether
        the expiry stops a run on the instance; this is the reading under which the drains must
        keep an instance until its run has ended. That run is still work under way for the local
        cloud (``wait_idle`` waits for it), as the instance still works on AWS.
        """
        assert self.agent is not None
        agent = self.agent
        outcome: list[CommandInvocationResult] = []
        release = self.queue.hold()

        def run() -> None:
            try:
                outcome.append(agent.run(command.command_id, instance_id, command.document_name, parameters))
            except Exception as exc:  # the agent's own crash: the invocation fails
                outcome.append(CommandInvocationResult("Failed", error=repr(exc)))
            finally:
                release()

        runner = threading.Thread(target=run, name=f"ssm-agent-{instance_id}", daemon=True)
        try:
            runner.start()
        except BaseException:
            release()
            raise
        while runner.is_alive():
            left = (command.expires_after - utcnow()).total_seconds()
            if left <= 0:
                return CommandInvocationResult(
                    "DeliveryTimedOut", error="the command expired while its run was in progress"
                )
            runner.join(min(left, self._EXPIRY_POLL_SECONDS))
        return outcome[0]

    # How often a run is looked at against its command's expiry (which a test may bring forward).
    _EXPIRY_POLL_SECONDS = 0.05

    @staticmethod
    def _requested(command: Any) -> str:
        return _timestamp(command.requested_date_time)

    def _instance_arn(self, instance_id: str) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account_id}:instance/{instance_id}"

    def _emit(self, detail_type: str, resources: list[str], detail: dict[str, Any]) -> None:
        event = service_event(self.account_id, self.region, "aws.ssm", detail_type, resources, detail)
        emit_service_event(self.account_id, self.region, event)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
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
                # The model's list limit is checked before anything else, as AWS validates a request.
                if len(command.instance_ids) > _COMMAND_LIMIT:
                    stand_in._check_instances(list(command.instance_ids))
                parameters = stand_in._resolved_parameters(backend, command)
                stand_in._check_instances(list(command.instance_ids))
            except Exception:
                backend._commands.remove(command)  # AWS creates no command for a refused call
                raise
            # moto takes ExpiresAfter to be TimeoutSeconds after the request. Run Command keeps
            # an invocation Pending or Delayed until "the sum of the Timeout (seconds) parameter
            # and the Execution timeout parameter" has passed, then it is "Delivery Timed Out"
            # (Systems Manager User Guide, Understanding command statuses), and ExpiresAfter "is
            # calculated based on the total timeout for the overall command" (botocore's ssm
            # model, Command.ExpiresAfter).
            content = backend._documents[str(command.document_name)].get_default_version().content_json
            command.expires_after = command.requested_date_time + datetime.timedelta(
                seconds=int(command.timeout_seconds) + execution_timeout(content, parameters)
            )
            command.status = command.status_details = "InProgress"
            command.completed_count = 0
            for invocation in command.invocations:
                # moto gives every invocation the request's time as its start and an end; the
                # model's GetCommandInvocation.ExecutionStartDateTime: "If the plugin hasn't
                # started to run, the string is empty" (run_on sets both when they happen).
                invocation.update(
                    Status="InProgress",
                    StatusDetails="InProgress",
                    ExecutionStartDateTime="",
                    ExecutionEndDateTime="",
                )
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


class SsmParameterValueLimits:
    """Stands in for Parameter Store's value size limits, which moto does not check.

    "Standard parameters have a value limit of 4 KB. Advanced parameters have a value limit of 8 KB"
    (botocore's ssm model 2014-11-06, PutParameterRequest.Value and Tier; "Managing parameter tiers":
    https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html).
    The application registry keeps each application's entry in a Standard parameter, so an entry
    that grows past 4 KB would fail PutParameter on AWS; here it is refused with ValidationException.
    Intelligent-Tiering takes a value up to the Advanced limit (it picks the Advanced tier for it).
    """

    STANDARD_LIMIT_BYTES = 4_096
    ADVANCED_LIMIT_BYTES = 8_192

    @classmethod
    def check(cls, value: str, tier: str | None) -> None:
        size = len(value.encode())
        limit = cls.STANDARD_LIMIT_BYTES if tier in (None, "Standard") else cls.ADVANCED_LIMIT_BYTES
        if size > limit:
            raise SSMException(
                "ValidationException",
                f"{tier or 'Standard'} tier parameters support a maximum parameter value of {limit} "
                f"bytes; this one has {size}.",
            )

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = SimpleSystemManagerBackend.put_parameter

        signature = inspect.signature(original)

        def put_parameter(backend: SimpleSystemManagerBackend, *args: Any, **kwargs: Any) -> Any:
            given = signature.bind(backend, *args, **kwargs).arguments
            SsmParameterValueLimits.check(str(given.get("value") or ""), given.get("tier"))
            return original(backend, *args, **kwargs)

        with mock.patch.object(SimpleSystemManagerBackend, "put_parameter", put_parameter):
            yield
