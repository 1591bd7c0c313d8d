"""When a guarded step may run: windows (days, hours, zones, across midnight) and freezes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from canaryfleet.errors import CalendarUnbounded, InvalidFreeze
from canaryfleet.logic.calendar import MAX_HOLD, describe_wait, next_opening
from canaryfleet.logic.freezes import declare_freeze, standing_freezes
from canaryfleet.models.calendar import Freeze
from canaryfleet.models.policy import DeploymentWindow, RolloutPolicy, SetWeight
from canaryfleet.models.rollout import RolloutPlan
from canaryfleet.ports.clock import FixedClock
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.unit.fakes import InMemoryFreezeCalendar

# Wednesday 2 December 2026.
WED = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
OFFICE_HOURS = DeploymentWindow(days=("mon", "tue", "wed", "thu", "fri"), start=time(9), end=time(17))


def a_freeze(start: datetime, end: datetime, freeze_id: str = "sale-day", **extra: object) -> Freeze:
    return Freeze(
        freeze_id=freeze_id,
        start=start,
        end=end,
        reason="biggest sale of the year",
        declared_by="oncall@example.com",
        declared_at=start - timedelta(days=1),
        **extra,  # type: ignore[arg-type]
    )


def test_without_windows_or_freezes_a_step_may_always_run() -> None:
    assert next_opening((), (), WED) is None


def test_inside_a_window_a_step_may_run() -> None:
    assert next_opening((OFFICE_HOURS,), (), WED) is None


def test_before_the_window_opens_the_step_waits_for_the_opening_that_day() -> None:
    hold = next_opening((OFFICE_HOURS,), (), WED.replace(hour=6, minute=30))

    assert hold is not None
    assert (hold.until, hold.kind, hold.reason) == (
        WED.replace(hour=9),
        "window",
        "outside the deployment window",
    )


def test_after_friday_evening_the_step_waits_for_monday_morning() -> None:
    friday_evening = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)

    hold = next_opening((OFFICE_HOURS,), (), friday_evening)

    assert hold is not None and hold.until == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_a_window_is_in_its_own_time_zone() -> None:
    india = DeploymentWindow(start=time(6), end=time(18), timezone="Asia/Kolkata")

    hold = next_opening((india,), (), datetime(2026, 12, 2, 20, 48, tzinfo=UTC))  # 02:18 IST

    assert hold is not None
    assert hold.until == datetime(2026, 12, 3, 0, 30, tzinfo=UTC)  # 06:00 IST
    assert hold.timezone == "Asia/Kolkata"


def test_a_window_across_midnight_is_open_the_morning_after_one_of_its_days_only() -> None:
    nights = DeploymentWindow(days=("fri",), start=time(22), end=time(4))

    assert next_opening((nights,), (), datetime(2026, 12, 5, 2, 0, tzinfo=UTC)) is None  # Saturday 02:00
    hold = next_opening((nights,), (), datetime(2026, 12, 3, 2, 0, tzinfo=UTC))  # Thursday 02:00
    assert hold is not None and hold.until == datetime(2026, 12, 4, 22, 0, tzinfo=UTC)


def test_a_freeze_in_force_holds_the_step_until_it_ends() -> None:
    freeze = a_freeze(WED - timedelta(hours=1), WED + timedelta(hours=3))

    hold = next_opening((), (freeze,), WED)

    assert hold is not None
    assert (hold.until, hold.kind) == (freeze.end, "freeze")
    assert "biggest sale of the year" in hold.reason and "oncall@example.com" in hold.reason


def test_a_freeze_declared_with_an_offset_holds_the_step_until_its_end_in_utc() -> None:
    # The hold's until is stored and shown as UTC: 18:00 in India is 12:30 UTC
    india = timezone(timedelta(hours=5, minutes=30))
    freeze = a_freeze(WED - timedelta(hours=1), datetime(2026, 12, 2, 18, 0, tzinfo=india))

    hold = next_opening((), (freeze,), WED)

    assert hold is not None
    assert hold.until.isoformat() == "2026-12-02T12:30:00+00:00"


def test_removed_and_future_freezes_do_not_hold_the_step() -> None:
    removed = a_freeze(WED - timedelta(hours=1), WED + timedelta(hours=3), removed_at=WED, removed_by="x")
    later = a_freeze(WED + timedelta(hours=1), WED + timedelta(hours=3), freeze_id="later")

    assert next_opening((), (removed, later), WED) is None


def test_a_freeze_that_ends_after_hours_holds_the_step_until_the_next_window() -> None:
    freeze = a_freeze(WED - timedelta(hours=1), WED.replace(hour=18))

    hold = next_opening((OFFICE_HOURS,), (freeze,), WED)

    assert hold is not None
    assert hold.until == datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    assert hold.kind == "window" and "biggest sale" in hold.reason


def test_back_to_back_freezes_hold_the_step_until_the_last_ends() -> None:
    first = a_freeze(WED - timedelta(hours=1), WED + timedelta(hours=1), freeze_id="first")
    second = a_freeze(WED + timedelta(hours=1), WED + timedelta(hours=2), freeze_id="second")

    hold = next_opening((), (first, second), WED)

    assert hold is not None and hold.until == second.end


def test_a_calendar_with_no_time_left_to_release_is_refused_not_searched_forever() -> None:
    monday = DeploymentWindow(days=("mon",), start=time(10), end=time(11))
    first_monday = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    freezes = [
        a_freeze(
            first_monday + timedelta(weeks=w), first_monday + timedelta(weeks=w, hours=3), f"week-{w:04d}"
        )
        for w in range(300)
    ]

    with pytest.raises(CalendarUnbounded):
        next_opening((monday,), freezes, WED)


def test_a_freeze_holding_the_step_past_120_days_is_refused_before_the_execution_could_outlive_its_year() -> (
    None
):
    # Step Functions ends a Standard execution after one year, TIMED_OUT, where no Catch runs:
    # a rollout waiting that long would keep its lock and its canary traffic
    long = a_freeze(WED - timedelta(days=1), WED + MAX_HOLD + timedelta(hours=1), "year-end-sale")
    short = a_freeze(WED - timedelta(days=1), WED + MAX_HOLD - timedelta(hours=1), "long-sale")

    with pytest.raises(CalendarUnbounded, match="more than 120 days away"):
        next_opening((), [long], WED)
    hold = next_opening((), [short], WED)
    assert hold is not None and hold.until == short.end


@given(
    at=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)),
    start=st.times(),
    hours=st.integers(min_value=1, max_value=23),
    zone=st.sampled_from(["UTC", "Asia/Kolkata", "America/New_York", "Europe/London", "Australia/Sydney"]),
)
def test_the_opening_found_is_never_earlier_than_now_and_is_inside_the_window(
    at: datetime, start: time, hours: int, zone: str
) -> None:
    end = (datetime.combine(WED.date(), start) + timedelta(hours=hours)).time()
    window = DeploymentWindow(days=("tue", "sat"), start=start, end=end, timezone=zone)

    hold = next_opening((window,), (), at)

    if hold is not None:
        assert hold.until > at
        assert next_opening((window,), (), hold.until) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"start": "09:00", "end": "17:00", "timezone": "Mars/Olympus"},
        {"start": "09:00", "end": "09:00"},
        {"start": "09:00", "end": "17:00", "days": []},
        {"start": "09:00", "end": "17:00", "days": ["someday"]},
        {"start": "25:00", "end": "17:00"},
    ],
)
def test_a_window_that_makes_no_sense_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DeploymentWindow.model_validate(fields)


def test_windows_and_their_guards_reach_the_state_machines_plan() -> None:
    policy = RolloutPolicy(steps=(SetWeight(weight=5),), windows=(OFFICE_HOURS,), window_guards=("live",))

    plan = RolloutPlan.of(policy)

    assert plan.window.windows == (OFFICE_HOURS,) and plan.window.guards == ("live",)
    assert RolloutPlan.of(RolloutPolicy(steps=(SetWeight(weight=5),))).window.guards == ("canary", "live")


def test_a_wait_reads_as_the_window_that_opens_at_a_local_time_in_so_long() -> None:
    now = datetime(2026, 12, 2, 15, 18, tzinfo=UTC)  # 20:48 IST
    opens = datetime(2026, 12, 3, 0, 30, tzinfo=UTC)  # 06:00 IST

    said = describe_wait(opens, "window", "Asia/Kolkata", now)

    assert said == "the window that opens at 06:00 IST (in 9h 12m)"
    assert describe_wait(opens, "freeze", "UTC", now) == "the end of a freeze at 00:30 UTC (in 9h 12m)"
    assert describe_wait(opens + timedelta(days=2), "window", "UTC", now).startswith(
        "the window that opens at Sat 05 Dec 00:30 UTC"
    )


def test_declaring_a_freeze_stores_it_with_who_and_removing_keeps_it_for_the_audit() -> None:
    calendar = InMemoryFreezeCalendar()
    clock = FixedClock(WED)

    freeze = declare_freeze(
        calendar, end=WED + timedelta(hours=6), reason="sale day", by="alice@example.com", clock=clock
    )
    removed = calendar.remove(freeze.freeze_id, "bob@example.com", "sale moved", WED + timedelta(hours=1))

    assert (freeze.start, freeze.declared_by, freeze.declared_at) == (WED, "alice@example.com", WED)
    assert (removed.removed_by, removed.removed_reason) == ("bob@example.com", "sale moved")
    assert standing_freezes(calendar, WED) == []
    assert [f.freeze_id for f in standing_freezes(calendar, WED, include_past=True)] == [freeze.freeze_id]


@pytest.mark.parametrize(
    ("start", "end", "reason", "freeze_id", "said"),
    [
        (None, WED - timedelta(minutes=1), "over already", None, "would have ended already"),
        (
            WED + timedelta(hours=2),
            WED + timedelta(hours=1),
            "ends before it starts",
            None,
            "a freeze must end after it starts",
        ),
        (None, WED + timedelta(hours=1), "", None, "reason: String should have at least 1 character"),
        (None, WED + timedelta(hours=1), "bad id", "Not An Id!", "freeze_id: String should match pattern"),
        (None, datetime(2026, 12, 3, 12, 0), "no offset", None, "with a time zone offset"),
    ],
)
def test_a_freeze_that_cannot_hold_is_refused_and_nothing_is_stored(
    start: datetime | None, end: datetime, reason: str, freeze_id: str | None, said: str
) -> None:
    calendar = InMemoryFreezeCalendar()

    with pytest.raises(InvalidFreeze) as refused:
        declare_freeze(
            calendar,
            start=start,
            end=end,
            reason=reason,
            by="a@example.com",
            clock=FixedClock(WED),
            freeze_id=freeze_id,
        )

    # In the operator's words: where and what, without pydantic's own prefix.
    assert said in str(refused.value)
    assert "Value error" not in str(refused.value)
    assert calendar.freezes() == []
