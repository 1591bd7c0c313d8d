"""The canary judge: a test per kind of metric, Holm over all, inconclusive on too little data."""

from __future__ import annotations

import random
from typing import Any

import pytest
from canaryfleet.logic.analysis.judge import judge
from canaryfleet.models.analysis import AnalysisSamples, MetricSamples
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError


def errors(
    rng: random.Random,
    canary_rate: float,
    live_rate: float = 0.01,
    minutes: int = 10,
    per_minute: int = 6_000,
    share: float = 0.05,
    **extra: Any,
) -> MetricSamples:
    """A 5xx rate per minute, errors drawn per request (binomial through its normal approximation)."""

    def side(rate: float, requests: int) -> tuple[list[float | None], list[float | None]]:
        values: list[float | None] = []
        counts: list[float | None] = []
        for _ in range(minutes):
            mean, sd = requests * rate, (requests * rate * (1 - rate)) ** 0.5
            events = min(requests, max(0, round(rng.gauss(mean, sd))))
            values.append(events / requests if requests else 0.0)
            counts.append(float(requests))
        return values, counts

    canary, canary_counts = side(canary_rate, round(per_minute * share))
    live, live_counts = side(live_rate, round(per_minute * (1 - share)))
    return MetricSamples(
        name=extra.pop("name", "5xx rate"),
        canary=tuple(canary),
        live=tuple(live),
        canary_counts=tuple(canary_counts),
        live_counts=tuple(live_counts),
        **extra,
    )


def latency(rng: random.Random, canary_factor: float, minutes: int = 10, **extra: Any) -> MetricSamples:
    """Per-minute average latency around 80 ms with 4% noise."""
    live = tuple(0.08 * rng.gauss(1, 0.04) for _ in range(minutes))
    canary = tuple(0.08 * canary_factor * rng.gauss(1, 0.04) for _ in range(minutes))
    return MetricSamples(name=extra.pop("name", "latency"), canary=canary, live=live, **extra)


def test_a_canary_like_live_passes_with_its_numbers() -> None:
    # Given a canary that behaves as live
    rng = random.Random(1)
    analysis = AnalysisSamples(metrics=(errors(rng, 0.01, critical=True), latency(rng, 1.0)))
    # When judged
    verdict = judge(analysis)
    # Then it passes with a score of 100 and each metric's effect, interval and p-value
    assert verdict.result == "pass"
    assert verdict.score == 100
    rate = verdict.metrics[0]
    assert rate.kind == "ratio" and rate.canary_count == 3_000 and rate.live_count == 57_000
    assert rate.effect is not None and rate.effect_low is not None and rate.effect_high is not None
    assert rate.effect_low < rate.effect < rate.effect_high
    assert rate.confidence == pytest.approx(0.975)  # 5% shared by two metrics
    assert rate.p_value is not None and rate.p_adjusted is not None and rate.p_adjusted >= rate.p_value


def test_twice_the_error_rate_fails_on_the_request_counts() -> None:
    rng = random.Random(2)
    verdict = judge(AnalysisSamples(metrics=(errors(rng, 0.02, critical=True), latency(rng, 1.0))))
    assert verdict.result == "fail"
    failed = verdict.metrics[0]
    assert failed.result == "fail" and failed.test == "exact rate ratio (binomial)"
    assert failed.effect_low is not None and failed.effect_low > 0
    assert "5xx rate" in verdict.reasons[0] and "worse" in verdict.reasons[0]


def test_a_quarter_more_latency_fails_on_ranks() -> None:
    rng = random.Random(3)
    verdict = judge(AnalysisSamples(metrics=(errors(rng, 0.01), latency(rng, 1.25, critical=True))))
    assert verdict.result == "fail"
    slow = verdict.metrics[1]
    assert slow.test.startswith("Mann-Whitney U")
    assert slow.effect == pytest.approx(0.25, abs=0.06)


