"""moto's responses are the same bytes with ``canaryfleet_local.serializing`` as without it.

Every response serialized while a test runs here is serialized twice, with the kept member
names and with moto's own picker, and the two are compared whole (status, headers, body).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from moto.core.serialize import ResponseSerializer, XFormedAttributePicker

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.instances import InstanceBehaviour, SimulatedInstances
from canaryfleet_local.serializing import MemberNamesOnce, member_names_once

REGION = "eu-west-1"


@dataclass
class Compared:
    responses: int = 0
    operations: set[str] = field(default_factory=set)
    differences: list[tuple[str, Any, Any]] = field(default_factory=list)


@pytest.fixture
def compared() -> Iterator[Compared]:
    """Serialize each response with the kept names and with moto's picker; record any difference."""
    seen = Compared()
    serialize = ResponseSerializer.serialize

    def both(self: ResponseSerializer, result: Any) -> Any:
        fast = serialize(self, result)
        picker = self._value_picker
        if not isinstance(picker, MemberNamesOnce) or self.operation_model.has_event_stream_output:
            return fast
        self._value_picker = XFormedAttributePicker(response_transformers=picker.response_transformers)
        try:
            reference = serialize(self, result)
        finally:
            self._value_picker = picker
        operation = f"{self.service_model.service_name}.{self.operation_name}"
        seen.responses += 1
        seen.operations.add(operation)
        if fast != reference:
            seen.differences.append((operation, fast, reference))
        return fast

    with mock.patch.object(ResponseSerializer, "serialize", both):
        yield seen


def _dynamodb_items(db: Any) -> None:
    db.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    every_type = {
        "pk": {"S": "APP#a"},
        "sk": {"S": "DRAIN#i-1"},
        "n": {"N": "12.5"},
        "b": {"B": base64.b64decode("aGVsbG8=")},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"a", b"b"]},
        "m": {"M": {"inner": {"L": [{"S": "v"}, {"NULL": True}, {"BOOL": False}]}}},
        "empty": {"S": ""},
    }
    db.put_item(TableName="t", Item=every_type)
    db.put_item(TableName="t", Item={"pk": {"S": "APP#a"}, "sk": {"S": "DRAIN#i-2"}}, ReturnValues="ALL_OLD")
    key = {"pk": {"S": "APP#a"}, "sk": {"S": "DRAIN#i-1"}}
    db.get_item(TableName="t", Key=key, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
    db.get_item(TableName="t", Key={"pk": {"S": "APP#a"}, "sk": {"S": "none"}})
    db.update_item(
        TableName="t",
        Key=key,
        UpdateExpression="SET n = n + :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )
    db.query(
        TableName="t",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": {"S": "APP#a"}, ":prefix": {"S": "DRAIN#"}},
        Limit=1,
    )
    db.scan(TableName="t", ProjectionExpression="pk, m.inner")
    db.batch_get_item(RequestItems={"t": {"Keys": [key]}})
    db.transact_write_items(
        TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "APP#b"}, "sk": {"S": "LOCK"}}}}]
    )
    db.delete_item(TableName="t", Key=key, ReturnValues="ALL_OLD")
    db.describe_table(TableName="t")
    with pytest.raises(db.exceptions.ConditionalCheckFailedException):
        db.put_item(
            TableName="t",
            Item={"pk": {"S": "APP#b"}, "sk": {"S": "LOCK"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )


def test_items_of_every_attribute_type_serialize_as_moto_serializes_them(compared: Compared) -> None:
    with mock_aws(), member_names_once():
        _dynamodb_items(boto3.client("dynamodb", region_name=REGION))

    assert compared.differences == []
    assert {"dynamodb.GetItem", "dynamodb.Query", "dynamodb.DescribeTable"} <= compared.operations


def test_a_fleet_and_its_drains_answer_what_moto_answers(compared: Compared) -> None:
    # Given a local cloud and a fleet (CloudFormation and every service their stacks create)
    with (
        LocalCloud(parameters={"LogLevel": "WARNING"}) as cloud,
        SimulatedInstances(cloud, InstanceBehaviour(stop_seconds=0.05, upload_seconds=0.05)),
    ):
        app = deploy_fleet(cloud, "hello-app", {"LiveMinSize": "3", "LiveMaxSize": "3"})

        # When its live group scales in by two: DynamoDB, Run Command, Auto Scaling, S3, SQS,
        # EventBridge and Lambda answer the drains' functions
        cloud.client("autoscaling").update_auto_scaling_group(
            AutoScalingGroupName=app.live.auto_scaling_group, MinSize=1, DesiredCapacity=1
        )
        cloud.wait_idle(60)
        completed = len(cloud.fleet_operations.lifecycle.completed)
        # moto's models (not dicts) as the values: instances, groups, target health
        cloud.client("ec2").describe_instances()
        cloud.client("autoscaling").describe_auto_scaling_groups()
        cloud.client("elbv2").describe_target_health(TargetGroupArn=app.live.target_group_arn)

    # Then both drains ended, and every response was the same bytes either way
    assert completed == 2
    assert compared.differences == []
    assert compared.responses > 50
    drained_with = {"dynamodb.UpdateItem", "ssm.SendCommand", "autoscaling.CompleteLifecycleAction"}
    described = {
        "ec2.DescribeInstances",
        "autoscaling.DescribeAutoScalingGroups",
        "elbv2.DescribeTargetHealth",
    }
    assert drained_with | described <= compared.operations
