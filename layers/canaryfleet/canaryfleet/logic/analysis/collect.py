"""What an analysis judges: per-interval samples of each metric on the canary and on live.

The load balancer's metrics (the 5xx rate on request counts, the target response time) and the
policy's own metrics are read for each side with its dimensions filled in, one GetMetricData
series per query, over every interval that overlaps the window. The window ends at a whole
interval on AWS (``analysis_window`` waits out the metrics delay); its first interval may hold up
to one interval of traffic from just before the bake, after the traffic shift that precedes it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from canaryfleet.models.analysis import (
    MAX_INTERVALS,
    AnalysisSamples,
    MetricDefinition,
    MetricQuery,
    MetricSamples,
    MetricStatQuery,
    failed_requests,
)
from canaryfleet.models.app_config import (
    AppConfig,
    FleetGroup,
    load_balancer_dimension,
    target_group_dimension,
)
from canaryfleet.models.policy import AnalysisSpec
from canaryfleet.ports.fleet import FleetMetrics

ALB = "AWS/ApplicationELB"
_ALB_DIMENSIONS = {"LoadBalancer": "{load_balancer}", "TargetGroup": "{target_group}"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def placeholders(app: AppConfig, side: str, group: FleetGroup) -> dict[str, str]:
    return {
        "application": app.application,
        "side": side,
        "target_group": target_group_dimension(group.target_group_arn),
        "load_balancer": load_balancer_dimension(app.listener_rule_arn),
        "auto_scaling_group": group.auto_scaling_group,
    }


def _alb(metric_name: str, stat: str) -> MetricQuery:
    return MetricQuery(
        metric=MetricStatQuery(namespace=ALB, metric_name=metric_name, dimensions=_ALB_DIMENSIONS, stat=stat)
    )


# The load balancer answers some of a target group's requests itself: 502 for a connection the
# target refused, reset or closed mid-request, 504 for a response that never came. Those answers
# are in no metric of the group's: HTTPCode_Target_* "does not include any response codes generated
# by the load balancer", HTTPCode_ELB_* has no TargetGroup dimension, TargetConnectionErrorCount
# counts only connections that failed to open, and TargetResponseTime only responses that began.
# The group's RequestCount counts them all ("only incremented for requests where the load balancer
# node was able to choose a target"; ELB User Guide, CloudWatch metrics for your Application Load
# Balancer). So a side's failed requests are its requests less those its targets answered 2xx, 3xx
# or 4xx: a canary that crashes or hangs mid-request would otherwise read as healthy as live.
ANSWERED = tuple(_alb(f"HTTPCode_Target_{kind}XX_Count", "Sum") for kind in (2, 3, 4))


def five_xx_index(spec: AnalysisSpec) -> int | None:
    """Where ``definitions`` puts the built-in 5xx rate (the load balancer's metrics come first, in
    the spec's order), whose failed requests ANSWERED counts; None if the spec has none."""
    return spec.alb_metrics.index("5xx_rate") if "5xx_rate" in spec.alb_metrics else None


def definitions(spec: AnalysisSpec) -> list[MetricDefinition]:
    """The load balancer's metrics the spec asks for (both critical), then the application's own."""
    builtin = {
        "5xx_rate": MetricDefinition(
            name="5xx rate",
            value=_alb("HTTPCode_Target_5XX_Count", "Sum"),
            requests=_alb("RequestCount", "Sum"),
            critical=True,
            min_count=spec.min_requests,
        ),
        "latency": MetricDefinition(
            name="latency",
            value=_alb("TargetResponseTime", "Average"),
            critical=True,
            min_samples=spec.min_intervals,
        ),
    }
    return [builtin[name] for name in spec.alb_metrics] + list(spec.metrics)


def intervals(start: datetime, end: datetime, period_seconds: int) -> list[datetime]:
    """The starts of the intervals that overlap [start, end), on CloudWatch's period boundaries."""
    if end <= start:
        return []
    period = timedelta(seconds=period_seconds)
    first = _EPOCH + ((start.astimezone(UTC) - _EPOCH) // period) * period  # floor
    last = _EPOCH - ((_EPOCH - end.astimezone(UTC)) // period) * period  # ceiling
    count = max(0, (last - first) // period)
    return [first + i * period for i in range(count)]


def _render(query: MetricQuery, values: dict[str, str]) -> MetricQuery:
    if query.metric is not None:
        return query.model_copy(update={"metric": query.metric.rendered(values)})
    return query.model_copy(update={"inputs": {k: m.rendered(values) for k, m in query.inputs.items()}})


def collect(
    app: AppConfig, spec: AnalysisSpec, metrics: FleetMetrics, start: datetime, end: datetime
) -> tuple[AnalysisSamples, list[datetime]]:
    """Each metric's samples on both sides over the window's intervals, and those intervals: the
    latest MAX_INTERVALS of them (an upload's bakes span no more; one analysed late may)."""
    grid = intervals(start, end, spec.interval_seconds)[-MAX_INTERVALS:]
    wanted = definitions(spec)
    five_xx = five_xx_index(spec)
    sides = {"c": placeholders(app, "canary", app.canary), "l": placeholders(app, "live", app.live)}
    queries: dict[str, MetricQuery] = {}
    for index, definition in enumerate(wanted):
        for side, filled in sides.items():
            queries[f"m{index}{side}v"] = _render(definition.value, filled)
            if definition.requests is not None:
                queries[f"m{index}{side}r"] = _render(definition.requests, filled)
            if index == five_xx:
                for kind, query in enumerate(ANSWERED):
                    queries[f"m{index}{side}a{kind}"] = _render(query, filled)
    series = (
        metrics.series(
            queries, grid[0], grid[-1] + timedelta(seconds=spec.interval_seconds), spec.interval_seconds
        )
        if grid
        else {qid: {} for qid in queries}
    )
    samples = []
    for index, definition in enumerate(wanted):
        per_side: dict[str, tuple[tuple[float | None, ...], tuple[float | None, ...] | None]] = {}
        for side in sides:
            values = series.get(f"m{index}{side}v", {})
            if definition.requests is None:
                per_side[side] = (tuple(values.get(t) for t in grid), None)
                continue
            requests = series.get(f"m{index}{side}r", {})
            answered = [series.get(f"m{index}{side}a{kind}", {}) for kind in range(len(ANSWERED))]
            shares: list[float | None] = []
            counts: list[float | None] = []
            for t in grid:
                count = requests.get(t)
                if count is None or count <= 0:
                    shares.append(None)
                    counts.append(None)
                    continue
                # CloudWatch has no datapoint for a count that stayed 0 (the load balancer sends
                # HTTPCode_Target_5XX_Count only when there was one): no events, not no data.
                events = values.get(t, 0.0)
                if index == five_xx:
                    events = failed_requests(count, events, sum(a.get(t, 0.0) for a in answered))
                shares.append(min(1.0, max(0.0, events / count)))
                counts.append(count)
            per_side[side] = (tuple(shares), tuple(counts))
        samples.append(
            MetricSamples(
                name=definition.name,
                direction=definition.direction,
                critical=definition.critical,
                canary=per_side["c"][0],
                live=per_side["l"][0],
                canary_counts=per_side["c"][1],
                live_counts=per_side["l"][1],
                tolerance=definition.tolerance,
                min_samples=definition.min_samples,
                min_count=definition.min_count,
            )
        )
    analysis = AnalysisSamples(metrics=tuple(samples), alpha=spec.alpha, pass_score=spec.pass_score)
    return analysis, grid