def test_a_better_canary_never_fails_a_one_sided_metric() -> None:
    rng = random.Random(4)
    verdict = judge(AnalysisSamples(metrics=(errors(rng, 0.001), latency(rng, 0.5))))
    assert verdict.result == "pass"


def test_either_direction_fails_a_change_both_ways() -> None:
    rng = random.Random(5)
    down = judge(AnalysisSamples(metrics=(latency(rng, 0.7, direction="either"),)))
    up = judge(AnalysisSamples(metrics=(latency(rng, 1.3, direction="either"),)))
    assert down.result == up.result == "fail"


def test_a_payment_success_rate_that_drops_fails() -> None:
    # Given a success rate of 97% on live and 95% on the canary (its misses are the rare outcome)
    rng = random.Random(6)
    metric = errors(rng, 0.95, live_rate=0.97, name="payment success", direction="decrease", critical=True)
    verdict = judge(AnalysisSamples(metrics=(metric,)))
    assert verdict.result == "fail"
    result = verdict.metrics[0]
    assert result.effect is not None and result.effect < 0
    assert result.effect_high is not None and result.effect_high < 0


def test_tolerance_lets_a_small_change_pass() -> None:
    rng = random.Random(7)
    strict = judge(AnalysisSamples(metrics=(errors(rng, 0.013, minutes=60),)))
    rng = random.Random(7)
    lenient = judge(AnalysisSamples(metrics=(errors(rng, 0.013, minutes=60, tolerance=0.5),)))
    assert strict.result == "fail"
    assert lenient.result == "pass"


@pytest.mark.parametrize("direction", ["increase", "decrease", "either"])
def test_a_tolerance_forgives_a_metric_below_zero_as_it_does_one_above(direction: str) -> None:
    # A metric-math difference (e.g. queue depth change) below zero, canary as live: a 10%
    # tolerance must make the test more lenient, never stricter
    rng = random.Random(5)
    values = [rng.gauss(-100, 5) for _ in range(30)]
    for sign in (1, -1):
        side = tuple(sign * v for v in values)
        metric = MetricSamples(
            name="backlog change", canary=side, live=side, min_samples=3, tolerance=0.1, direction=direction
        )
        [verdict] = judge(AnalysisSamples(metrics=(metric,))).metrics
        assert verdict.result == "pass", (sign, verdict.reason)


def test_too_little_traffic_is_inconclusive_never_a_pass() -> None:
    # Given a canary that had 60 requests where the policy asks for 100
    rng = random.Random(8)
    metric = errors(rng, 0.01, per_minute=120, min_count=100)
    verdict = judge(AnalysisSamples(metrics=(metric, latency(rng, 1.0))))
    assert verdict.result == "inconclusive"
    assert verdict.metrics[0].result == "inconclusive"
    assert "fewer than 100" in verdict.reasons[0]


def test_too_few_intervals_is_inconclusive() -> None:
    metric = MetricSamples(name="latency", canary=(0.1, None), live=(0.08, 0.08, 0.08), min_samples=3)
    verdict = judge(AnalysisSamples(metrics=(metric,)))
    assert verdict.result == "inconclusive"
    assert verdict.score == 0
    assert "1 canary and 3 live intervals" in verdict.reasons[0]


def ten_times_slower(intervals: int, **extra: Any) -> MetricSamples:
    live = tuple(0.08 + 0.001 * i for i in range(intervals))
    return MetricSamples(
        name=extra.pop("name", "latency"), canary=tuple(10 * v for v in live), live=live, **extra
    )


def no_errors(intervals: int) -> MetricSamples:
    return MetricSamples(
        name="5xx rate",
        canary=(0.0,) * intervals,
        live=(0.0,) * intervals,
        canary_counts=(300.0,) * intervals,
        live_counts=(5_700.0,) * intervals,
        critical=True,
    )


