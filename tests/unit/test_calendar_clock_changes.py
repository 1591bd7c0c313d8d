"""Deployment windows on the days the clocks change: the opening found is the first open instant.

The wait ends where the window first counts as open (``in_windows``), never later: not past a
window the clocks jump into, nor past the second reading of an hour the clocks go back through.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from canaryfleet.logic.calendar import in_windows, next_opening
from canaryfleet.models.policy import WEEKDAYS, DeploymentWindow
from hypothesis import given, settings
from hypothesis import strategies as st

MINUTE = timedelta(minutes=1)
# 2026's clock changes (all on a Sunday), as UTC instants; Asia/Kolkata has none and keeps a Sunday.
CHANGES = {
    "America/New_York": (datetime(2026, 3, 8, 7, 0, tzinfo=UTC), datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),
    "Europe/London": (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), datetime(2026, 10, 25, 1, 0, tzinfo=UTC)),
    # Half-hour changes: 02:00 to 02:30 in October, 02:00 back to 01:30 in April.
    "Australia/Lord_Howe": (
        datetime(2026, 4, 4, 15, 0, tzinfo=UTC),
        datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
    ),
    "Asia/Kolkata": (datetime(2026, 3, 7, 21, 0, tzinfo=UTC),),
}


def a_window(zone: str, start: time, end: time, days: tuple[str, ...] = ("sun",)) -> DeploymentWindow:
    return DeploymentWindow(days=days, start=start, end=end, timezone=zone)


def first_open_minute_is(window: DeploymentWindow, now: datetime, opening: datetime) -> None:
    """``opening`` is in the window and no minute from ``now`` up to it is (all bounds on minutes)."""
    assert in_windows((window,), opening), f"{opening} is not in the window"
    at = now
    while at < opening:
        assert not in_windows((window,), at), f"{at} is in the window, before the opening at {opening}"
        at += MINUTE


@pytest.mark.parametrize(
    ("window", "now", "opens"),
    [
        pytest.param(
            a_window("America/New_York", time(2, 30), time(3, 30)),
            datetime(2026, 3, 8, 5, 0, tzinfo=UTC),  # 00:00 EST
            datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 03:00 EDT: 02:30 never comes, the clocks jump in
            id="new-york-spring-forward-into-the-window",
        ),
        pytest.param(
            a_window("America/New_York", time(2, 15), time(2, 45)),
            datetime(2026, 3, 8, 5, 0, tzinfo=UTC),
            datetime(2026, 3, 15, 6, 15, tzinfo=UTC),  # wholly in the skipped hour: next Sunday
            id="new-york-window-inside-the-skipped-hour",
        ),
        pytest.param(
            a_window("Europe/London", time(1, 0), time(1, 30)),
            datetime(2026, 10, 25, 0, 45, tzinfo=UTC),  # 01:45 BST, after the first 01:00-01:30
            datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # the second 01:00, in GMT
            id="london-fall-back-second-reading",
        ),
        pytest.param(
            a_window("Europe/London", time(0, 30), time(1, 10)),
            datetime(2026, 10, 25, 0, 20, tzinfo=UTC),  # 01:20 BST, closed since 01:10 BST
            datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # 02:00 BST goes back to 01:00 GMT: open again
            id="london-fall-back-into-the-window",
        ),
        pytest.param(
            a_window("Australia/Lord_Howe", time(2, 10), time(3, 0)),
            datetime(2026, 10, 3, 13, 30, tzinfo=UTC),  # 00:00 +10:30
            datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # 02:30 +11:00, the clocks jump past 02:10
            id="lord-howe-half-hour-spring-forward",
        ),
        pytest.param(
            a_window("Australia/Lord_Howe", time(1, 30), time(1, 45)),
            datetime(2026, 4, 4, 14, 50, tzinfo=UTC),  # 01:50 +11:00
            datetime(2026, 4, 4, 15, 0, tzinfo=UTC),  # 02:00 +11:00 goes back to 01:30 +10:30
            id="lord-howe-half-hour-fall-back-to-the-start",
        ),
        pytest.param(
            a_window("Australia/Lord_Howe", time(1, 40), time(1, 50)),
            datetime(2026, 4, 4, 14, 55, tzinfo=UTC),  # 01:55 +11:00
            datetime(2026, 4, 4, 15, 10, tzinfo=UTC),  # the second 01:40, in +10:30
            id="lord-howe-half-hour-fall-back-second-reading",
        ),
        pytest.param(
            a_window("Asia/Kolkata", time(2, 30), time(3, 30)),
            datetime(2026, 3, 7, 20, 0, tzinfo=UTC),  # 01:30 IST
            datetime(2026, 3, 7, 21, 0, tzinfo=UTC),  # 02:30 IST
            id="kolkata-no-clock-changes",
        ),
    ],
)
def test_on_a_day_the_clocks_change_the_step_waits_for_the_first_instant_the_window_is_open(
    window: DeploymentWindow, now: datetime, opens: datetime
) -> None:
    # Given a window closed now, around a change of the clocks in its zone
    assert not in_windows((window,), now)

    # When the calendar is asked when the step may run
    hold = next_opening((window,), (), now)

    # Then it is the first instant the window counts as open
    assert hold is not None and hold.until == opens
    first_open_minute_is(window, now, hold.until)


# Each example walks minute by minute up to the opening (days of minutes at most): no deadline,
# which a busy machine would miss.
@settings(deadline=None)
@given(
    zone_change=st.sampled_from([(zone, change) for zone, changes in CHANGES.items() for change in changes]),
    minutes_from_change=st.integers(min_value=-2 * 24 * 60, max_value=24 * 60),
    start_hour=st.sampled_from([23, 0, 1, 2, 3]),
    start_minute=st.sampled_from(range(0, 60, 5)),
    length=st.integers(min_value=1, max_value=48).map(lambda fives: timedelta(minutes=5 * fives)),
    days=st.one_of(
        st.just(("sun",)), st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)
    ),
)
def test_around_a_clock_change_no_minute_before_the_opening_found_is_in_the_window(
    zone_change: tuple[str, datetime],
    minutes_from_change: int,
    start_hour: int,
    start_minute: int,
    length: timedelta,
    days: list[str],
) -> None:
    zone, change = zone_change
    start = time(start_hour, start_minute)
    end = (datetime.combine(change.date(), start) + length).time()
    window = a_window(zone, start, end, tuple(days))
    now = change + minutes_from_change * MINUTE

    hold = next_opening((window,), (), now)

    if hold is None:
        assert in_windows((window,), now)
    else:
        assert hold.until.tzinfo is UTC
        first_open_minute_is(window, now, hold.until)
