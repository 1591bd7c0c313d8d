"""Bakes too short for their analysis to fail a build, found when the rollout starts.

A rank test (the load balancer's latency, an application metric without ``requests``) cannot
give a p-value below 1 / C(2n, n) with n intervals a side, however far apart they are
(``stats.mann_whitney_floor``); the judge calls such a metric inconclusive, the bake is extended,
and the extension's analysis judges the whole bake (``logic/analysis/judge.py``). A policy whose
bake is that short costs every rollout an extension, or puts it before a person with no verdict
on the metric. The rollout says so when it starts, with the bake that would be long enough.

The fewest intervals a side an analysis can have: its window runs from the bake's start to the
last whole minute before the analysis's start less the metrics delay (``logic/canary.py``,
``analysis_window``), and each of its intervals is a period that overlaps it (``collect.py``,
``intervals``). With a delay, flooring the end to the minute loses under 60 s; without one (the
local cloud's metrics), the window ends when the analysis starts, after the bake.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from canaryfleet.logic.analysis import stats
from canaryfleet.logic.analysis.collect import definitions
from canaryfleet.logic.analysis.judge import out_of_reach
from canaryfleet.models.policy import AnalysisSpec, Approval, Bake, RolloutPolicy


@dataclass(frozen=True)
class _RankTest:
    name: str
    min_samples: int
    sides: stats.Alternative


def fewest_intervals(seconds: int, spec: AnalysisSpec) -> int:
    """The fewest intervals a side the analysis of a bake of ``seconds`` can read."""
    span = seconds - spec.metrics_delay_seconds - 59 if spec.metrics_delay_seconds else seconds
    return max(0, math.ceil(span / spec.interval_seconds))


def _shortest_bake(intervals: int, spec: AnalysisSpec) -> int:
    """The shortest bake whose analysis reads at least ``intervals`` a side (``fewest_intervals``)."""
    every = spec.interval_seconds
    if spec.metrics_delay_seconds:
        return (intervals - 1) * every + spec.metrics_delay_seconds + 60
    return (intervals - 1) * every + 1


def _unjudged(spec: AnalysisSpec, intervals: int) -> list[_RankTest]:
    """The rank-tested metrics the analysis cannot fail on ``intervals`` a side, however bad."""
    metrics = definitions(spec)
    ranked = {
        i: _RankTest(m.name, m.min_samples, "two-sided" if m.direction == "either" else "greater")
        for i, m in enumerate(metrics)
        if m.requests is None
    }
    floors: list[float | None] = [0.0] * len(metrics)  # a ratio test reaches any level (judge._floor)
    for i, test in ranked.items():
        enough = intervals >= test.min_samples
        floors[i] = stats.mann_whitney_floor(intervals, intervals, test.sides) if enough else None
    left = out_of_reach(floors, spec.alpha)
    return [test for i, test in ranked.items() if floors[i] is None or i in left]


def bakes_too_short_to_judge(policy: RolloutPolicy) -> list[str]:
    """A note for each bake whose analysis may be unable to fail one of its rank-tested metrics:
    how many intervals it may have, what then happens, and the bake that would be long enough."""
    notes: list[str] = []
    for index, step in enumerate(policy.steps):
        if not isinstance(step, Bake) or step.analysis is None:
            continue
        spec, seconds = step.analysis, step.duration_seconds
        intervals = fewest_intervals(seconds, spec)
        short = _unjudged(spec, intervals)
        if not short:
            continue
        family = len(definitions(spec))
        need = max(max(t.min_samples, stats.mann_whitney_needs(spec.alpha / family, t.sides)) for t in short)
        names = " and ".join(sorted({t.name for t in short}))
        delay = spec.metrics_delay_seconds
        late = f" (the load balancer's metrics come {delay} s late)" if delay else ""
        notes.append(
            f"steps[{index}] bakes {seconds} s, so its analysis may have only "
            f"{_count(intervals, 'interval')} of {spec.interval_seconds} s a side{late}: too few for "
            f"{names} to fail at alpha {spec.alpha:g} over {_count(family, 'metric')}, which needs "
            f"{need} a side. "
            f"{names[0].upper()}{names[1:]} {_then(policy, index, seconds, spec)} "
            f"Bake at least {_shortest_bake(need, spec)} s to judge it at once."
        )
    return notes


def _then(policy: RolloutPolicy, index: int, seconds: int, spec: AnalysisSpec) -> str:
    """What the state machine does with the inconclusive verdict (rollout.asl.yaml, "Judge the
    verdict"): extend the bake while the policy allows, then ask a person or roll back."""
    extended = next(
        (
            k
            for k in range(1, policy.inconclusive_extensions + 1)
            if not _unjudged(spec, fewest_intervals(seconds * (k + 1), spec))
        ),
        None,
    )
    if extended is not None:
        times = {1: "once", 2: "twice"}.get(extended, f"{extended} times")
        return f"would then be inconclusive, and the bake extended {times} before it is judged."
    if any(isinstance(later, Approval) for later in policy.steps[index + 1 :]):
        return "would then stay inconclusive after the policy's extensions, and a person decides without it."
    return (
        "would then stay inconclusive after the policy's extensions and, with no approval step after "
        "the bake, the rollout rolls back."
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
