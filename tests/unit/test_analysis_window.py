"""The analysis window ends at the last complete minute of metrics, allowing for CloudWatch's delay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from canaryfleet.logic.canary import analysis_window
from canaryfleet.models.policy import AnalysisSpec
from canaryfleet.ports.clock import FixedClock

BAKE_STARTED = datetime(2026, 11, 26, 10, 0, 12, tzinfo=UTC)


def test_the_platform_default_allows_two_minutes_for_the_load_balancers_metrics() -> None:
    assert AnalysisSpec().metrics_delay_seconds == 120


def test_the_window_ends_at_the_last_whole_minute_before_the_delay() -> None:
    # Given a bake that ended at 10:10:45 and metrics that arrive two minutes late
    clock = FixedClock(datetime(2026, 11, 26, 10, 10, 45, tzinfo=UTC))

    # When the window is computed
    start, end = analysis_window(BAKE_STARTED, clock.now(), metrics_delay_seconds=120)

    # Then it runs from the bake's start to 10:08:00: the minutes after it are not all in CloudWatch
    assert (start, end) == (BAKE_STARTED, datetime(2026, 11, 26, 10, 8, tzinfo=UTC))


def test_with_no_delay_the_window_ends_now() -> None:
    now = BAKE_STARTED + timedelta(seconds=2)

    assert analysis_window(BAKE_STARTED, now, metrics_delay_seconds=0) == (BAKE_STARTED, now)


def test_a_bake_shorter_than_the_delay_has_an_empty_window_not_a_reversed_one() -> None:
    now = BAKE_STARTED + timedelta(seconds=30)

    start, end = analysis_window(BAKE_STARTED, now, metrics_delay_seconds=120)

    assert start == end == BAKE_STARTED


def test_without_a_recorded_bake_start_the_window_is_the_ten_minutes_before_its_end() -> None:
    now = datetime(2026, 11, 26, 10, 10, 45, tzinfo=UTC)

    start, end = analysis_window(None, now, metrics_delay_seconds=120)

    assert end == datetime(2026, 11, 26, 10, 8, tzinfo=UTC)
    assert end - start == timedelta(minutes=10)


def test_sampled_under_a_minute_a_late_analysis_reads_only_what_cloudwatch_still_keeps() -> None:
    # Given a bake of 2 h 55 min sampled every 10 s, analysed 10 minutes late (its task retried)
    now = BAKE_STARTED + timedelta(hours=2, minutes=55) + timedelta(minutes=10)

    start, end = analysis_window(BAKE_STARTED, now, metrics_delay_seconds=0, interval_seconds=10)

    # Then the window begins where CloudWatch still keeps 10-second data (3 hours), less a margin,
    # rather than asking for data it no longer returns
    assert (start, end) == (now - timedelta(hours=2, minutes=55), now)
    assert now - start < timedelta(hours=3)


def test_sampled_by_the_minute_a_late_analysis_still_reads_the_whole_bake() -> None:
    now = BAKE_STARTED + timedelta(hours=5)

    start, _ = analysis_window(BAKE_STARTED, now, metrics_delay_seconds=120, interval_seconds=60)

    assert start == BAKE_STARTED
