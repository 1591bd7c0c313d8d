"""Critical metrics that end a bake at once: one CloudWatch metric-math alarm per critical metric.

When a bake starts, each critical metric of its analysis gets an alarm that compares the canary
with live period by period, named ``canaryfleet-<application>.<metric>`` (application names
hold no dot, so the name says whose it is, and the fleet's own alarms, ``<application>-...``,
never match it). Its state change reaches the alarm rule like a fleet alarm's and fails the
bake's task token: the bake stays a callback. The analysis at the bake's end stays the judge of
smaller changes; these alarms catch a canary that is plainly worse while it still takes traffic.

- **Ratio metrics** (events over requests): the two-proportion z-score of the rarer outcome
  (errors; a success rate's misses) with the pooled rate,
  ``(c/cr - k*l/lr) / (p*(1-p)*(1/cr + 1/lr)) ^ 0.5``, ``k`` = 1 + tolerance, in ALARM above
  :data:`Z_THRESHOLD` in :data:`RATIO_PERIODS` periods running. A period where either side has
  fewer than :data:`MIN_PERIOD_REQUESTS` requests, or where the canary had fewer than
  :data:`MIN_PERIOD_EVENTS` outcomes of the rarer kind, scores 0 (the normal approximation needs
  counts). Where it holds, one look crosses z = 4 with probability 3.2e-5 (one-sided); a bake
  looked at every minute for an hour adds at most 60 x 3.2e-5 = 0.2% to the false-failure rate
  (union bound), well under 1%.
- **Continuous metrics** (a latency): the canary's value over live's in the bad direction, in
  ALARM above ``1 +`` :data:`CONTINUOUS_MARGIN` (twice live's) in :data:`CONTINUOUS_PERIODS`
  periods running. Five per-period values carry no 4-sigma test without a model of their spread
  (a sign test's bound is only 2^-5), so the margin does the work: two groups running the same
  build behind one load balancer do not differ twofold for five periods running, and smaller
  shifts are left to the analysis's rank test.

Limits (PutMetricAlarm,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html and
MetricDataQuery): at most 10 ``MetricStat`` and 10 ``Expression`` queries in ``Metrics``, exactly
one with ``ReturnData`` true; ``Period`` 10, 20, 30 or a multiple of 60; ``DatapointsToAlarm`` at
most ``EvaluationPeriods``; ``EvaluationPeriods`` x ``Period`` at most 86,400 seconds; query ids
start with a lower-case letter. A metric whose queries do not fit gets no alarm (logged); the
analysis still judges it. The expressions use only arithmetic (``^`` for the square root:
metric math has no square root function), comparisons, ``AND``, ``ABS``, ``IF`` and ``FILL``
(metric math's syntax and functions,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html).
"""

from __future__ import annotations

import re
from typing import Any

from canaryfleet.logic.analysis.collect import ANSWERED, definitions, five_xx_index, placeholders
from canaryfleet.models.analysis import MetricDefinition, MetricQuery, MetricStatQuery
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.fail_fast import CriticalAlarm, alarm_prefix
from canaryfleet.models.policy import AnalysisSpec

Z_THRESHOLD = 4.0
RATIO_PERIODS = 2
MIN_PERIOD_REQUESTS = 100
# Outcomes of the rarer kind the canary must have had in a period (with live's too, for a metric
# watched in either direction) before its z-score counts: the normal approximation fails at
# counts this small. Without it, one canary 5xx in a minute where live had none scored
# sqrt(live requests / canary requests), 4.36 at a 5% canary whatever the traffic, where an exact
# test gives that minute p = 0.05: a good canary's hour-long bake was rolled back 1.6 to 1.9% of
# the time (24 hours: about a third). With five, a good canary at 0.01 to 0.03% errors has five in
# a minute with probability under 1e-7, and a plainly worse one (30 errors against live's none)
# still scores far above 4.
MIN_PERIOD_EVENTS = 5
CONTINUOUS_MARGIN = 1.0
CONTINUOUS_PERIODS = 5
# PutMetricAlarm's Period: 10, 20 and 30 (high-resolution metrics) or a multiple of 60.
_SHORT_ALARM_PERIODS = (10, 20, 30)
_MAX_METRIC_STATS = 10
_MAX_EXPRESSIONS = 10


