"""One contract, two rollout stores: a version's rollouts are listed without reading the others.

`canaryfleet watch --version` looks for its upload's rollout every two seconds: with a
version, the store reads the records whose id begins as that version's ids do (a DynamoDB
key prefix), not the application's whole history.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import boto3
import pytest
from canaryfleet.adapters.clients import reset_clients
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.artifact import ArtifactRef
from canaryfleet.models.rollout import RolloutInput
from canaryfleet.ports.clock import FixedClock
from moto import mock_aws

from canaryfleet_local.parsing import parse_template
from tests.helpers import REPO
from tests.unit.fakes import InMemoryRolloutStore

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
APP = "payments-api"
STATE_TABLE: dict[str, Any] = parse_template((REPO / "template.yaml").read_text())["Resources"]["StateTable"][
    "Properties"
]


@pytest.fixture(scope="module")
def aws() -> Iterator[itertools.count[int]]:
    with mock_aws():
        reset_clients()
        yield itertools.count()
    reset_clients()


@pytest.fixture(params=["dynamodb", "in-memory"])
def store(request: pytest.FixtureRequest, aws: itertools.count[int]) -> Any:
    if request.param == "in-memory":
        return InMemoryRolloutStore(FixedClock(NOW))
    table = f"state-{next(aws)}"
    boto3.client("dynamodb").create_table(
        TableName=table,
        KeySchema=STATE_TABLE["KeySchema"],
        AttributeDefinitions=STATE_TABLE["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    return DynamoRolloutStore(table, FixedClock(NOW))


def upload(store: Any, version: str, etag: str) -> str:
    artifact = ArtifactRef(
        bucket="artifacts", key=f"{APP}/{version}.zip", etag=etag, application=APP, version=version
    )
    store.create(
        RolloutInput(rollout_id=artifact.rollout_id, application=APP, version=version, artifact=artifact), NOW
    )
    return artifact.rollout_id


def test_a_versions_rollouts_are_listed_and_only_they(store: Any) -> None:
    # Given uploads of 2.7.0 (twice), of versions whose ids begin alike, and of another version
    mine = {upload(store, "2.7.0", "a"), upload(store, "2.7.0", "b")}
    for version, etag in (("2_7_0", "c"), ("2.7.0-rc1", "d"), ("3.0.0", "e")):
        upload(store, version, etag)

    # When 2.7.0's rollouts are listed
    listed = store.list_rollouts(APP, "2.7.0")

    # Then they are exactly its two, and every rollout is listed without a version
    assert {r.rollout_id for r in listed} == mine
    assert len(store.list_rollouts(APP)) == 5


def test_the_table_reads_only_the_records_that_begin_as_the_versions_ids(aws: itertools.count[int]) -> None:
    table = f"state-{next(aws)}"
    boto3.client("dynamodb").create_table(
        TableName=table,
        KeySchema=STATE_TABLE["KeySchema"],
        AttributeDefinitions=STATE_TABLE["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    store = DynamoRolloutStore(table, FixedClock(NOW))
    for index in range(20):
        upload(store, f"1.{index}.0", "x")
    upload(store, "2.7.0", "a")

    # When 2.7.0's rollouts are listed, DynamoDB reads one record, not the application's 21
    scanned: list[int] = []
    real_query = store._db.query

    def query(**request: Any) -> Any:
        response = real_query(**request)
        scanned.append(int(response["ScannedCount"]))
        return response

    with mock.patch.object(store._db, "query", side_effect=query):
        assert len(store.list_rollouts(APP, "2.7.0")) == 1

    assert sum(scanned) == 1
