"""EventBridge: rules deliver to Lambda functions and Step Functions state machines, and AWS
services (CodeDeploy, CloudWatch alarms, EC2, ...) put their events on the default bus."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from unittest import mock

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import lambda_backends
from moto.events.exceptions import ValidationException
from moto.events.models import EventsBackend, Rule, events_backends
from moto.events.utils import EventMessageType, EventTemplateParser
from moto.sqs.exceptions import QueueDoesNotExist
from moto.sqs.models import sqs_backends

from canaryfleet_local.standins.aws_clients import shared_client
from canaryfleet_local.standins.lambda_async import AsyncInvocationQueue


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


@dataclass
class UndeliveredEvent:
    """An event EventBridge could not deliver to a rule's target, and where it went."""

    rule_arn: str
    target_arn: str
    error_code: str
    error_message: str
    event: dict[str, Any]
    dead_letter_queue: str | None  # the queue's ARN; None: dropped (no DLQ, or it refused)


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allows(statement: dict[str, Any], service: str, action: str, source_arn: str, account: str) -> bool:
    """Whether a resource policy statement lets ``service`` call ``action`` for ``source_arn``.

    Only what the template's policies and SAM's Lambda permissions use is read: Allow, a service
    principal (or ``*``), the action (wildcards as IAM reads them), and conditions on
    ``aws:SourceArn`` (ArnEquals, ArnLike, StringEquals, StringLike) and ``aws:SourceAccount``.
    A statement with any other condition is not taken to allow.
    """
    if statement.get("Effect") != "Allow":
        return False
    principal = statement.get("Principal")
    if principal != "*" and not (
        isinstance(principal, dict) and service in _values(principal.get("Service", []))
    ):
        return False
    if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _values(statement.get("Action", []))):
        return False
    return all(
        _condition_holds(operator, key, expected, source_arn, account)
        for operator, conditions in statement.get("Condition", {}).items()
        for key, expected in conditions.items()
    )


def _condition_holds(operator: str, key: str, expected: Any, source_arn: str, account: str) -> bool:
    if key.lower() == "aws:sourcearn":
        actual = source_arn
    elif key.lower() == "aws:sourceaccount" and operator.startswith("String"):
        actual = account
    else:
        return False
    if operator in ("ArnLike", "StringLike"):
        return any(fnmatch.fnmatchcase(actual, str(v)) for v in _values(expected))
    if operator in ("ArnEquals", "StringEquals"):
        return actual in _values(expected)
    return False


