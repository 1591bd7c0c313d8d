"""BASELINE, never shipped: the per-instance polling drain of the public lifecycle-hook samples.

One Lambda invocation per termination lifecycle event: it sends one SSM command (the same
drain document canaryfleet runs) to its one instance, sleeps and polls GetCommandInvocation
until the command ends, then completes the lifecycle action. Everything it calls is the local
cloud's (moto and its stand-ins), so its SendCommand calls and its time are real.

An EventBridge rule sends the lifecycle events to a queue (an SQS target), and
:class:`PollingDrainLambda` plays Lambda's concurrency with threads, one execution environment
per invocation: the local cloud's in-process Lambda runs one invocation at a time, which a
handler that sleeps for its whole life would turn into a queue. At most ``MAX_CONCURRENCY`` run
at once. On AWS each invocation has a CPU of its own; here all share one interpreter, and the
more poll at once, the longer each waits for the others' polls rather than for its command: the
baseline's time per instance, measured on 500 instances, was 0.36 s with 10 at once, 2 to 3 s
with 50, 165 s with all 500. Ten keeps the interpreter mostly idle, so the time measured is the
baseline's own.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from canaryfleet_local.cloud import LocalCloud

NAME = "canaryfleet-bench-polling-drain"
RUNNING_STATUSES = frozenset({"Pending", "InProgress", "Delayed"})
MAX_CONCURRENCY = 10
_EMPTY_RECEIVE_PAUSE_SECONDS = 0.05
# The drain functions of canaryfleet, whose rules are switched off while the baseline drains.
PLATFORM_DRAIN_FUNCTIONS = ("DrainRequestFunction", "DrainCompleteFunction")


@dataclass(frozen=True)
class PollingDrainSettings:
    document_name: str
    log_bucket: str
    poll_seconds: float
    max_polls: int  # the handler gives up (and still completes the hook) after this many


@dataclass(frozen=True)
class PollingDrainResult:
    instance_id: str
    command_status: str
    polls: int
    busy_seconds: float  # the invocation's duration: what Lambda bills


@dataclass(frozen=True)
class DrainClients:
    ssm: Any
    autoscaling: Any


def drain_on_lifecycle_event(
    event: dict[str, Any], clients: DrainClients, settings: PollingDrainSettings
) -> PollingDrainResult:
    """The handler: one command for one instance, polled until it ends, then the hook completed."""
    started = time.perf_counter()
    detail = event["detail"]
    instance_id = detail["EC2InstanceId"]
    command = clients.ssm.send_command(
        DocumentName=settings.document_name,
        InstanceIds=[instance_id],
        Parameters={"Mode": ["drain"], "LogBucket": [settings.log_bucket]},
    )["Command"]
    status, polls = "Pending", 0
    while status in RUNNING_STATUSES and polls < settings.max_polls:
        time.sleep(settings.poll_seconds)
        polls += 1
        status = clients.ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=instance_id)[
            "Status"
        ]
    clients.autoscaling.complete_lifecycle_action(
        LifecycleHookName=detail["LifecycleHookName"],
        AutoScalingGroupName=detail["AutoScalingGroupName"],
        LifecycleActionToken=detail["LifecycleActionToken"],
        LifecycleActionResult="CONTINUE",
    )
    return PollingDrainResult(instance_id, status, polls, time.perf_counter() - started)


def switch_off_platform_drains(cloud: LocalCloud) -> list[str]:
    """Disable the rules that deliver to canaryfleet's drain functions; returns their names."""
    events = cloud.client("events")
    lambda_client = cloud.client("lambda")
    disabled = []
    for logical_id in PLATFORM_DRAIN_FUNCTIONS:
        arn = lambda_client.get_function(FunctionName=cloud.resource(logical_id))["Configuration"][
            "FunctionArn"
        ]
        for rule in events.list_rule_names_by_target(TargetArn=arn)["RuleNames"]:
            events.disable_rule(Name=rule)
            disabled.append(rule)
    return disabled


def route_lifecycle_events_to_queue(cloud: LocalCloud) -> str:
    """An EventBridge rule sending termination lifecycle events to a queue; returns its URL."""
    queue_url = str(cloud.client("sqs").create_queue(QueueName=NAME)["QueueUrl"])
    events = cloud.client("events")
    pattern = {"source": ["aws.autoscaling"], "detail-type": ["EC2 Instance-terminate Lifecycle Action"]}
    events.put_rule(Name=NAME, EventPattern=json.dumps(pattern), State="ENABLED")
    queue_arn = cloud.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_targets(Rule=NAME, Targets=[{"Id": "drain", "Arn": queue_arn}])
    return queue_url


class PollingDrainLambda:
    """Lambda for the baseline: each event of the queue gets its own concurrent invocation."""

    def __init__(self, cloud: LocalCloud, queue_url: str, settings: PollingDrainSettings) -> None:
        self._sqs = cloud.client("sqs")
        self._queue_url = queue_url
        self._settings = settings
        self._clients = DrainClients(ssm=cloud.client("ssm"), autoscaling=cloud.client("autoscaling"))

    def _events(self, expected: int, deadline: float) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while len(events) < expected and time.monotonic() < deadline:
            messages = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            for message in messages:
                events.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
            if not messages:
                # As long polling would: a tight loop of receives takes the interpreter from the
                # deliveries that fill the queue (seen: 459 of 500 events in five minutes).
                time.sleep(_EMPTY_RECEIVE_PAUSE_SECONDS)
        return events

    def run(self, expected: int, timeout: float) -> list[PollingDrainResult]:
        """Invoke the handler once per event, MAX_CONCURRENCY at a time; returns when all ended."""
        events = self._events(expected, time.monotonic() + timeout)
        workers = max(1, min(MAX_CONCURRENCY, len(events)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=NAME) as pool:
            futures = [
                pool.submit(drain_on_lifecycle_event, event, self._clients, self._settings)
                for event in events
            ]
            return [future.result(timeout=timeout) for future in futures]