def test_too_few_intervals_for_the_rank_test_to_fail_is_inconclusive_never_a_pass() -> None:
    # Given a canary ten times slower than live over three one-minute intervals a side (a
    # 300 s bake, the shortest a bundle may ask for, less the metrics' delay), judged with the
    # 5xx rate at the default alpha
    verdict = judge(AnalysisSamples(metrics=(no_errors(3), ten_times_slower(3, critical=True))))
    # Then its latency is not passed: 1/20 is the lowest p-value three intervals can give, and
    # each of two metrics needs 0.025
    latency = verdict.metrics[1]
    assert (verdict.result, latency.result) == ("inconclusive", "inconclusive")
    assert latency.p_value is None and latency.p_adjusted is None
    assert "cannot go below 0.05, above the 0.025 each of 2 metrics needs" in latency.reason
    assert "at least 4 intervals a side" in latency.reason
    # And the 5xx rate, judged alone, passes at the level of a family of one
    assert verdict.metrics[0].result == "pass"
    assert verdict.metrics[0].p_adjusted == verdict.metrics[0].p_value


def test_enough_intervals_let_the_rank_test_fail_a_slow_canary() -> None:
    verdict = judge(AnalysisSamples(metrics=(no_errors(4), ten_times_slower(4, critical=True))))
    assert verdict.result == "fail"
    assert verdict.metrics[1].result == "fail"


def test_a_metric_alone_reaches_alpha_with_three_intervals() -> None:
    # Given latency judged alone: a family of one needs 0.05, which three intervals reach
    verdict = judge(AnalysisSamples(metrics=(ten_times_slower(3, critical=True),)))
    assert verdict.result == "fail"


def test_a_metric_that_cannot_reach_its_level_leaves_the_family_and_raises_the_others_level() -> None:
    # Given two rank-tested metrics at 4 intervals (floor 1/70) and one at 3 (floor 1/20): as
    # three they need 0.0167 each, which the one with 3 cannot reach; once it has left, the two
    # others need 0.025
    metrics = (
        ten_times_slower(4, name="latency", critical=True),
        ten_times_slower(4, name="queue wait", critical=True),
        ten_times_slower(3, name="db time", critical=True),
    )
    verdict = judge(AnalysisSamples(metrics=metrics))
    assert [m.result for m in verdict.metrics] == ["fail", "fail", "inconclusive"]
    assert "the 0.017 each of 3 metrics needs" in verdict.metrics[2].reason
    assert verdict.result == "fail"


def test_a_change_either_way_needs_twice_the_floor() -> None:
    # Given "either": both sides Bonferroni-halved, so 4 intervals give 2/70 = 0.029 > 0.025
    verdict = judge(AnalysisSamples(metrics=(no_errors(4), ten_times_slower(4, direction="either"))))
    assert verdict.metrics[1].result == "inconclusive"
    assert "at least 5 intervals a side" in verdict.metrics[1].reason
    assert (
        judge(AnalysisSamples(metrics=(no_errors(5), ten_times_slower(5, direction="either")))).result
        == "fail"
    )


def test_missing_intervals_are_left_out() -> None:
    metric = MetricSamples(
        name="5xx rate",
        canary=(0.5, None, 0.0),
        live=(0.0, 0.0, None),
        canary_counts=(10, 10, None),
        live_counts=(1000, None, 1000),
    )
    result = judge(AnalysisSamples(metrics=(metric,))).metrics[0]
    assert (result.canary_count, result.live_count, result.canary_samples) == (10, 1000, 1)
    assert result.canary == 0.5


def test_no_errors_on_either_side_passes() -> None:
    metric = MetricSamples(
        name="5xx rate", canary=(0.0,) * 5, live=(0.0,) * 5, canary_counts=(300,) * 5, live_counts=(5700,) * 5
    )
    verdict = judge(AnalysisSamples(metrics=(metric,)))
    assert verdict.result == "pass"
    assert verdict.metrics[0].effect is None  # live's rate is 0: no relative change


