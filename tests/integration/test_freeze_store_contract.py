"""One contract, two freeze calendars: DynamoFreezeCalendar on moto and the unit tests' in-memory one."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from canaryfleet.adapters.freeze_store import DynamoFreezeCalendar
from canaryfleet.errors import FreezeExists, UnknownFreeze
from canaryfleet.models.calendar import Freeze
from canaryfleet.ports.calendar import FreezeCalendar

from tests.integration.state_tables import create_state_table, moto_tables
from tests.unit.fakes import InMemoryFreezeCalendar

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def aws() -> Iterator[itertools.count[int]]:
    with moto_tables() as numbers:
        yield numbers


@pytest.fixture(params=["dynamodb", "in-memory"])
def calendar(request: pytest.FixtureRequest, aws: itertools.count[int]) -> FreezeCalendar:
    if request.param == "in-memory":
        return InMemoryFreezeCalendar()
    table = f"state-{next(aws)}"
    create_state_table(table)
    return DynamoFreezeCalendar(table)


def a_freeze(freeze_id: str = "sale-day") -> Freeze:
    return Freeze(
        freeze_id=freeze_id,
        start=NOW,
        end=NOW + timedelta(hours=6),
        reason="biggest sale of the year",
        declared_by="alice@example.com",
        declared_at=NOW - timedelta(days=1),
    )


def test_a_declared_freeze_reads_back_as_it_was_declared(calendar: FreezeCalendar) -> None:
    calendar.declare(a_freeze())
    calendar.declare(a_freeze("incident-42"))

    assert sorted(calendar.freezes(), key=lambda f: f.freeze_id) == [a_freeze("incident-42"), a_freeze()]


def test_an_id_is_declared_once(calendar: FreezeCalendar) -> None:
    calendar.declare(a_freeze())

    with pytest.raises(FreezeExists):
        calendar.declare(a_freeze().model_copy(update={"reason": "another"}))
    assert [f.reason for f in calendar.freezes()] == ["biggest sale of the year"]


def test_removing_keeps_the_freeze_with_who_and_why_and_happens_once(calendar: FreezeCalendar) -> None:
    calendar.declare(a_freeze())

    removed = calendar.remove("sale-day", "bob@example.com", "sale moved", NOW + timedelta(hours=1))

    assert (removed.removed_by, removed.removed_at, removed.removed_reason) == (
        "bob@example.com",
        NOW + timedelta(hours=1),
        "sale moved",
    )
    assert calendar.freezes() == [removed]
    assert not removed.in_force(NOW + timedelta(hours=2))
    with pytest.raises(UnknownFreeze):
        calendar.remove("sale-day", "carol@example.com", "again", NOW + timedelta(hours=2))
    with pytest.raises(UnknownFreeze):
        calendar.remove("never-declared", "carol@example.com", "typo", NOW)