def alarm_period(interval_seconds: int) -> int:
    """The shortest alarm period CloudWatch takes that is at least the analysis's interval."""
    for period in _SHORT_ALARM_PERIODS:
        if interval_seconds <= period:
            return period
    return 60 * -(-interval_seconds // 60)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "metric"


def alarm_names(metrics: list[MetricDefinition], application: str) -> dict[str, str]:
    """Each critical metric's alarm name, by metric name; a slug shared by two metrics gets a number."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for metric in metrics:
        if not metric.critical:
            continue
        slug, n = _slug(metric.name), 1
        candidate = slug
        while candidate in taken:
            n += 1
            candidate = f"{slug}-{n}"
        taken.add(candidate)
        names[metric.name] = alarm_prefix(application) + candidate
    return names


class _Queries:
    """The Metrics array being built, with its counts of each kind."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.items: list[dict[str, Any]] = []

    def stat(self, qid: str, metric: MetricStatQuery) -> None:
        self.items.append({"Id": qid, "MetricStat": metric.metric_stat(self.period), "ReturnData": False})

    def query(self, qid: str, query: MetricQuery, filled: dict[str, str]) -> None:
        inputs, expression = query.expanded(qid)
        for inner, metric in inputs:
            self.stat(inner, metric.rendered(filled))
        if expression is not None:
            self.expression(qid, expression)

    def expression(self, qid: str, text: str, returned: bool = False) -> None:
        self.items.append({"Id": qid, "Expression": text, "ReturnData": returned})

    def fits(self) -> bool:
        stats = sum(1 for q in self.items if "MetricStat" in q)
        return stats <= _MAX_METRIC_STATS and len(self.items) - stats <= _MAX_EXPRESSIONS


def _ratio(
    metric: MetricDefinition,
    queries: _Queries,
    sides: dict[str, dict[str, str]],
    answered: tuple[MetricQuery, ...] = (),
) -> str:
    """Adds the ratio alarm's queries; the z-score's id. ``answered``: the requests the targets
    answered 2xx to 4xx, whose complement counts the 5xx rate's failed requests as the analysis
    counts them (collect.failed_requests), the load balancer's own 502s and 504s with them."""
    assert metric.requests is not None
    for side, filled in sides.items():
        queries.query(f"{side}e", metric.value, filled)
        queries.query(f"{side}r", metric.requests, filled)
        # The load balancer sends no 5xx datapoint for a minute with none: no events, not no data.
        events = f"FILL({side}e, 0)"
        if answered:
            for kind, query in enumerate(answered):
                queries.query(f"{side}a{kind}", query, filled)
            unanswered = " - ".join(
                [f"{side}r", *(f"FILL({side}a{kind}, 0)" for kind in range(len(answered)))]
            )
            queries.expression(f"{side}u", unanswered)
            events = f"IF({side}u > {events}, {side}u, {events})"
        rare = events if metric.direction == "increase" else f"({side}r - {events})"
        if metric.direction == "either":
            rare = events
        queries.expression(f"{side}b", rare)
    queries.expression("p", "(cb + lb) / (cr + lr)")
    k = f"{1 + metric.tolerance:g}"
    if metric.direction == "either":
        difference = f"(ABS(cb / cr - lb / lr) - {metric.tolerance:g} * lb / lr)"
    else:
        difference = f"(cb / cr - {k} * lb / lr)"
    seen = "cb + lb" if metric.direction == "either" else "cb"
    guard = (
        f"cr >= {MIN_PERIOD_REQUESTS} AND lr >= {MIN_PERIOD_REQUESTS} AND p > 0 AND p < 1"
        f" AND {seen} >= {MIN_PERIOD_EVENTS}"
    )
    queries.expression("z", f"IF({guard}, {difference} / (p * (1 - p) * (1 / cr + 1 / lr)) ^ 0.5, 0)", True)
    return "z"


def _continuous(metric: MetricDefinition, queries: _Queries, sides: dict[str, dict[str, str]]) -> str:
    """Adds the continuous alarm's queries; the ratio's id."""
    for side, filled in sides.items():
        queries.query(f"{side}v", metric.value, filled)
    ratio = {
        "increase": "cv / lv",
        "decrease": "lv / cv",
        "either": "IF(cv > lv, cv / lv, lv / cv)",
    }[metric.direction]
    queries.expression("ratio", f"IF(cv > 0 AND lv > 0, {ratio}, 0)", True)
    return "ratio"


def critical_alarms(app: AppConfig, spec: AnalysisSpec) -> tuple[list[CriticalAlarm], list[str]]:
    """The alarms for the spec's critical metrics, and the names of critical metrics left without one."""
    wanted = definitions(spec)
    names = alarm_names(wanted, app.application)
    sides = {"c": placeholders(app, "canary", app.canary), "l": placeholders(app, "live", app.live)}
    period = alarm_period(spec.interval_seconds)
    alarms: list[CriticalAlarm] = []
    skipped: list[str] = []
    five_xx = five_xx_index(spec)
    for index, metric in enumerate(wanted):
        if not metric.critical:
            continue
        queries = _Queries(period)
        if metric.requests is not None:
            _ratio(metric, queries, sides, ANSWERED if index == five_xx else ())
            threshold, periods = Z_THRESHOLD, RATIO_PERIODS
        else:
            _continuous(metric, queries, sides)
            threshold, periods = 1 + CONTINUOUS_MARGIN, CONTINUOUS_PERIODS
        if not queries.fits() or periods * period > 86_400:
            skipped.append(metric.name)
            continue
        alarms.append(
            CriticalAlarm(
                name=names[metric.name],
                metric=metric.name,
                metrics=tuple(queries.items),
                threshold=threshold,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                period_seconds=period,
            )
        )
    return alarms, skipped
