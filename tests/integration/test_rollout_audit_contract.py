"""One contract, two rollout stores: a record's audit lists a bounded number of alarms.

A rollout record is one DynamoDB item, and an item holds at most 400 KB (DynamoDB's service
quotas). An alarm that flaps while a rollout waits for days (a window, an approval) must not
fill it: past MAX_LISTED_ALARMS alarms the record only counts them, and decisions are always
listed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from canaryfleet.adapters.clients import reset_clients
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.rollout_record import MAX_LISTED_ALARMS, AuditEntry
from canaryfleet.ports.clock import FixedClock
from moto import mock_aws

from canaryfleet_local.parsing import parse_template
from tests.helpers import REPO
from tests.unit.fakes import InMemoryRolloutStore, a_rollout

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
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
    clock = FixedClock(NOW)
    if request.param == "in-memory":
        return InMemoryRolloutStore(clock)
    table = f"state-{next(aws)}"
    boto3.client("dynamodb").create_table(
        TableName=table,
        KeySchema=STATE_TABLE["KeySchema"],
        AttributeDefinitions=STATE_TABLE["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    return DynamoRolloutStore(table, clock)


def test_past_the_listed_alarms_a_record_counts_them_and_still_lists_decisions(store: Any) -> None:
    # Given a rollout whose live alarm flapped more often than its record lists
    record = a_rollout(store, received_at=NOW)
    alarm_name = "payments-api-live-5xx-rate-" + "x" * 200  # long names: the worst case in bytes
    for minute in range(MAX_LISTED_ALARMS + 3):
        entry = AuditEntry(kind="alarm", alarm=alarm_name, side="live", at=NOW + timedelta(minutes=minute))
        store.append_audit(record.application, record.rollout_id, entry)

    # When someone aborts it
    abort = AuditEntry(kind="abort", by="oncall@example.com", reason="flapping", channel="cli", at=NOW)
    store.append_audit(record.application, record.rollout_id, abort)

    # Then the record lists the first alarms, counts the rest, and lists the abort
    after = store.get(record.application, record.rollout_id)
    alarms = [e for e in after.audit if e.kind == "alarm"]
    assert len(alarms) == MAX_LISTED_ALARMS
    assert alarms[-1].at == NOW + timedelta(minutes=MAX_LISTED_ALARMS - 1)
    assert after.alarms_not_listed == 3
    assert after.audit[-1] == abort
