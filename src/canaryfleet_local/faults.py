"""Fault injection on the local cloud: AWS API calls that fail, Lambda invocations that fail or time out.

A :class:`FaultPlan` is configuration, not code: pass one to ``LocalCloud(faults=...)``, or
set ``CANARYFLEET_LOCAL_FAULTS`` to its JSON (or to a path of a JSON or YAML file) and
every local cloud of the process uses it, e.g.::

    CANARYFLEET_LOCAL_FAULTS='{"seed": 7, "aws": [{"rate": 0.1}],
                               "lambda": {"fail_rate": 0.05, "timeout_rate": 0.05}}' \\
        canaryfleet local rollout --scenario healthy

Faults reach only what the platform's functions do, never the simulated world around them
(the fleet simulator, the instances, the test itself), since that world plays AWS's side.

- An AWS API call of a function fails at the HTTP level, before moto sees it: a throttling
  error or a server error in the service's own protocol, so botocore's retries (the
  functions' standard mode, five attempts) treat it as they would on AWS. The rate is per
  attempt.
- A Lambda invocation fails before the handler runs (``Lambda.ServiceException``: the
  caller's retry policy applies), or times out after the handler ran
  (``Sandbox.Timedout``: its effects happened, its answer was lost).

Every injected fault is counted in :attr:`FaultInjection.counts`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from unittest import mock

import yaml
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse
from pydantic import BaseModel, ConfigDict, Field

from canaryfleet_local.standins.lambda_ import TIMED_OUT
from canaryfleet_local.standins.lambda_async import LAMBDA_SERVICE_EXCEPTION

if TYPE_CHECKING:
    from canaryfleet_local.cloud import LocalCloud

ENVIRONMENT_VARIABLE = "CANARYFLEET_LOCAL_FAULTS"

Run = Callable[[str, bytes | str | None, str], tuple[bytes, bool]]


class AwsFault(BaseModel):
    """A fraction of one service's (or every service's) API calls that fail."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str = Field(default="*", description="Botocore's service id, e.g. dynamodb, sfn, s3 (glob).")
    operation: str = Field(default="*", description="The API operation, e.g. PutItem (glob).")
    rate: float = Field(ge=0.0, le=1.0, description="Fraction of attempts that fail.")
    error: Literal["throttle", "server", "either"] = "either"
    first: int | None = Field(
        default=None,
        ge=1,
        description="Only the first this many attempts that match may fail, then none: a burst (a"
        " quota's bucket empty for a while) rather than a steady rate.",
    )


class LambdaFaults(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fail_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="Invocations refused before running.")
    timeout_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Invocations that time out after running."
    )
    functions: str = Field(default="*", description="Logical ids of the functions affected (glob).")


