"""adapters.idempotency: one effect per key, on the environment's own DynamoDB client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from canaryfleet.adapters import idempotency
from canaryfleet.adapters.clients import client, reset_clients
from moto import mock_aws

TABLE = "idempotency"


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "notify")
    with mock_aws():
        reset_clients()
        idempotency._persistence.cache_clear()
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        yield TABLE
        reset_clients()
        idempotency._persistence.cache_clear()


class _Context:
    """The part of Lambda's context idempotency reads: an in-progress record lasts the invocation."""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _user_agent_handlers() -> int:
    emitter = client("dynamodb").meta.events
    return len(list(emitter._emitter._handlers.prefix_search("before-send.dynamodb.PutItem")))  # type: ignore[attr-defined]


def test_each_key_has_one_effect_across_invocations_and_no_invocation_adds_a_client_or_a_handler(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    effects: list[str] = []
    created: list[str] = []
    create_client = botocore.session.Session.create_client

    def counted(self: botocore.session.Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        created.append(service_name)
        return create_client(self, service_name, *args, **kwargs)

    def deliver(notice: dict[str, str]) -> str:
        effects.append(notice["key"])
        return f"sent {notice['key']}"

    def invocation(key: str) -> str:
        # As notify wraps its deliveries: once per invocation, with that invocation's context.
        once = idempotency.once_per_key(
            deliver, table_name=table, data_keyword="notice", key="key", context=_Context()
        )
        return once(notice={"key": key})

    assert invocation("r1#released") == "sent r1#released"
    handlers = _user_agent_handlers()
    monkeypatch.setattr(botocore.session.Session, "create_client", counted)
    answers = [invocation(key) for key in ["r1#released", "r2#started", "r1#released"] * 20]

    assert effects == ["r1#released", "r2#started"]  # a repeat gets the first call's answer
    assert answers[:3] == ["sent r1#released", "sent r2#started", "sent r1#released"]
    assert created == []  # made per call, the layer created a DynamoDB client for every invocation
    assert _user_agent_handlers() == handlers  # nor does one register Powertools' user agent again
    assert idempotency._persistence.cache_info().currsize == 1
    named = f"{deliver.__module__}.{deliver.__qualname__}"
    assert idempotency._persistence(table, "key", named, client("dynamodb")).client is client("dynamodb")


def test_a_function_made_once_inside_another_leaves_the_outer_ones_record_complete(table: str) -> None:
    # notify sends each copy of an email once inside the email delivery made once per notice: the
    # two share a table and a key path, and the outer's record must end "completed", not stay
    # "in progress" (a repeat then raised IdempotencyAlreadyInProgressError until it expired)
    effects: list[str] = []

    def copy(mail: dict[str, str]) -> None:
        effects.append(mail["key"])

    def deliver(notice: dict[str, str]) -> str:
        each = idempotency.once_per_key(
            copy, table_name=table, data_keyword="mail", key="key", context=_Context()
        )
        for to in ("alice", "bob"):
            each(mail={"key": f"{notice['key']}/to/{to}"})
        return "sent"

    once = idempotency.once_per_key(
        deliver, table_name=table, data_keyword="notice", key="key", context=_Context()
    )

    assert once(notice={"key": "r3#released"}) == "sent"
    assert once(notice={"key": "r3#released"}) == "sent"  # the first call's answer, not in progress
    assert effects == ["r3#released/to/alice", "r3#released/to/bob"]
