"""The canary judge: each metric tested as its kind needs, the false-failure rate held over all.

- A **ratio** metric (errors per request, payments that succeed) is judged on its request
  counts: given the events of both sides together, the canary's share of them is binomial
  under the null hypothesis that both sides have the same rate (the conditional test of two
  Poisson rates; Lehmann and Romano, Testing Statistical Hypotheses, 4.5). It is exact at any
  count, and at a 5% canary share it uses every request rather than a few per-minute rates.
  The rarer outcome is counted (the misses of a success rate), where the Poisson model holds.
- A **continuous** metric (latency) is judged on its per-interval values with the
  Mann-Whitney U test (ties corrected), and its effect is the Hodges-Lehmann shift with
  Moses's interval, relative to live's median.
- Every test is one-sided in the bad direction (both sides, Bonferroni-halved, for "either"),
  against a null hypothesis that allows the metric's ``tolerance``. Holm's step-down procedure
  over the metrics that were tested keeps the chance that a canary as good as live fails at
  or below ``alpha`` (the family-wise error rate); intervals are simultaneous (Bonferroni).
- Too little data for a metric (``min_samples`` intervals, ``min_count`` requests) makes it
  inconclusive, never a pass. So do too few intervals for a rank test to fail at the level
  Holm gives it: with three intervals a side its p-value cannot go below 1/20, above the 0.025
  each of two metrics needs at an ``alpha`` of 0.05, so a canary ten times slower than live
  would otherwise pass.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from canaryfleet.logic.analysis import stats
from canaryfleet.models.analysis import (
    AnalysisSamples,
    AnalysisVerdict,
    MetricResult,
    MetricSamples,
    MetricVerdict,
)


@dataclass(frozen=True)
class _Tested:
    """What the first pass knows of a metric: its test, or why it was not tested."""

    metric: MetricSamples
    p_value: float | None
    canary: float | None
    live: float | None
    canary_samples: int
    live_samples: int
    canary_count: float | None = None
    live_count: float | None = None
    test: str = ""
    why_not: str = ""


def _ratio_totals(values: tuple[float | None, ...], counts: tuple[float | None, ...]) -> tuple[int, int, int]:
    """Events, requests (both rounded to whole ones) and intervals with data."""
    rows = [(v, c) for v, c in zip(values, counts, strict=True) if v is not None and c is not None]
    requests = round(sum(c for _, c in rows))
    events = min(requests, round(sum(v * c for v, c in rows)))
    return events, requests, len(rows)


def _one_sided(direction: str, up: float, down: float) -> float:
    """The p-value for the bad direction; for "either", both sides Bonferroni-halved."""
    if direction == "increase":
        return up
    if direction == "decrease":
        return down
    return min(1.0, 2 * min(up, down))


def _test_ratio(metric: MetricSamples) -> _Tested:
    assert metric.canary_counts is not None and metric.live_counts is not None
    k_c, n_c, s_c = _ratio_totals(metric.canary, metric.canary_counts)
    k_l, n_l, s_l = _ratio_totals(metric.live, metric.live_counts)
    canary = k_c / n_c if n_c else None
    live = k_l / n_l if n_l else None
    base = _Tested(
        metric, None, canary, live, s_c, s_l, float(n_c), float(n_l), "exact rate ratio (binomial)"
    )
    if n_c < max(metric.min_count, 1):
        return _replace(
            base, why_not=f"only {n_c} canary requests, fewer than {max(metric.min_count, 1):.0f}"
        )
    if n_l == 0:
        return _replace(base, why_not="no live request to compare with")
    x, total, direction, _ = _rarer(metric, k_c, n_c, k_l, n_l)
    if total == 0:
        return _replace(base, p_value=1.0)
    tol = metric.tolerance
    up = stats.binom_test(x, total, _share(n_c, n_l, 1 + tol), "greater")
    down = stats.binom_test(x, total, _share(n_c, n_l, 1 - tol), "less")
    return _replace(base, p_value=_one_sided(direction, up, down))


def _rarer(metric: MetricSamples, k_c: int, n_c: int, k_l: int, n_l: int) -> tuple[int, int, str, bool]:
    """The canary's events of the rarer outcome, both sides' together, the bad direction for it,
    and whether that outcome is the complement of the metric's."""
    if (k_c + k_l) * 2 <= n_c + n_l:
        return k_c, k_c + k_l, metric.direction, False
    flipped = {"increase": "decrease", "decrease": "increase", "either": "either"}[metric.direction]
    return n_c - k_c, (n_c - k_c) + (n_l - k_l), flipped, True


def _share(n_c: int, n_l: int, ratio: float) -> float:
    """The canary's expected share of all events when its rate is ``ratio`` times live's."""
    return n_c * ratio / (n_c * ratio + n_l)


