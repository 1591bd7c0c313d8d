"""``canaryfleet_local.state_size`` answers every request as moto does, only without the cost
that grew with the local cloud's state: each case asks the same question of moto with and
without it, on the same state, and compares the answers."""

from __future__ import annotations

import functools
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
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.responses import DynamoHandler
from moto.ec2.responses import EC2Response
from moto.s3 import models as s3_models
from moto.s3.responses import S3Response
from moto.sqs.responses import SQSResponse

from canaryfleet_local import state_size
from canaryfleet_local.state_size import costs_independent_of_state_size

REGION = "eu-west-1"
_ORIGINAL_ITEM_DEEPCOPY = Item.__deepcopy__


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


# -- DynamoDB TransactWriteItems ------------------------------------------------------------

TABLE = "state"
ITEMS_BEFORE = 40  # items in the table before each transaction (four partitions of ten)


def _table(dynamodb: Any, *, sort_key: bool) -> None:
    """A fresh table with a stream, holding ``ITEMS_BEFORE`` items."""
    if TABLE in dynamodb.list_tables()["TableNames"]:
        dynamodb.delete_table(TableName=TABLE)
    keys = [("pk", "HASH"), ("sk", "RANGE")] if sort_key else [("pk", "HASH")]
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind in keys],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name, _ in keys],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for n in range(ITEMS_BEFORE):
        key = (
            {"pk": {"S": f"APP#{n % 4}"}, "sk": {"S": f"ROLLOUT#{n}"}}
            if sort_key
            else {"pk": {"S": f"APP#{n}"}}
        )
        dynamodb.put_item(TableName=TABLE, Item={**key, "status": {"S": "running"}, "step": {"N": str(n)}})


def _key(sort_key: bool, pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}} if sort_key else {"pk": {"S": f"{pk}/{sk}"}}


def _transactions(sort_key: bool) -> dict[str, list[dict[str, Any]]]:
    """Transactions by what happens to them: their writes come before the op that cancels them."""
    key = functools.partial(_key, sort_key)
    existing = (
        (
            {"pk": {"S": "APP#1"}, "sk": {"S": "ROLLOUT#5"}},
            {"pk": {"S": "APP#2"}, "sk": {"S": "ROLLOUT#6"}},
            {"pk": {"S": "APP#3"}, "sk": {"S": "ROLLOUT#7"}},
        )
        if sort_key
        else ({"pk": {"S": "APP#5"}}, {"pk": {"S": "APP#6"}}, {"pk": {"S": "APP#7"}})
    )
    update = {
        "TableName": TABLE,
        "Key": existing[0],
        "UpdateExpression": "SET #s = :s, step = step + :one",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "released"}, ":one": {"N": "1"}},
    }
    put_new = {"TableName": TABLE, "Item": {**key("APP#9", "LOCK"), "rollout_id": {"S": "r-9"}}}
    delete = {"TableName": TABLE, "Key": existing[1]}
    failing_check = {
        "TableName": TABLE,
        "Key": existing[2],
        "ConditionExpression": "#s = :other",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":other": {"S": "released"}},
    }
    return {
        "committed": [{"Update": update}, {"Put": put_new}, {"Delete": delete}],
        "cancelled by a condition": [
            {"Update": update},
            {"Put": put_new},
            {"Delete": delete},
            {"ConditionCheck": failing_check},
        ],
        "cancelled by a new item's condition": [
            {"Delete": delete},
            {"Put": {**put_new, "ConditionExpression": "attribute_exists(pk)"}},
        ],
        "refused: one item twice": [
            {"Update": update},
            {"Put": put_new},
            {"Delete": {**delete, "Key": existing[0]}},
        ],
        "refused: unknown table": [{"Update": update}, {"Put": {**put_new, "TableName": "missing"}}],
    }


def _transact_and_look(sort_key: bool, name: str) -> dict[str, Any]:
    """Run one transaction on a fresh table; the answer, the items, the stream and moto's buckets."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    _table(dynamodb, sort_key=sort_key)
    try:
        dynamodb.transact_write_items(TransactItems=_transactions(sort_key)[name])
        answer: Any = "committed"
    except dynamodb.exceptions.ClientError as error:
        answer = (error.response["Error"], error.response.get("CancellationReasons"))
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[TABLE]
    return {
        "answer": answer,
        "items": dynamodb.scan(TableName=TABLE)["Items"],
        "stream": [(r.record["eventName"], r.record["dynamodb"]["Keys"]) for r in table.stream_shard.items],
        "partitions": {
            str(pk.value): (sorted(str(sk.value) for sk in bucket) if sort_key else None)
            for pk, bucket in table.items.items()
        },
    }


@pytest.mark.parametrize("sort_key", [True, False], ids=["partition and sort key", "partition key only"])
@pytest.mark.parametrize("name", list(_transactions(True)))
def test_a_transaction_leaves_its_tables_as_moto_leaves_them(aws: None, sort_key: bool, name: str) -> None:
    changed, reference = both_ways(lambda: _transact_and_look(sort_key, name))
    assert changed == reference
    if name == "committed":
        assert len(changed["items"]) == ITEMS_BEFORE  # one put, one delete
    else:
        assert changed["answer"] != "committed"
        assert len(changed["stream"]) == ITEMS_BEFORE  # the cancelled writes left no stream record


def test_a_transaction_copies_the_items_it_names_not_the_table(aws: None) -> None:
    """The point of it: moto's own transaction deep-copies every item of the table it writes to."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    copies = mock.patch.object(Item, "__deepcopy__", autospec=True, side_effect=_ORIGINAL_ITEM_DEEPCOPY)

    def cancelled_transaction() -> int:
        _table(dynamodb, sort_key=True)
        with copies as counted, pytest.raises(dynamodb.exceptions.TransactionCanceledException):
            dynamodb.transact_write_items(TransactItems=_transactions(True)["cancelled by a condition"])
        return counted.call_count

    changed, reference = both_ways(cancelled_transaction)
    assert changed <= 4  # the three items it names, and moto's own copy of the one it updates
    assert reference >= ITEMS_BEFORE
