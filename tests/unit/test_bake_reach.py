"""A bake too short for its analysis to fail a build is told when the rollout starts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from canaryfleet.logic.analysis.collect import intervals
from canaryfleet.logic.analysis.judge import judge, out_of_reach
from canaryfleet.logic.analysis.reach import bakes_too_short_to_judge, fewest_intervals
from canaryfleet.logic.canary import analysis_window
from canaryfleet.models.analysis import AnalysisSamples, MetricSamples
from canaryfleet.models.policy import AnalysisSpec, RolloutPolicy

# An application metric judged by rank whose change either way is bad (a payment amount).
EITHER = {
    "name": "basket size",
    "direction": "either",
    "value": {"metric": {"namespace": "Shop", "metric_name": "BasketSize", "stat": "Average"}},
}


def policy(seconds: int, *after: dict[str, Any], extensions: int = 1, **analysis: Any) -> RolloutPolicy:
    steps = [
        {"kind": "set_weight", "weight": 5},
        {"kind": "bake", "duration_seconds": seconds, "analysis": analysis},
    ]
    return RolloutPolicy.model_validate({"inconclusive_extensions": extensions, "steps": [*steps, *after]})


APPROVAL = {"kind": "approval"}


def test_the_shortest_bake_a_bundle_may_ask_for_is_told_with_the_bake_that_judges_latency() -> None:
    # Given the default analysis (the 5xx rate and latency, one-minute intervals, metrics 120 s late)
    notes = bakes_too_short_to_judge(policy(300, APPROVAL))

    assert notes == [
        "steps[1] bakes 300 s, so its analysis may have only 3 intervals of 60 s a side (the load "
        "balancer's metrics come 120 s late): too few for latency to fail at alpha 0.05 over 2 metrics, "
        "which needs 4 a side. Latency would then be inconclusive, and the bake extended once before it "
        "is judged. Bake at least 360 s to judge it at once."
    ]
    assert bakes_too_short_to_judge(policy(360, APPROVAL)) == []
    assert bakes_too_short_to_judge(policy(359, APPROVAL)) != []


def test_what_follows_an_inconclusive_verdict_is_what_the_state_machine_does() -> None:
    # Extended while the policy allows; then a person decides, or with nobody to ask it rolls back
    assert "a person decides without it" in bakes_too_short_to_judge(policy(300, APPROVAL, extensions=0))[0]
    assert "the rollout rolls back" in bakes_too_short_to_judge(policy(300, extensions=0))[0]
    # An either-way metric among 3 needs 5 intervals a side at 1 s (latency 4): 4 s leaves it
    # out alone, and 3 s both; an extension doubles the bake, and then both are judged
    four, three = (
        bakes_too_short_to_judge(
            policy(s, APPROVAL, interval_seconds=1, metrics_delay_seconds=0, metrics=[EITHER])
        )
        for s in (4, 3)
    )
    assert "only 4 intervals of 1 s a side: too few for basket size to fail" in four[0]
    assert (
        "which needs 5 a side. Basket size would then be inconclusive, and the bake extended once" in four[0]
    )
    assert "Bake at least 5 s" in four[0]
    assert "too few for basket size and latency to fail at alpha 0.05 over 3 metrics" in three[0]


def test_a_bake_without_analysis_says_nothing() -> None:
    unjudged = RolloutPolicy.model_validate(
        {
            "steps": [
                {"kind": "set_weight", "weight": 5},
                {"kind": "bake", "duration_seconds": 60, "analysis": None},
            ]
        }
    )

    assert bakes_too_short_to_judge(unjudged) == []


def test_fewer_intervals_than_latencys_own_minimum_is_told_too() -> None:
    # 600 s gives 8 intervals a side, and the policy asks for 10 before latency is judged
    notes = bakes_too_short_to_judge(policy(600, APPROVAL, min_intervals=10))

    assert "only 8 intervals of 60 s a side" in notes[0] and "which needs 10 a side" in notes[0]
    assert "Bake at least 720 s" in notes[0]


@pytest.mark.parametrize(("interval", "delay"), [(60, 120), (60, 300), (300, 120), (1, 0), (5, 0), (1, 120)])
def test_the_fewest_intervals_is_never_more_than_an_analysis_reads(interval: int, delay: int) -> None:
    # Whenever the bake starts and however late its analysis runs, the window it judges
    # (logic/canary.py) overlaps at least the fewest intervals told
    rng = random.Random(interval * 1000 + delay)
    spec = AnalysisSpec(interval_seconds=interval, metrics_delay_seconds=delay)
    for _ in range(2_000):
        seconds = rng.randint(1, 1_800)
        started = datetime(2026, 12, 6, 15, 0, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 3_600))
        analysed = started + timedelta(seconds=seconds + rng.choice([0, 0.2, rng.uniform(0, 90)]))
        start, end = analysis_window(started, analysed, delay, interval)
        assert len(intervals(start, end, interval)) >= fewest_intervals(seconds, spec), (seconds, started)


def test_the_bake_told_as_long_enough_lets_the_judge_fail_latency_and_one_second_less_may_not() -> None:
    # Given the real judge, a canary ten times slower than live, and as many intervals as the
    # told bake and one second less can be sure of
    spec = AnalysisSpec()
    told = 360
    judged = [_judge_latency(fewest_intervals(seconds, spec)) for seconds in (told, told - 1)]

    assert judged == ["fail", "inconclusive"]


def _judge_latency(intervals_a_side: int) -> str:
    slow = MetricSamples(name="latency", canary=(1.0,) * intervals_a_side, live=(0.1,) * intervals_a_side)
    errors = MetricSamples(
        name="5xx rate",
        canary=(0.0,) * intervals_a_side,
        live=(0.0,) * intervals_a_side,
        canary_counts=(100.0,) * intervals_a_side,
        live_counts=(1900.0,) * intervals_a_side,
    )
    verdict = judge(AnalysisSamples(metrics=(errors, slow)))
    return next(m.result for m in verdict.metrics if m.name == "latency")


def test_holms_family_leaves_out_what_cannot_reach_its_level_and_raises_the_others() -> None:
    # Two tests whose floors are 0.03 and 0.02 at alpha 0.05: 0.03 leaves the family of 2 (0.025),
    # and then the other is judged at 0.05; an untested one is in no family
    assert out_of_reach([0.03, 0.02, None], 0.05) == {0: 2}
    assert out_of_reach([0.06, 0.0], 0.05) == {0: 2}
    assert out_of_reach([0.0, 0.0], 0.05) == {}
