"""Observing the local cloud from tests."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import boto3
from canaryfleet.adapters.dynamo import typed
from canaryfleet.adapters.tokens import Callbacks
from canaryfleet.models.app_config import AppConfig
from moto import mock_aws
from moto.core.config import DefaultConfig
from moto.core.utils import utcnow
from moto.ssm.models import ssm_backends

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.instances import SimulatedInstances


@contextlib.contextmanager
def moto_account(region: str, config: DefaultConfig | None = None) -> Iterator[None]:
    """A bare moto account in ``region`` (no local cloud), with credentials of its own."""
    env = {"AWS_DEFAULT_REGION": region, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}
    with mock.patch.dict(os.environ, env), mock_aws(config=config):
        yield


def a_moto_function(name: str, timeout: int = 3) -> str:
    """A Lambda function on a bare moto account (its code is never run); its ARN."""
    role = boto3.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    return str(
        boto3.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"zip"},
            Timeout=timeout,
        )["FunctionArn"]
    )


@dataclass
class DeployedFleet:
    """A local cloud with one application's fleet stack on it, and the registry entry it wrote."""

    cloud: LocalCloud
    config: AppConfig


@contextlib.contextmanager
def deployed_fleet(application: str, parameters: dict[str, str] | None = None) -> Iterator[DeployedFleet]:
    """The platform and ``application``'s fleet (``parameters`` override fleet/template.yaml's)."""
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as cloud:
        yield DeployedFleet(cloud, deploy_fleet(cloud, application, parameters))


def subscribe_queue(cloud: LocalCloud, topic_output: str = "NotificationTopicArn") -> str:
    """An SQS queue subscribed (raw delivery) to a topic of the stack; returns its URL."""
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="test-notifications")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    cloud.client("sns").subscribe(
        TopicArn=cloud.output(topic_output),
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return str(url)


def drain_queue(cloud: LocalCloud, url: str) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return messages
        messages.extend(json.loads(m["Body"]) for m in batch)
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def queue_attribute(cloud: LocalCloud, url: str, name: str) -> int:
    """One of SQS's approximate counts of the queue at ``url`` (``ApproximateNumberOfMessages``...)."""
    attributes = cloud.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[name])
    return int(attributes["Attributes"][name])


def invoke(cloud: LocalCloud, logical_id: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Invoke a function of the stack synchronously; returns (response payload, FunctionError)."""
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.resource(logical_id), Payload=json.dumps(payload).encode()
    )
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def put_state_item(cloud: LocalCloud, pk: str, sk: str, **attributes: Any) -> None:
    """Write one item into the state table as it stands, its attributes as plain values."""
    item = {name: typed(value) for name, value in {"pk": pk, "sk": sk, **attributes}.items()}
    cloud.client("dynamodb").put_item(TableName=cloud.output("StateTableName"), Item=item)


def table_items(cloud: LocalCloud, pk: str) -> list[dict[str, Any]]:
    items = cloud.client("dynamodb").query(
        TableName=cloud.output("StateTableName"),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy (work on other threads); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check.__doc__ or check}")
        time.sleep(0.05)


class RecordingCallbacks(Callbacks):
    """Task-token callbacks that record what they were told; ``closed`` tokens have ended."""

    def __init__(self, closed: set[str] | None = None) -> None:
        self.succeeded: list[str] = []
        self.failed: list[tuple[str, str, str]] = []
        self.closed = closed or set()

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        if token in self.closed:
            return False
        self.succeeded.append(token)
        self.closed.add(token)
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        if token in self.closed:
            return False
        self.failed.append((token, error, cause))
        self.closed.add(token)
        return True


def an_auto_scaling_group(
    autoscaling: Any, name: str, min_size: int, max_size: int, desired: int, zone: str
) -> None:
    """A plain Auto Scaling group on moto (a launch configuration of its own), for one call's test."""
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=f"{name}-lc", ImageId="ami-12c6146b", InstanceType="t3.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=f"{name}-lc",
        MinSize=min_size,
        MaxSize=max_size,
        DesiredCapacity=desired,
        AvailabilityZones=[zone],
    )


class HeldRuns(SimulatedInstances):
    """The simulated agents, each run held until ``expire`` has made its command expire under it:
    a run that outlives its command, whatever the machine's load."""

    def __init__(self, cloud: LocalCloud) -> None:
        super().__init__(cloud)
        self.started = threading.Event()
        self.held: list[str] = []  # the instances whose run started, in order
        self._go = threading.Event()

    def run(self, command_id: str, instance_id: str, document: str, parameters: dict[str, list[str]]) -> Any:
        self.held.append(instance_id)
        self.started.set()
        self._go.wait(60)
        return super().run(command_id, instance_id, document, parameters)

    def expire(self, command_id: str) -> str:
        """Once a run of the command has started, bring its expiry to now, wait for Run Command to
        tell that instance's invocation "Delivery Timed Out", then let the run go on; the instance."""
        assert self.started.wait(30), "no run started"
        instance_id = self.held[0]
        command = ssm_backends[self.cloud.account_id][self.cloud.region].get_command_by_id(command_id)
        command.expires_after = utcnow()  # as moto keeps a command's times
        ssm = self.cloud.client("ssm")

        def timed_out() -> bool:
            """the invocation is Delivery Timed Out"""
            invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
            return bool(invocation["StatusDetails"] == "DeliveryTimedOut")

        eventually(timed_out, timeout=30)
        self._go.set()
        return instance_id