def _test_continuous(metric: MetricSamples) -> _Tested:
    canary = [v for v in metric.canary if v is not None]
    live = [v for v in metric.live if v is not None]
    base = _Tested(
        metric,
        None,
        stats.median(canary) if canary else None,
        stats.median(live) if live else None,
        len(canary),
        len(live),
        test="Mann-Whitney U",
    )
    if min(len(canary), len(live)) < metric.min_samples:
        return _replace(
            base,
            why_not=f"{len(canary)} canary and {len(live)} live intervals with data, "
            f"fewer than {metric.min_samples}",
        )
    tol = metric.tolerance
    # Live's values moved by the tolerance in the direction it forgives, for negative values too
    # (CloudWatch takes values from -2^360 to 2^360, and a metric-math difference can be below
    # zero): v * (1 + tol) would move a negative value the other way, a stricter test.
    up = stats.mann_whitney_u(canary, [v + tol * abs(v) for v in live], "greater")
    down = stats.mann_whitney_u(canary, [v - tol * abs(v) for v in live], "less")
    test = f"Mann-Whitney U ({up.method})"
    return _replace(base, p_value=_one_sided(metric.direction, up.p_value, down.p_value), test=test)


def _floor(t: _Tested) -> float:
    """The smallest p-value the metric's test could give with its data (0: no such limit).

    A ratio metric's exact test reaches any level once the canary has enough events of the
    rarer kind, and more of them is what a worse canary has; a rank test's floor is set by the
    number of intervals alone, however far apart they are.
    """
    if t.metric.is_ratio or t.p_value is None:
        return 0.0
    return stats.mann_whitney_floor(t.canary_samples, t.live_samples, _sides(t))


def _sides(t: _Tested) -> stats.Alternative:
    return "two-sided" if t.metric.direction == "either" else "greater"


def out_of_reach(floors: Sequence[float | None], alpha: float) -> dict[int, int]:
    """The tests that cannot fail at the level Holm's family gives them, each with the size of
    the family it left; ``floors[i]`` is test i's smallest possible p-value (0: no such limit,
    None: not tested, so not in the family). Holm's strictest level is alpha over the family's
    size: a test that cannot reach it leaves the family, which raises the level for the rest,
    until none leaves."""
    family = [i for i, floor in enumerate(floors) if floor is not None]
    left: dict[int, int] = {}
    while family:
        level = alpha / len(family)
        short = [i for i in family if (floors[i] or 0.0) > level]
        if not short:
            break
        left.update(dict.fromkeys(short, len(family)))
        family = [i for i in family if i not in left]
    return left


def _within_reach(tested: list[_Tested], alpha: float) -> list[_Tested]:
    """The metrics whose test could fail at the level Holm's family gives it; the others are
    inconclusive (``out_of_reach``)."""
    left = out_of_reach([_floor(t) if t.p_value is not None else None for t in tested], alpha)
    return [
        _replace(t, p_value=None, why_not=_too_few(t, alpha, left[i])) if i in left else t
        for i, t in enumerate(tested)
    ]


def _too_few(t: _Tested, alpha: float, family: int) -> str:
    level = alpha / family
    need = stats.mann_whitney_needs(level, _sides(t))
    each = f"the {level:.2g} each of {family} metrics needs" if family > 1 else f"alpha {alpha:g}"
    return (
        f"{t.canary_samples} canary and {t.live_samples} live intervals with data: however far apart, "
        f"the rank test's p-value cannot go below {_floor(t):.2g}, above {each}; "
        f"bake for at least {need} intervals a side"
    )


def _replace(tested: _Tested, **changes: object) -> _Tested:
    return dataclasses.replace(tested, **changes)  # type: ignore[arg-type]


def _ratio_effect(t: _Tested, confidence: float) -> tuple[float | None, float | None, float | None]:
    """Relative change of the metric's rate, and its interval (from the rarer outcome's rate ratio)."""
    metric = t.metric
    assert metric.canary_counts is not None and metric.live_counts is not None
    k_c, n_c, _ = _ratio_totals(metric.canary, metric.canary_counts)
    k_l, n_l, _ = _ratio_totals(metric.live, metric.live_counts)
    if not n_c or not n_l:
        return None, None, None
    x, total, _, complement = _rarer(metric, k_c, n_c, k_l, n_l)
    low_p, high_p = stats.clopper_pearson(x, total, confidence) if total else (0.0, 1.0)

    def ratio(p: float) -> float | None:
        return None if p >= 1 else p / (1 - p) * n_l / n_c

    r_low, r_high = ratio(low_p), ratio(high_p)
    live_rate = k_l / n_l
    point = (k_c / n_c) / live_rate - 1 if live_rate else None
    if not complement:
        return point, (r_low - 1 if r_low is not None else None), (r_high - 1 if r_high is not None else None)
    # The metric is 1 - m for the miss rate m: canary's is 1 - m_live * R, a relative change of
    # -m_live (R - 1) / (1 - m_live), which falls as R rises.
    miss = 1 - live_rate

    def change(r: float | None) -> float | None:
        return None if r is None else -miss * (r - 1) / (1 - miss)

    return point, change(r_high), change(r_low)


