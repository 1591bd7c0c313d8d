"""The charts of a rollout: honest shapes, every phase inside the plot, numbers in words."""

from datetime import UTC, datetime, timedelta

import pytest
from canaryfleet.adapters.fleet import sample_period
from canaryfleet.api.charts import UPLOT_JS_SHA256, chart_assets, charts_json, csp_hash
from canaryfleet.logic.charts import bake_charts, metric_charts, phase_marks, relative, weight_chart, x_range
from canaryfleet.models.chart import MAX_SAMPLES, AlarmThreshold, BakeSamples, MetricSample
from canaryfleet.models.rollout_record import AuditEntry, RolloutRecord, WeightEntry

from tests.unit.test_approval_messages import approval

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record(**changes: object) -> RolloutRecord:
    values: dict[str, object] = {
        "rollout_id": "hello-app-1_1_0-abc",
        "application": "hello-app",
        "version": "1.1.0",
        "artifact_bucket": "artifacts",
        "artifact_key": "hello-app/1.1.0.zip",
        "received_at": at(-5),
        "stage_started_at": at(0),
        "stage_canary_deployed_at": at(60),
        "stage_traffic_shifted_at": at(61),
        "stage_rolled_back_at": at(200),
        "bake_started_at": at(61),
        "weight_log": {"2": WeightEntry(weight=10, at=at(61)), "9": WeightEntry(weight=0, at=at(190))},
        "audit": [
            AuditEntry(kind="alarm", alarm="hello-app-canary-5xx-rate", side="canary", at=at(150)),
            AuditEntry(kind="abort", by="oncall@example.com", channel="cli", reason="", at=at(180)),
        ],
    }
    return RolloutRecord.model_validate({**values, **changes})


def sample(seconds: float, requests: float, errors: float, latency: float | None = 0.08) -> MetricSample:
    return MetricSample(at=at(seconds), seconds=60, requests=requests, errors=errors, latency=latency)


def test_relative_times_read_as_minutes_and_seconds_after_the_start() -> None:
    assert relative(at(0), T0) == "+0:00"
    assert relative(at(75), T0) == "+1:15"
    assert relative(at(3725), T0) == "+1:02:05"
    assert relative(at(-3), T0) == "-0:03"


def test_every_phase_is_marked_in_time_order_with_its_kind() -> None:
    marks = phase_marks(record())

    assert [(m.label, m.kind, m.when) for m in marks] == [
        ("canary deployed", "phase", "+1:00"),
        ("weight 10%", "phase", "+1:01"),
        ("bake", "phase", "+1:01"),
        ("alarm", "alarm", "+2:30"),
        ("aborted", "decision", "+3:00"),
        ("weight 0%", "phase", "+3:10"),
        ("rolled back", "phase", "+3:20"),
    ]


def test_the_x_range_holds_every_mark_with_room_on_both_sides() -> None:
    marks = phase_marks(record())

    low, high = x_range(at(0), at(200), marks)

    assert low < at(0).timestamp() and high > at(200).timestamp()
    assert all(low < m.at < high for m in marks)


def test_weights_are_steps_on_an_axis_scaled_to_the_policys_largest_step() -> None:
    chart = weight_chart(record(), at(0), at(200), 10, phase_marks(record()))

    [series] = chart.series
    assert series.draw == "steps"
    assert series.y == [0.0, 10.0, 0.0, 0.0]
    assert 10 < chart.y_max <= 16, "scaled to the largest step, not to 100%"
    assert "0%, then 10% at +1:01, 0% at +3:10" in chart.words[0]


ALARMS = [
    AlarmThreshold(
        alarm="hello-app-canary-5xx-rate",
        watches="5xx_rate_percent",
        threshold=5.0,
        comparison="GreaterThanThreshold",
    ),
    AlarmThreshold(
        alarm="hello-app-canary-latency-p99",
        watches="latency_p99_seconds",
        threshold=1.5,
        comparison="GreaterThanThreshold",
    ),
]