def test_a_non_critical_failure_only_lowers_the_score_when_the_policy_allows() -> None:
    rng = random.Random(9)
    metrics = (errors(rng, 0.01, critical=True), latency(rng, 1.4), latency(rng, 1.0, name="p99"))
    strict = judge(AnalysisSamples(metrics=metrics))
    lenient = judge(AnalysisSamples(metrics=metrics, pass_score=60))
    assert strict.result == "fail" and strict.score == 67
    assert lenient.result == "pass" and lenient.score == 67
    assert any("latency" in r and "worse" in r for r in lenient.reasons)


def test_holm_keeps_the_false_failure_rate_of_a_whole_analysis_at_five_percent() -> None:
    # Given 400 seeded A/A analyses of five metrics each
    rng = random.Random(10)
    failed = 0
    for _ in range(400):
        metrics = (
            errors(rng, 0.01, name="5xx"),
            errors(rng, 0.05, live_rate=0.05, name="4xx", direction="either"),
            latency(rng, 1.0, name="p50"),
            latency(rng, 1.0, name="p99", direction="either"),
            errors(rng, 0.97, live_rate=0.97, name="payments", direction="decrease"),
        )
        failed += judge(AnalysisSamples(metrics=metrics)).result == "fail"
    # Then at most 5% fail (plus two binomial standard deviations of 400 draws: 2.2 points)
    assert failed / 400 <= 0.072


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ({"name": "x", "canary": [0.1], "live": [0.1], "canary_counts": [10]}, "give both"),
        (
            {"name": "x", "canary": [0.1], "live": [0.1], "canary_counts": [10, 1], "live_counts": [1]},
            "intervals",
        ),
        ({"name": "x", "canary": [2.0], "live": [0.1], "canary_counts": [10], "live_counts": [10]}, "0 to 1"),
        (
            {"name": "x", "canary": [0.1], "live": [0.1], "canary_counts": [-1], "live_counts": [1]},
            "negative",
        ),
        ({"name": "x", "canary": [float("inf")], "live": [0.1]}, "finite"),
        ({"name": "x", "canary": [0.1], "live": [0.1], "direction": "up"}, "direction"),
        ({"name": "x", "canary": [0.1], "live": [0.1], "colour": "red"}, "colour"),
    ],
)
def test_bad_samples_are_refused_with_a_reason(metric: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AnalysisSamples.model_validate({"metrics": [metric]})


def test_metric_names_are_unique() -> None:
    metric = {"name": "x", "canary": [0.1], "live": [0.1]}
    with pytest.raises(ValidationError, match="unique: x"):
        AnalysisSamples.model_validate({"metrics": [metric, metric]})


@settings(max_examples=150, deadline=None)
@given(
    live_errors=st.integers(0, 60),
    canary_errors=st.integers(0, 30),
    extra=st.integers(1, 30),
    # At least 4 intervals: with 3, latency is inconclusive (its test could not fail at 0.025).
    latencies=st.lists(st.floats(0.05, 0.2), min_size=4, max_size=12),
    slower=st.floats(0.0, 0.5),
)
def test_a_worse_canary_is_never_judged_better(
    live_errors: int, canary_errors: int, extra: int, latencies: list[float], slower: float
) -> None:
    # Given an analysis, and the same one with more canary errors and a slower canary
    def analysis(errors: int, factor: float) -> AnalysisSamples:
        rate = MetricSamples(
            name="5xx rate",
            canary=(errors / 600,),
            live=(live_errors / 5700,),
            canary_counts=(600,),
            live_counts=(5700,),
        )
        slow = MetricSamples(
            name="latency", canary=tuple(v * factor for v in latencies), live=tuple(latencies)
        )
        return AnalysisSamples(metrics=(rate, slow))

    better, worse = judge(analysis(canary_errors, 1.0)), judge(analysis(canary_errors + extra, 1.0 + slower))
    # Then each metric's p-value does not rise, and a failing analysis stays failing
    for b, w in zip(better.metrics, worse.metrics, strict=True):
        assert b.p_value is not None and w.p_value is not None
        assert w.p_value <= b.p_value + 1e-12
    assert better.result != "fail" or worse.result == "fail"