class FaultPlan(BaseModel):
    """What fails, and how often. The seed makes a run repeatable (as far as thread timing allows)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    seed: int = 0
    aws: tuple[AwsFault, ...] = ()
    lambda_: LambdaFaults = Field(default_factory=LambdaFaults, alias="lambda")
    refuse_failed_attempt_tokens: bool = Field(
        default=False,
        description="Step Functions refuses a callback task's token from a failed attempt until its"
        " Retry attempts it again (AWS documents neither this nor the stand-in's default, the token"
        " left open): the stricter reading, for answers given in that gap.",
    )

    @classmethod
    def from_environment(cls) -> FaultPlan | None:
        """The plan ``CANARYFLEET_LOCAL_FAULTS`` gives (JSON, or a path to JSON or YAML), if set."""
        value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
        if not value:
            return None
        text = value if value.startswith("{") else Path(value).read_text()
        return cls.model_validate(json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text))


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _throttle(service: str, request: AWSPreparedRequest) -> tuple[int, dict[str, str], str]:
    """A throttling error in the protocol the request speaks (JSON, query, REST-XML, REST-JSON)."""
    headers = {_text(name).lower(): _text(value) for name, value in request.headers.items()}
    message = "Rate exceeded (injected by the local cloud)"
    if "x-amz-target" in headers:
        body = json.dumps({"__type": "ThrottlingException", "message": message})
        return 400, {"Content-Type": "application/x-amz-json-1.0"}, body
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>{message}</Message>"
            "</Error><RequestId>injected</RequestId></ErrorResponse>"
        )
        return 400, {"Content-Type": "text/xml"}, body
    if service == "s3":
        body = f"<Error><Code>SlowDown</Code><Message>{message}</Message></Error>"
        return 503, {"Content-Type": "application/xml"}, body
    body = json.dumps({"message": message})
    return 429, {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"}, body


class FaultInjection:
    """Installs a :class:`FaultPlan` on one local cloud (see the module's docstring)."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.counts: Counter[str] = Counter()
        self._random = random.Random(plan.seed)  # noqa: S311 - chaos, not cryptography
        self._lock = threading.Lock()
        self._matched: Counter[int] = Counter()  # attempts each rule with a `first` has matched
        self._inside = threading.local()  # the logical id of the function this thread runs

    def _draw(self, rate: float) -> float | None:
        """A uniform draw in [0, 1) if it falls under ``rate``, else None."""
        if rate <= 0:
            return None
        with self._lock:
            value = self._random.random()
        return value if value < rate else None

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    # -- AWS API calls -------------------------------------------------------------------
    def _aws_fault(self, event_name: str, request: AWSPreparedRequest) -> AWSResponse | None:
        if getattr(self._inside, "function", None) is None:
            return None
        _, service, operation = [*event_name.split(".", 2), "", ""][:3]
        for index, rule in enumerate(self.plan.aws):
            if not (fnmatch(service, rule.service) and fnmatch(operation, rule.operation)):
                continue
            if rule.first is not None:
                with self._lock:
                    self._matched[index] += 1
                    if self._matched[index] > rule.first:
                        continue
            draw = self._draw(rule.rate)
            if draw is None:
                continue
            kind = (
                rule.error if rule.error != "either" else ("throttle" if draw < rule.rate / 2 else "server")
            )
            self._count(f"aws {service}.{operation} {kind}")
            if kind == "throttle":
                status, headers, body = _throttle(service, request)
            else:
                status, headers, body = 500, {}, ""
            return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), MockRawResponse(body))
        return None

    # -- Lambda invocations ----------------------------------------------------------------
    def wrap_run(self, run: Run, logical_id_of: Callable[[str], str]) -> Run:
        """``LambdaInvokeInProcess.run`` with the plan's invocation faults and its AWS faults in scope."""
        faults = self.plan.lambda_

        def run_with_faults(
            function_name: str, payload: bytes | str | None, invocation_type: str
        ) -> tuple[bytes, bool]:
            logical_id = logical_id_of(function_name)
            affected = fnmatch(logical_id, faults.functions)
            if affected and self._draw(faults.fail_rate) is not None:
                self._count(f"lambda {logical_id} refused")
                return _error(LAMBDA_SERVICE_EXCEPTION, "injected: the Lambda service failed the invocation")
            previous = getattr(self._inside, "function", None)
            self._inside.function = logical_id
            try:
                body, failed = run(function_name, payload, invocation_type)
            finally:
                self._inside.function = previous
            if affected and not failed and self._draw(faults.timeout_rate) is not None:
                self._count(f"lambda {logical_id} timed_out")
                return _error(TIMED_OUT, "Task timed out after 30.00 seconds (injected)")
            return body, failed

        return run_with_faults

    @contextlib.contextmanager
    def installed(self) -> Iterator[FaultInjection]:
        injection = self
        original = BotocoreStubber.__call__

        def call(
            stubber: BotocoreStubber, event_name: str, request: AWSPreparedRequest, **kwargs: Any
        ) -> Any:
            if stubber.enabled:
                fault = injection._aws_fault(event_name, request)
                if fault is not None:
                    return fault
            return original(stubber, event_name, request, **kwargs)

        with mock.patch.object(BotocoreStubber, "__call__", call):
            yield self

    def summary(self) -> dict[str, int]:
        """Injected faults by kind: AWS throttles and server errors, refused and timed-out invocations."""
        totals: Counter[str] = Counter()
        for key, count in self.counts.items():
            kind = key.rsplit(" ", 1)[-1]
            totals[f"{'aws' if key.startswith('aws') else 'lambda'} {kind}"] += count
        return dict(sorted(totals.items()))


def _error(error_type: str, message: str) -> tuple[bytes, bool]:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode(), True


def leftovers(cloud: LocalCloud) -> dict[str, int]:
    """What a finished run must not leave behind, counted: each is 0 after a clean run.

    Application locks and queued rollouts, approvals still open with no expiry run left to
    settle them, rollout executions still running, termination hooks still waiting, dead
    letters (drain orders and notices that could not be handled), and events dead-lettered
    (events an EventBridge-target function failed on three times: not half-done work, but
    work an on-call engineer must look at).
    """
    dynamodb = cloud.client("dynamodb")
    sfn = cloud.client("stepfunctions")
    expiry = cloud.resource("ApprovalExpiryStateMachine").replace(":stateMachine:", ":execution:")
    counts: Counter[str] = Counter(
        dict.fromkeys(
            ("locks held", "rollouts queued", "approvals open", "dead letters", "events dead-lettered"), 0
        )
    )
    for page in dynamodb.get_paginator("scan").paginate(TableName=cloud.output("StateTableName")):
        for item in page["Items"]:
            pk, sk = item["pk"]["S"], item["sk"]["S"]
            status = item.get("status", {}).get("S")
            counts["locks held"] += sk == "LOCK"
            counts["rollouts queued"] += sk.startswith("QUEUE#")
            if pk.startswith("APPROVAL#") and status in ("pending", "deciding"):
                # Decided elsewhere (the CLI) or unanswered: its expiry run settles it, if it has one.
                run = f"{expiry}:{pk.removeprefix('APPROVAL#')}"
                counts["approvals open"] += sfn.describe_execution(executionArn=run)["status"] != "RUNNING"
    running = sfn.list_executions(
        stateMachineArn=cloud.resource("RolloutStateMachine"), statusFilter="RUNNING"
    )["executions"]
    counts["executions running"] = len(running)
    counts["hooks pending"] = len(cloud.fleet_operations.lifecycle.pending)
    sqs = cloud.client("sqs")
    for output, key in (
        ("DrainDeadLetterQueueUrl", "dead letters"),
        ("NotifyDeadLetterQueueUrl", "dead letters"),
        ("EventDeadLetterQueueUrl", "events dead-lettered"),
    ):
        attributes = sqs.get_queue_attributes(
            QueueUrl=cloud.output(output), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        counts[key] += int(attributes["ApproximateNumberOfMessages"])
    return dict(sorted(counts.items()))
