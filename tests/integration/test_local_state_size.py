"""``canaryfleet_local.state_size`` answers every request as moto does, only without the cost
that grew with the local cloud's state: each case asks the same question of moto with and
without it, on the same state, and compares the answers."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core import utils as moto_utils
from moto.core.responses import BaseResponse
from moto.dynamodb.responses import DynamoHandler
from moto.ec2.responses import EC2Response
from moto.s3 import models as s3_models
from moto.s3.responses import S3Response
from moto.sqs.responses import SQSResponse

from canaryfleet_local import state_size
from canaryfleet_local.state_size import costs_independent_of_state_size

REGION = "eu-west-1"


@pytest.fixture
def aws() -> Iterator[None]:
    env = {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": REGION,
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",  # as the local cloud runs it: no image is looked up
    }
    with mock.patch.dict(os.environ, env), mock_aws():
        yield


def both_ways(ask: Callable[[], Any]) -> tuple[Any, Any]:
    """The answer with the changes installed, then moto's own, to the same question."""
    with costs_independent_of_state_size():
        changed = ask()
    return changed, ask()


def test_unix_time_is_motos_number() -> None:
    before = moto_utils.unix_time_millis()
    ours = state_size.unix_time_millis()
    after = moto_utils.unix_time_millis()
    assert before - 1 <= ours <= after + 1  # milliseconds, as moto counts them
    dt = moto_utils.utcnow()
    assert state_size.unix_time(dt) == moto_utils.unix_time(dt)


def test_queue_attributes_and_messages_as_moto_counts_them(aws: None) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    with costs_independent_of_state_size():
        for n in range(12):
            sqs.send_message(QueueUrl=url, MessageBody=f"order {n}", DelaySeconds=600 if n < 3 else 0)
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=4)["Messages"]
    assert len(received) == 4

    def counts() -> dict[str, str]:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]  # type: ignore[arg-type]

    changed, reference = both_ways(counts)
    assert (
        changed
        == reference
        == {
            "ApproximateNumberOfMessages": "5",
            "ApproximateNumberOfMessagesNotVisible": "4",
            "ApproximateNumberOfMessagesDelayed": "3",
        }
    )


@pytest.fixture
def tagged(aws: None) -> tuple[Any, list[str]]:
    ec2 = boto3.client("ec2", region_name=REGION)
    reservation = ec2.run_instances(ImageId="ami-12c6146b", MinCount=4, MaxCount=4, InstanceType="t3.micro")
    ids = [i["InstanceId"] for i in reservation["Instances"]]
    for n, instance_id in enumerate(ids):
        tags = [{"Key": "application", "Value": f"app-{n % 2}"}, {"Key": "role", "Value": "live"}]
        ec2.create_tags(Resources=[instance_id], Tags=tags)
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    ec2.create_tags(Resources=[volume], Tags=[{"Key": "application", "Value": "app-0"}])
    return ec2, [*ids, volume]


@pytest.mark.parametrize(
    "filters",
    [
        lambda ids: [{"Name": "resource-id", "Values": [ids[1]]}],
        lambda ids: [
            {"Name": "resource-id", "Values": [ids[2]]},
            {"Name": "resource-type", "Values": ["instance"]},
        ],
        lambda ids: [{"Name": "resource-id", "Values": [ids[3], ids[0], ids[4]]}],
        lambda ids: [
            {"Name": "resource-id", "Values": [ids[0], ids[4]]},
            {"Name": "resource-type", "Values": ["volume"]},
        ],
        lambda ids: [{"Name": "resource-id", "Values": [ids[0]]}, {"Name": "key", "Values": ["role"]}],
        lambda ids: [{"Name": "resource-id", "Values": ["i-00000000000000000"]}],
        lambda ids: [{"Name": "resource-id", "Values": [ids[0][:-3] + "*"]}],
        lambda ids: [{"Name": "resource-id", "Values": [ids[0][:-1] + "?"]}],
        lambda ids: [{"Name": "resource-id", "Values": [ids[1][:-1] + "[0-9a-f]"]}],
        lambda ids: [{"Name": "value", "Values": ["app-1"]}],
        lambda ids: [],
    ],
    ids=[
        "one id",
        "one id, instances",
        "several ids",
        "ids, volumes",
        "id and key",
        "unknown id",
        "wildcard *",
        "wildcard ?",
        "character class",
        "no resource-id",
        "no filter",
    ],
)
def test_describe_tags_answers_as_moto(
    tagged: tuple[Any, list[str]], filters: Callable[[list[str]], list[dict[str, Any]]]
) -> None:
    ec2, ids = tagged
    changed, reference = both_ways(lambda: ec2.describe_tags(Filters=filters(ids))["Tags"])
    assert changed == reference


def test_describe_tags_reads_only_the_named_resources(tagged: tuple[Any, list[str]]) -> None:
    ec2, ids = tagged
    with costs_independent_of_state_size(), mock.patch.object(state_size, "_original_describe_tags") as moto:
        moto.return_value = []
        ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ids[2]]}])
    (view, _filters), _ = moto.call_args
    assert list(view.tags) == [ids[2]]


@pytest.mark.parametrize("response", [DynamoHandler, EC2Response, S3Response, SQSResponse, BaseResponse])
def test_method_names_are_motos(response: type) -> None:
    assert state_size.method_names_from_class(response) == moto_utils.method_names_from_class(response)


def test_s3_urls_follow_custom_endpoints(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="state-size-logs", CreateBucketConfiguration={"LocationConstraint": REGION})
    backend = s3_models.s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    with costs_independent_of_state_size():
        s3.put_object(Bucket="state-size-logs", Key="a.log", Body=b"first\n")  # loaded once, if not yet
        with mock.patch("importlib.reload", wraps=importlib.reload) as reload:
            for _ in range(3):
                s3.put_object(Bucket="state-size-logs", Key="a.log", Body=b"line\n")
            assert reload.call_count == 0
            with mock.patch.dict(os.environ, {"MOTO_S3_CUSTOM_ENDPOINTS": "http://s3.local.test"}):
                assert "http://s3.local.test" in backend.url_bases
                assert reload.call_count == 1
            assert "http://s3.local.test" not in backend.url_bases
            assert reload.call_count == 2
        assert s3.get_object(Bucket="state-size-logs", Key="a.log")["Body"].read() == b"line\n"


def test_a_send_to_a_long_queue_reads_no_message_times(aws: None) -> None:
    """The point of it (a drain queue holding 500 orders): moto's own send asks every message of
    the queue for the time, three times; with the changes it asks none."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="drains")["QueueUrl"]
    with costs_independent_of_state_size():
        for n in range(50):
            sqs.send_message(QueueUrl=url, MessageBody=str(n))
        with mock.patch.object(moto_utils, "utcnow", side_effect=AssertionError("moto read the time")):
            sqs.send_message(QueueUrl=url, MessageBody="one more")
    with mock.patch.object(moto_utils, "utcnow", wraps=moto_utils.utcnow) as clock:
        sqs.send_message(QueueUrl=url, MessageBody="without the changes")
    assert clock.call_count >= 50, "moto's own send reads each queued message's time"