class EventBridgeLambdaAndStateMachineTargets:
    """Stands in for EventBridge delivery to Lambda and Step Functions targets.

    moto matches rules and delivers only to SQS, logs and buses. Here a matching rule's
    Lambda targets are invoked asynchronously and its state machine targets start an
    execution; ``Input``, ``InputPath`` and ``InputTransformer`` apply as on AWS. Other
    targets keep moto's own delivery.

    A rule with no event pattern matches no event: "Rules with EventPatterns are triggered when
    a matching event is observed. Rules with ScheduleExpressions self-trigger based on the given
    schedule" (botocore ``events`` ``PutRule`` documentation). moto's empty pattern matched
    every event, so a scheduled rule's targets ran at each event on the bus. The local cloud
    runs no schedule: a scheduled target is invoked with its rule's input by whoever plays the
    schedule.

    A Lambda target EventBridge cannot invoke, the function gone (``NO_RESOURCE``) or its
    resource policy not letting events.amazonaws.com invoke it for this rule
    (``NO_PERMISSIONS``), is not tried at all: the event goes at once to the target's
    dead-letter queue, if it names one whose policy lets the rule send to it, with the rule,
    the target and the error as message attributes; else it is dropped ("Event retry policy
    and using dead-letter queues", EventBridge User Guide). moto keeps a target's
    ``DeadLetterConfig`` but never uses it. Each such event is in ``undelivered``.
    """

    def __init__(self, queue: AsyncInvocationQueue, region: str) -> None:
        self.queue = queue
        self.region = region
        self.delivered: list[tuple[str, str, dict[str, Any]]] = []
        self.undelivered: list[UndeliveredEvent] = []

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
        if not rule.event_pattern.get_pattern():  # a scheduled rule: no event triggers it
            return
        if not rule.event_pattern.matches_event(cast(EventMessageType, event)):
            return
        others = []
        for target in rule.targets:
            arn: str = target["Arn"]
            service = arn.split(":")[2]
            if service == "lambda":
                refusal = self._lambda_refusal(rule, arn)
                if refusal is not None:
                    self._dead_letter(rule, target, event, *refusal)
                    continue
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

    def _lambda_refusal(self, rule: Rule, function_arn: str) -> tuple[str, str] | None:
        """Why Lambda would refuse EventBridge's invocation for this rule, or None."""
        backend = lambda_backends[rule.account_id][self.region]
        try:
            function = backend.get_function(function_arn)
        except LambdaClientError:
            return "NO_RESOURCE", f"Function not found: {function_arn}"
        statements = function.policy.statements
        if not any(
            _allows(s, "events.amazonaws.com", "lambda:InvokeFunction", rule.arn, rule.account_id)
            for s in statements
        ):
            return (
                "NO_PERMISSIONS",
                f"events.amazonaws.com is not authorized to perform: lambda:InvokeFunction on resource: "
                f"{function_arn} for {rule.arn}",
            )
        return None

    def _dead_letter(
        self, rule: Rule, target: dict[str, Any], event: dict[str, Any], code: str, message: str
    ) -> None:
        queue_arn = target.get("DeadLetterConfig", {}).get("Arn")
        sent_to = None
        if queue_arn:
            backend = sqs_backends[rule.account_id][self.region]
            name = queue_arn.rsplit(":", 1)[-1]
            try:
                queue = backend.get_queue(name)
            except QueueDoesNotExist:
                queue = None
            policy = json.loads(queue.policy) if queue is not None and queue.policy else {}
            if queue is not None and any(
                _allows(s, "events.amazonaws.com", "sqs:SendMessage", rule.arn, rule.account_id)
                and queue_arn in _values(s.get("Resource", queue_arn))
                for s in policy.get("Statement", [])
            ):
                attributes = {
                    "RULE_ARN": rule.arn,
                    "TARGET_ARN": target["Arn"],
                    "ERROR_CODE": code,
                    "ERROR_MESSAGE": message,
                }
                backend.send_message(
                    name,
                    json.dumps(event),
                    message_attributes={
                        key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()
                    },
                )
                sent_to = queue_arn
        self.undelivered.append(
            UndeliveredEvent(
                rule_arn=rule.arn,
                target_arn=target["Arn"],
                error_code=code,
                error_message=message,
                event=event,
                dead_letter_queue=sent_to,
            )
        )

    def _start_execution(self, arn: str, payload: Any) -> Callable[[], None]:
        def call() -> None:
            # Unnamed, as EventBridge starts it: Step Functions names it with a UUID
            # (start_execution_names_unnamed_executions where moto does not).
            shared_client("stepfunctions", self.region).start_execution(
                stateMachineArn=arn,
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


def emit_service_event(account_id: str, region: str, event: dict[str, Any]) -> None:
    """Stands in for an AWS service putting its event on the default bus.

    moto's services emit no EventBridge events of their own (S3 aside); the fleet
    simulator builds each event in the shape AWS documents and hands it here, and the
    default bus's enabled rules route it as EventBridge would.
    """
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


def put_events_entry_bytes(entry: dict[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge counts it ("Calculating PutEvents event entry size":
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html): 14 bytes for a
    Time, and the UTF-8 bytes of Source, DetailType, Detail and each of Resources."""
    size = 14 if entry.get("Time") is not None else 0
    for member in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(member) or "").encode())
    return size + sum(len(str(resource).encode()) for resource in entry.get("Resources") or [])


class EventBridgePutEventsSize:
    """Stands in for PutEvents refusing entries over EventBridge's size limit, which moto does not check.

    "The total entry size must be less than 1MB" (PutEvents, botocore's events model 2015-10-07; the
    user guide's page, above, still says 256KB, the limit before 2025). A request whose entries
    reach it is refused whole with ValidationException.
    """

    LIMIT_BYTES = 1024 * 1024

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = EventsBackend.put_events

        def put_events(backend: EventsBackend, events: list[dict[str, Any]]) -> Any:
            total = sum(put_events_entry_bytes(entry) for entry in events)
            if total >= EventBridgePutEventsSize.LIMIT_BYTES:
                raise ValidationException(
                    f"Total size of the entries in the request is over the limit ({total} bytes)."
                )
            return original(backend, events)

        with mock.patch.object(EventsBackend, "put_events", put_events):
            yield