def test_samples_are_points_and_the_words_state_the_canarys_actual_rate() -> None:
    samples = BakeSamples(
        canary=[sample(60, 100, 20), sample(120, 100, 22)],
        live=[sample(0, 1000, 1), sample(60, 900, 1), sample(120, 900, 1)],
    )

    errors, latency = metric_charts(samples, 0, 1, [], ALARMS, None)

    assert {s.draw for s in errors.series + latency.series} == {"points"}
    live, canary = errors.series
    assert (live.role, canary.role) == ("live", "canary"), "canary drawn over live"
    assert canary.y == [20.0, 22.0]
    assert canary.x == [at(90).timestamp(), at(150).timestamp()], "each point at its period's middle"
    assert errors.words[0] == "Canary 5xx rate 21.00% (42 of 200 requests); per period from 20.00% to 22.00%."
    assert errors.y_max > 22
    # The canary's 5xx-rate alarm is drawn at its threshold (a rate in percent, as the axis); the
    # p99 latency alarm is said in words only, since the chart draws averages.
    assert [t.value for t in errors.thresholds] == [5.0]
    assert latency.thresholds == []
    assert any("hello-app-canary-5xx-rate fires above 5%" in w for w in errors.words)
    assert any("p99 is above 1500 ms" in w for w in latency.words)


def test_a_period_without_requests_draws_no_point() -> None:
    samples = BakeSamples(canary=[sample(0, 0, 0, None), sample(60, 10, 0)])

    errors, latency = metric_charts(samples, 0, 1, [], [], None)

    assert len(errors.series[1].y) == 1 and len(latency.series[1].y) == 1


def test_the_bake_charts_mark_the_bake_and_the_analysis_and_draw_the_alarms_the_bake_watched() -> None:
    verdict = approval().verdict
    assert verdict is not None
    samples = BakeSamples(canary=[MetricSample(at=verdict.window_start, seconds=60, requests=10, errors=0)])
    verdict = verdict.model_copy(update={"samples": samples, "alarms": ALARMS})

    errors, latency = bake_charts(verdict)

    assert [m.label for m in errors.marks] == ["bake", "analysis"]
    assert all(errors.x_min < m.at < errors.x_max for m in errors.marks)
    assert [t.value for t in errors.thresholds] == [5.0] and latency.thresholds == []
    assert errors.y_max > 5.0, "the alarm's line is inside the plot"


def test_without_alarms_nothing_is_drawn_as_a_limit() -> None:
    # The statistical judge has no fixed limit: a chart draws only thresholds that exist (alarms)
    samples = BakeSamples(canary=[sample(60, 100, 1)], live=[sample(60, 1000, 5)])

    errors, latency = metric_charts(samples, 0, 1, [], [], None)

    assert errors.thresholds == [] and latency.thresholds == []
    assert not any("limit" in w.lower() for w in errors.words + latency.words)


@pytest.mark.parametrize(
    ("window", "period"), [(10, 1), (300, 5), (600, 10), (1800, 30), (3600, 60), (86_400, 1440)]
)
def test_a_window_is_split_into_at_most_the_samples_kept_in_periods_cloudwatch_accepts(
    window: int, period: int
) -> None:
    assert sample_period(window) == period
    assert window / sample_period(window) <= MAX_SAMPLES


HOUR, DAY = 3_600, 86_400


@pytest.mark.parametrize(
    ("window", "age", "period"),
    [
        (1_200, 2 * HOUR, 30),  # a recent bake: the high-resolution periods
        (1_200, 4 * HOUR, 60),  # over 3 hours ago: a multiple of 60 s
        (2 * DAY, 4 * HOUR, 2_880),
        (1_200, 20 * DAY, 300),  # over 15 days ago: a multiple of 300 s
        (2 * DAY, 20 * DAY, 3_000),
        (1_200, 70 * DAY, 3_600),  # over 63 days ago: a multiple of 3,600 s
    ],
)
def test_an_older_window_is_read_in_the_period_cloudwatch_keeps_its_data_in(
    window: int, age: int, period: int
) -> None:
    # GetMetricData returns no data points for a start that old in a finer period
    assert sample_period(window, age) == period
    assert window / period <= MAX_SAMPLES


def test_the_vendored_uplot_is_the_pinned_one_and_the_policy_hash_is_of_the_inlined_script() -> None:
    assets = chart_assets()

    assert assets.script_hashes == (csp_hash(assets.script),)
    assert assets.script_src == f"'sha256-{csp_hash(assets.script)}'"
    assert UPLOT_JS_SHA256 == "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f"
    assert "uPlot" in assets.script and "chart-data" in assets.script


def test_the_data_the_script_reads_leaves_out_the_words() -> None:
    chart = weight_chart(record(), at(0), at(200), 10, [])

    [data] = charts_json([chart])

    assert "words" not in data and data["id"] == "weight-chart"
