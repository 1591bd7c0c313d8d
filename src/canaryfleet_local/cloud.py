"""The local cloud: template.yaml deployed on moto, in-process, with its state machines running."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_api._internal import mock_random

from canaryfleet_local import cloudformation_rules
from canaryfleet_local.faults import FaultInjection, FaultPlan
from canaryfleet_local.standins.aws_clients import shared_client
from canaryfleet_local.standins.cloudformation import apply_properties_moto_skips
from canaryfleet_local.standins.install import PlatformStandIns
from canaryfleet_local.standins.lambda_async import lambda_dead_letter_queues
from canaryfleet_local.standins.stepfunctions import TERMINAL_STATUSES, create_executable_state_machine
from canaryfleet_local.template import DEFAULT_TEMPLATE, PreparedTemplate, prepare

STACK_NAME = "canaryfleet"


class LocalCloudError(Exception):
    """The local cloud could not be created or did not reach the state asked for."""


@dataclass
class ExecutionRecord:
    arn: str
    name: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    states_entered: list[str] = field(default_factory=list)
    start: float = 0.0


class LocalCloud:
    """template.yaml as a running platform on moto.

    Use as a context manager. Inside it every boto3 client talks to moto, the stack's
    resources exist, state machines execute, Lambda functions run their real handlers, and
    EventBridge rules deliver to their targets (see :mod:`canaryfleet_local.standins`).
    """

    def __init__(
        self,
        template_path: Path = DEFAULT_TEMPLATE,
        parameters: dict[str, str] | None = None,
        region: str = "us-east-1",
        faults: FaultPlan | None = None,
    ) -> None:
        self.template_path = template_path
        # The fleet simulator publishes the load balancer's metrics every second, not every
        # minute as AWS does: the local stories' analyses sample them each second.
        # Its Step Functions sends ABORTED at the stop, as AWS does, while the stopped Task's
        # function may still run: the recovery waits StoppedTaskGraceSeconds for it. Local task
        # functions return in well under a second (AWS's grace covers their 30-s timeout): 3 s
        # leaves a wide margin on a busy test machine.
        self.parameters = {
            "LoadBalancerMetricsPeriod": "1",
            "StoppedTaskGraceSeconds": "3",
            **(parameters or {}),
        }
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self.code_bucket = f"canaryfleet-local-code-{self.account_id}"
        self.stand_ins = PlatformStandIns(self.account_id, region)
        self.runtime = self.stand_ins.runtime
        self.queue = self.stand_ins.queue
        self.event_targets = self.stand_ins.event_targets
        self.s3_events = self.stand_ins.s3_events
        self.codedeploy = self.stand_ins.codedeploy
        self.metric_math_alarms = self.stand_ins.metric_math_alarms
        self.outputs: dict[str, str] = {}
        self.physical_ids: dict[str, str] = {}
        self.function_names: dict[str, str] = {}  # logical id -> function name
        self._stack = contextlib.ExitStack()
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self.prepared: PreparedTemplate | None = None
        plan = faults if faults is not None else FaultPlan.from_environment()
        self.faults = FaultInjection(plan) if plan is not None else None

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> LocalCloud:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(Exception):
            self.queue.wait_idle(timeout=10)
        with contextlib.suppress(Exception):
            self._stop_running_executions()
        self.queue.shutdown()
        # Invocations in flight at the first pass (the queue's, finished by its shutdown, and the
        # stopped executions' own tasks) may have started executions since: stopped too, or their
        # threads would call the next cloud's functions, which have the same names.
        with contextlib.suppress(Exception):
            self._stop_running_executions()
        with self.runtime.no_invocation_running(timeout=10):
            self._stack.close()

    def _stop_running_executions(self) -> None:
        """End executions still waiting, so none of their threads outlives this cloud."""
        self.stand_ins.step_functions_events.silence()  # no recovery of what closing stops
        sfn = self.client("stepfunctions")
        for machine in sfn.list_state_machines()["stateMachines"]:
            running = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
            for execution in running["executions"]:
                # Its task-token waits end with it (standins/stepfunctions.py, stop_execution_aborts_at_once).
                sfn.stop_execution(executionArn=execution["executionArn"], cause="local cloud closed")

    def _start(self) -> None:
        env = {
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            # moto loads its list of every public AMI whenever it makes an EC2 backend (at the
            # first EC2 call and again when the cloud closes): nothing here looks images up, and
            # launches do not check them (moto's AMI validation is off), so it is not loaded.
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        }
        self._stack.enter_context(mock.patch.dict(os.environ, env))
        self._stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        self.fleet_operations = self._stack.enter_context(self.stand_ins.installed())
        # moto names a stack's resources with its own random suffixes. Drawn from the same seed,
        # the platform's resources get the same names in every local cloud of a process, so its
        # state machine definitions are the same texts and moto's parse of each is reused
        # (parsing.parsed_once) instead of made again for every cloud, a tenth of the suite's
        # CPU. Identifiers made afterwards (instances, executions, messages) are random again.
        mock_random.seed(STACK_NAME)
        try:
            self._deploy()
        finally:
            mock_random.seed()
        if self.faults is not None:  # the platform is up; from now on its functions meet faults
            self._stack.enter_context(self.faults.installed())
            refused = self.faults.plan.refuse_failed_attempt_tokens
            self.stand_ins.step_functions_limits.failed_attempt_tokens_refused = refused
            self.runtime.run = self.faults.wrap_run(self.runtime.run, self._logical_id)  # type: ignore[method-assign,assignment]

    def _deploy(self) -> None:
        prepared = prepare(self.template_path, self.code_bucket, self.parameters)
        self.prepared = prepared
        s3 = self.client("s3")
        s3.create_bucket(Bucket=self.code_bucket)
        for key, body in prepared.packages.items():
            s3.put_object(Bucket=self.code_bucket, Key=key, Body=body)

        # As `sam deploy` does (samconfig.toml's resolve_s3): the transformed template is over
        # CreateStack's 51,200-byte TemplateBody limit, so it goes to the bucket with the code and
        # the stack is created from its path-style URL.
        template = json.dumps(prepared.cloudformation).encode()
        template_key = f"{STACK_NAME}/{hashlib.sha256(template).hexdigest()}.template"
        s3.put_object(Bucket=self.code_bucket, Key=template_key, Body=template)
        cfn = self.client("cloudformation")
        cfn.create_stack(
            StackName=STACK_NAME,
            TemplateURL=f"{s3.meta.endpoint_url}/{self.code_bucket}/{template_key}",
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise LocalCloudError(
                f"stack {STACK_NAME}: {stack['StackStatus']} {stack.get('StackStatusReason')}"
            )
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        paginator = cfn.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=STACK_NAME):
            for summary in page["StackResourceSummaries"]:
                self.physical_ids[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]

        apply_properties_moto_skips(prepared.cloudformation, self.physical_ids, self.parameters)
        for source in prepared.state_machines:
            arn = self.physical_ids[source.logical_id]
            substitutions = {key: self.outputs[output] for key, output in source.substitution_outputs.items()}
            create_executable_state_machine(
                name=arn.rsplit(":", 1)[1],
                definition=source.definition,
                substitutions=substitutions,
                role_arn=self.outputs[source.role_output],
            )
        for logical_id, code in prepared.functions.items():
            name = self.physical_ids[logical_id]
            self.function_names[logical_id] = name
            self.runtime.register(name, code)
        self.queue.dead_letter_queues.update(
            lambda_dead_letter_queues(prepared.cloudformation, self.physical_ids)
        )

    def _logical_id(self, function_name: str) -> str:
        """The template's logical id of a function, from its name or ARN."""
        code = self.runtime.functions.get(function_name.rsplit(":", 1)[-1])
        return code.logical_id if code else function_name

    # -- access ------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A client of the local cloud (one per service: clients are thread-safe and slow to make)."""
        with self._clients_lock:
            if service not in self._clients:
                if service == "cloudformation":  # moto creates stacks AWS would refuse: its own client
                    make: Callable[..., Any] = boto3.client  # any service name: the stubs type each literal
                    self._clients[service] = make(service, region_name=self.region)
                    cloudformation_rules.refuse_what_cloudformation_refuses(self._clients[service])
                else:
                    self._clients[service] = shared_client(service, self.region)
            return self._clients[service]

    def resource(self, logical_id: str) -> str:
        """Physical id (name or ARN) of a resource of template.yaml."""
        try:
            return self.physical_ids[logical_id]
        except KeyError:
            raise LocalCloudError(f"template.yaml has no resource {logical_id}") from None

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise LocalCloudError(f"template.yaml has no output {name}") from None

    # -- waiting -----------------------------------------------------------------------
    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every queued event delivery and async invocation has run."""
        if not self.queue.wait_idle(timeout):
            raise LocalCloudError(f"event deliveries still running after {timeout}s")

    def execution_listings(
        self, state_machine_logical_id: str, status: str | None = None
    ) -> list[dict[str, Any]]:
        """The state machine's executions as ListExecutions lists them (ARN, status, start and
        stop dates), only those in ``status`` if given."""
        sfn = self.client("stepfunctions")
        arn = self.resource(state_machine_logical_id)
        filters = {"statusFilter": status} if status else {}
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, **filters)
        return [dict(execution) for page in pages for execution in page["executions"]]

    def executions(self, state_machine_logical_id: str, status: str | None = None) -> list[str]:
        """ARNs of the state machine's executions (only those in ``status`` if given)."""
        return [e["executionArn"] for e in self.execution_listings(state_machine_logical_id, status)]

    def wait_for_execution(self, execution_arn: str, timeout: float = 30.0) -> ExecutionRecord:
        """Wait until the execution ends; raise LocalCloudError after ``timeout`` seconds."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        pause = 0.02  # growing to 0.2 s: the waiting thread shares the interpreter with the execution
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] in TERMINAL_STATUSES:
                break
            if time.monotonic() > deadline:
                raise LocalCloudError(f"{execution_arn} still {described['status']} after {timeout}s")
            time.sleep(pause)
            pause = min(pause * 1.5, 0.2)
        history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
        output = described.get("output")
        return ExecutionRecord(
            arn=execution_arn,
            name=described["name"],
            status=described["status"],
            output=json.loads(output) if output else None,
            error=described.get("error"),
            cause=described.get("cause"),
            states_entered=entered,
            start=described["startDate"].timestamp(),
        )
