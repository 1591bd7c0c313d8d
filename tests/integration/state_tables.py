"""The platform's state table on moto, as template.yaml declares it, for the stores' contract tests."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import boto3
from canaryfleet.adapters.clients import reset_clients
from moto import mock_aws

from canaryfleet_local.parsing import parse_template
from tests.helpers import REPO

STATE_TABLE: dict[str, Any] = parse_template((REPO / "template.yaml").read_text())["Resources"]["StateTable"][
    "Properties"
]


@contextlib.contextmanager
def moto_tables() -> Iterator[itertools.count[int]]:
    """moto for a test module, the runtime's cached clients made anew; each test numbers its own table."""
    with mock_aws():
        reset_clients()
        yield itertools.count()
    reset_clients()


def create_state_table(name: str) -> str:
    """A table with the state table's keys (on demand), named ``name``."""
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=STATE_TABLE["KeySchema"],
        AttributeDefinitions=STATE_TABLE["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    return name