def _continuous_effect(t: _Tested, confidence: float) -> tuple[float | None, float | None, float | None]:
    canary = [v for v in t.metric.canary if v is not None]
    live = [v for v in t.metric.live if v is not None]
    centre = stats.median(live)
    if centre == 0:
        return None, None, None
    shift, low, high = stats.hodges_lehmann(canary, live, confidence)
    scale = abs(centre)
    return (
        shift / scale,
        (low / scale if low is not None else None),
        (high / scale if high is not None else None),
    )


def judge(analysis: AnalysisSamples) -> AnalysisVerdict:
    """The verdict of one analysis: each metric tested, Holm over all, then the overall result."""
    tested = _within_reach(
        [_test_ratio(m) if m.is_ratio else _test_continuous(m) for m in analysis.metrics], analysis.alpha
    )
    p_values = [t.p_value for t in tested if t.p_value is not None]
    adjusted = iter(stats.holm(p_values))
    family = max(1, len(p_values))
    confidence = 1 - analysis.alpha / family
    verdicts: list[MetricVerdict] = []
    for t in tested:
        p_adjusted = next(adjusted) if t.p_value is not None else None
        if t.p_value is None or p_adjusted is None:
            result: MetricResult = "inconclusive"
            effect: tuple[float | None, float | None, float | None] = (None, None, None)
        else:
            result = "fail" if p_adjusted <= analysis.alpha else "pass"
            effect = _ratio_effect(t, confidence) if t.metric.is_ratio else _continuous_effect(t, confidence)
        verdicts.append(
            MetricVerdict(
                name=t.metric.name,
                result=result,
                kind="ratio" if t.metric.is_ratio else "continuous",
                direction=t.metric.direction,
                critical=t.metric.critical,
                canary=t.canary,
                live=t.live,
                effect=effect[0],
                effect_low=effect[1],
                effect_high=effect[2],
                confidence=confidence,
                p_value=t.p_value,
                p_adjusted=p_adjusted,
                test=t.test,
                canary_samples=t.canary_samples,
                live_samples=t.live_samples,
                canary_count=t.canary_count,
                live_count=t.live_count,
                reason=_reason(t, result, effect, p_adjusted, analysis.alpha),
            )
        )
    return _overall(analysis, verdicts)


def _overall(analysis: AnalysisSamples, verdicts: list[MetricVerdict]) -> AnalysisVerdict:
    judged = [v for v in verdicts if v.result != "inconclusive"]
    passed = sum(v.result == "pass" for v in judged)
    score = round(100 * passed / len(judged)) if judged else 0
    failed = [v for v in verdicts if v.result == "fail"]
    critical = [v for v in failed if v.critical]
    inconclusive = [v for v in verdicts if v.result == "inconclusive"]
    if critical or (failed and score < analysis.pass_score):
        result: MetricResult = "fail"
        reasons = [v.reason for v in (critical or failed)]
        if not critical:
            reasons.append(f"score {score} is below {analysis.pass_score}")
    elif inconclusive:
        result, reasons = "inconclusive", [v.reason for v in inconclusive]
    else:
        result = "pass"
        reasons = [f"{len(verdicts)} metric(s) no worse than live (false-failure rate {analysis.alpha:.0%})"]
        reasons += [v.reason for v in failed]
    return AnalysisVerdict(
        result=result, score=score, alpha=analysis.alpha, metrics=tuple(verdicts), reasons=tuple(reasons)
    )


def _number(value: float | None, ratio: bool) -> str:
    if value is None:
        return "no data"
    return f"{value:.2%}" if ratio else f"{value:.4g}"


def _percent(value: float | None) -> str:
    return "unbounded" if value is None or not math.isfinite(value) else f"{value:+.1%}"


def _reason(
    t: _Tested,
    result: MetricResult,
    effect: tuple[float | None, float | None, float | None],
    p_adjusted: float | None,
    alpha: float,
) -> str:
    name = t.metric.name
    if result == "inconclusive":
        return f"{name}: inconclusive: {t.why_not}"
    ratio = t.metric.is_ratio
    values = f"canary {_number(t.canary, ratio)} against live {_number(t.live, ratio)}"
    change = (
        ""
        if effect[0] is None
        else f" ({_percent(effect[0])}, {_percent(effect[1])} to {_percent(effect[2])})"
    )
    if result == "fail":
        return f"{name}: {values}{change} is worse (adjusted p = {p_adjusted:.2g} <= {alpha:g})"
    return f"{name}: {values}{change}, no worse than live (adjusted p = {p_adjusted:.2g})"
