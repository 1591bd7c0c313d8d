"""Figure 7: the canary judge on seeded synthetic analyses whose truth is known.

The service: 6,000 requests a minute, 5% to the canary, a 10-minute bake, 1% 5xx and 80 ms
latency on live. The analysis window is the bake less the load balancer's metrics delay
(``AnalysisSpec.metrics_delay_seconds``, 120 s): 8 complete minutes, as the platform reads them.

Each minute:
- the load varies by a common factor (lognormal, sd 10%) that both sides share: requests are
  Poisson around 6,000 x that factor, split by the 5% share (binomial);
- errors are binomial per request at the side's rate, which drifts with the load (rate x
  factor^0.5), as error rates do under load;
- the minute's average latency is the side's latency x the load factor^0.5 x the noise of an
  average of that minute's requests (lognormal requests, sigma 0.5: a coefficient of variation
  of 0.53 per request).

Measured, for canaryfleet's judge (the platform's default metrics: the 5xx rate on request
counts and latency on ranks, both critical) and for today's judge (``logic/canary.py``'s
``judge`` with the default ``AnalysisSpec`` limits, on the window's totals), on the same analyses:
the A/A false-failure rate (goal <= 5%), the detection of a canary with twice live's error rate
and of one with 25% more latency (goal >= 95% each), and how often a canary with too little
traffic (60 requests a minute in all: 24 canary requests in the window) passes (goal: never).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from canaryfleet.logic.analysis.judge import judge as new_judge
from canaryfleet.models.analysis import AnalysisSamples, MetricSamples
from canaryfleet.models.policy import AnalysisSpec

from bench.baselines.fixed_limits_judge import judge as todays_judge
from bench.profiles import Profile
from bench.results import Goal, Measure, at_most, measure

FIGURE = 7
REQUESTS_PER_MINUTE = 6_000
CANARY_SHARE = 0.05
BAKE_MINUTES = 10
DELAY_MINUTES = 2
ERROR_RATE = 0.01
LATENCY_SECONDS = 0.08
LOAD_SD = 0.10
REQUEST_LATENCY_SIGMA = 0.5
TOO_LITTLE_PER_MINUTE = 60
SEED = 20261202


def at_least(limit: float) -> Goal:
    return Goal(f">= {limit:g}", lambda value, _ratio: value >= limit)


@dataclass(frozen=True)
class Truth:
    name: str
    error_factor: float = 1.0
    latency_factor: float = 1.0
    requests_per_minute: int = REQUESTS_PER_MINUTE


@dataclass(frozen=True)
class Window:
    """One analysis window's per-minute samples of both sides."""

    requests: tuple[list[float], list[float]]  # canary, live
    errors: tuple[list[float], list[float]]
    latency: tuple[list[float], list[float]]


def draw(rng: np.random.Generator, truth: Truth) -> Window:
    minutes = BAKE_MINUTES - DELAY_MINUTES
    requests: tuple[list[float], list[float]] = ([], [])
    errors: tuple[list[float], list[float]] = ([], [])
    latency: tuple[list[float], list[float]] = ([], [])
    cv = math.sqrt(math.exp(REQUEST_LATENCY_SIGMA**2) - 1)
    for _ in range(minutes):
        load = float(rng.lognormal(0.0, LOAD_SD))
        total = int(rng.poisson(truth.requests_per_minute * load))
        canary = int(rng.binomial(total, CANARY_SHARE))
        for side, (count, error_factor, latency_factor) in enumerate(
            ((canary, truth.error_factor, truth.latency_factor), (total - canary, 1.0, 1.0))
        ):
            rate = min(1.0, ERROR_RATE * error_factor * math.sqrt(load))
            requests[side].append(float(count))
            errors[side].append(float(rng.binomial(count, rate)))
            if count:
                noise = float(rng.lognormal(0.0, cv / math.sqrt(count)))
                latency[side].append(LATENCY_SECONDS * latency_factor * math.sqrt(load) * noise)
    return Window(requests, errors, latency)


def as_samples(window: Window, spec: AnalysisSpec) -> AnalysisSamples:
    """The platform's default metrics over the window, as the analyse step builds them."""
    (c_req, l_req), (c_err, l_err) = window.requests, window.errors
    return AnalysisSamples(
        metrics=(
            MetricSamples(
                name="5xx rate",
                critical=True,
                canary=tuple(e / r if r else None for e, r in zip(c_err, c_req, strict=True)),
                live=tuple(e / r if r else None for e, r in zip(l_err, l_req, strict=True)),
                canary_counts=tuple(c_req),
                live_counts=tuple(l_req),
                min_count=spec.min_requests,
            ),
            MetricSamples(
                name="latency", critical=True, canary=tuple(window.latency[0]), live=tuple(window.latency[1])
            ),
        )
    )


def todays_totals(window: Window) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """What today's analysis reads: the window's request and error sums and average latency."""

    def side(index: int) -> dict[str, float | None]:
        latencies = window.latency[index]
        return {
            "requests": sum(window.requests[index]),
            "errors": sum(window.errors[index]),
            "latency": sum(latencies) / len(latencies) if latencies else None,
        }

    return side(0), side(1)


def run_truth(truth: Truth, trials: int, seed: int) -> tuple[Counter[str], Counter[str]]:
    """Results of both judges over ``trials`` seeded analyses of one truth."""
    rng = np.random.default_rng(seed)
    spec = AnalysisSpec()
    new: Counter[str] = Counter()
    today: Counter[str] = Counter()
    for _ in range(trials):
        window = draw(rng, truth)
        new[new_judge(as_samples(window, spec)).result] += 1
        canary, live = todays_totals(window)
        today[todays_judge(spec, canary, live)[0]] += 1
    return new, today


def measure_analysis(profile: Profile) -> list[Measure]:
    trials = profile.analysis_trials
    truths: list[tuple[Truth, str, str, Callable[[float], Goal]]] = [
        (Truth("A/A"), "fail", "A/A false-failure rate (canary as good as live)", lambda _: at_most(0.05)),
        (Truth("2x errors", error_factor=2.0), "fail", "detection of 2x live's error rate", at_least),
        (Truth("1.25x latency", latency_factor=1.25), "fail", "detection of 25% more latency", at_least),
        (
            Truth("too little traffic", requests_per_minute=TOO_LITTLE_PER_MINUTE),
            "pass",
            f"pass rate with too little traffic ({TOO_LITTLE_PER_MINUTE} requests/min)",
            lambda _: at_most(0.0),
        ),
    ]
    measures = []
    for index, (truth, counted, name, goal) in enumerate(truths):
        started = time.perf_counter()
        new, today = run_truth(truth, trials, SEED + index)
        seconds = time.perf_counter() - started
        measures.append(
            measure(
                FIGURE,
                name,
                "share",
                new[counted] / trials,
                today[counted] / trials,
                "today's judge (fixed limits on the window's totals), same analyses",
                goal(0.95),
                {
                    "trials": trials,
                    "canaryfleet": dict(new),
                    "today": dict(today),
                    "seconds_both_judges": round(seconds, 2),
                    "window_minutes": BAKE_MINUTES - DELAY_MINUTES,
                },
            )
        )
    return measures
