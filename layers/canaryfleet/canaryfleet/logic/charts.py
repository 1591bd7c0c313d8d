"""The charts of a rollout and of its bake, each with its numbers in words.

Weights are steps (a weight holds until the next is set); samples are points (a sample says
nothing about the time between it and the next). Every phase of the rollout is a mark inside
the plot: the x range runs a little past the first and last of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from canaryfleet.logic.analysis.words import metric_row
from canaryfleet.models.chart import (
    AlarmThreshold,
    BakeSamples,
    Chart,
    ChartMark,
    ChartSeries,
    ChartThreshold,
    MetricSample,
)
from canaryfleet.models.rollout import Stage, Verdict
from canaryfleet.models.rollout_record import RolloutRecord

DECISIONS = {"approve": "approved", "reject": "rejected", "abort": "aborted", "promote": "promoted"}
# Room on each side of the x range, as a share of it, so a mark at either end stays inside.
_MARGIN = 0.04
# Room above the highest value or limit, as a multiple of it: the marks' labels sit in the top
# third of the plot, clear of the data and of the limits' lines.
_HEADROOM = 1.6


def relative(at: datetime, start: datetime) -> str:
    """``+m:ss`` (or ``+h:mm:ss``) after ``start``; ``-m:ss`` before it."""
    seconds = round((at - start).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}" if hours else f"{sign}{minutes}:{secs:02d}"


def _percent(value: float) -> str:
    return f"{value:.2%}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _x(at: datetime) -> float:
    return round(at.timestamp(), 3)


def _middle(sample: MetricSample) -> float:
    return round(sample.at.timestamp() + sample.seconds / 2, 3)


def rollout_start(record: RolloutRecord) -> datetime:
    """When the rollout's turn came (a queued upload waited before it), or when it arrived."""
    return record.stage_started_at or record.received_at


def phase_marks(record: RolloutRecord) -> list[ChartMark]:
    """Canary deployed, each weight set, bake, analysis, approval, decisions, alarms, the end."""
    marks: list[ChartMark] = []
    start = rollout_start(record)

    def add(at: datetime | None, label: str, kind: str = "phase") -> None:
        if at is not None:
            marks.append(ChartMark(at=_x(at), label=label, kind=kind, when=relative(at, start)))

    add(record.stage_at(Stage.CANARY_DEPLOYED), "canary deployed")
    seen_traffic = False
    for entry in sorted(record.weight_log.values(), key=lambda e: e.at):
        if entry.weight > 0 or seen_traffic:
            add(entry.at, f"weight {entry.weight}%")
            seen_traffic = True
    add(record.bake_started_at, "bake")
    add(record.stage_at(Stage.VERDICT), "analysis")
    add(record.stage_at(Stage.AWAITING_APPROVAL), "approval asked")
    for audit in record.audit:
        if audit.kind in DECISIONS:
            add(audit.at, DECISIONS[audit.kind], "decision")
        elif audit.kind == "alarm":
            add(audit.at, "alarm", "alarm")
    add(record.stage_at(Stage.RELEASED), "live")
    add(record.stage_at(Stage.ROLLED_BACK), "rolled back")
    return sorted(marks, key=lambda m: m.at)


def x_range(start: datetime, end: datetime, marks: Iterable[ChartMark] = ()) -> tuple[float, float]:
    low = min([_x(start), *(m.at for m in marks)])
    high = max([_x(end), *(m.at for m in marks)])
    margin = max(1.0, (high - low) * _MARGIN)
    return round(low - margin, 3), round(high + margin, 3)


def weight_chart(
    record: RolloutRecord, start: datetime, end: datetime, max_weight: int, marks: list[ChartMark]
) -> Chart:
    """The canary's share of traffic as steps, on an axis up to the policy's largest step."""
    entries = sorted(record.weight_log.values(), key=lambda e: e.at)
    x = [_x(start), *(_x(e.at) for e in entries), _x(end)]
    y: list[float | None] = [0.0, *(float(e.weight) for e in entries)]
    y.append(y[-1])
    top = max([max_weight, *(e.weight for e in entries), 1])
    x_min, x_max = x_range(start, end, marks)
    changes = [f"{e.weight}% at {relative(e.at, start)}" for e in entries]
    words = [
        "Canary weight: " + ("0%, then " + ", ".join(changes) if changes else "0% throughout") + ".",
        f"The policy's largest step is {max_weight}%: the axis ends above it, leaving room for the marks.",
    ]
    return Chart(
        id="weight-chart",
        title="Canary weight",
        unit="%",
        x_min=x_min,
        x_max=x_max,
        y_max=top * _HEADROOM,
        series=[ChartSeries(label="canary weight", role="weight", draw="steps", x=x, y=y)],
        marks=marks,
        words=words,
    )


def _series(samples: Sequence[MetricSample], label: str, role: str, value: str) -> ChartSeries:
    points = [(s, s.error_rate if value == "rate" else s.latency) for s in samples]
    kept = [(_middle(s), v) for s, v in points if v is not None]
    scale = 100.0 if value == "rate" else 1000.0
    return ChartSeries(
        label=label,
        role=role,
        draw="points",
        x=[x for x, _ in kept],
        y=[round(v * scale, 4) for _, v in kept],
    )


def _totals(samples: Sequence[MetricSample]) -> tuple[float, float, float | None]:
    requests = sum(s.requests for s in samples)
    errors = sum(s.errors for s in samples)
    weighted = [(s.latency, s.requests) for s in samples if s.latency is not None]
    weight = sum(r for _, r in weighted)
    latency = sum(v * r for v, r in weighted) / weight if weight else None
    return requests, errors, latency


def _rate_words(side: str, samples: Sequence[MetricSample]) -> str:
    requests, errors, _ = _totals(samples)
    if not requests:
        return f"{side}: no request in this window."
    rates = [r for s in samples if (r := s.error_rate) is not None]
    spread = f"; per period from {_percent(min(rates))} to {_percent(max(rates))}" if len(rates) > 1 else ""
    return (
        f"{side} 5xx rate {_percent(errors / requests)} ({errors:,.0f} of {requests:,.0f} requests){spread}."
    )


def _latency_words(side: str, samples: Sequence[MetricSample]) -> str:
    _, _, latency = _totals(samples)
    if latency is None:
        return f"{side}: no request in this window."
    values = [s.latency for s in samples if s.latency is not None]
    spread = f"; per period from {_ms(min(values))} to {_ms(max(values))}" if len(values) > 1 else ""
    return f"{side} average latency {_ms(latency)}{spread}."


def verdict_words(verdict: Verdict) -> list[str]:
    """The analysis's own statistics, as it judged them."""
    words = [
        f"Verdict: {verdict.result}, "
        f"over {verdict.window_start:%H:%M:%S} to {verdict.window_end:%H:%M:%S} UTC.",
        f"Canary: {verdict.canary_requests:,.0f} requests, {verdict.canary_errors:,.0f} 5xx "
        f"({_percent(verdict.canary_error_rate)})"
        + (f", {_ms(verdict.canary_latency)} average." if verdict.canary_latency is not None else "."),
        f"Live: {verdict.live_requests:,.0f} requests, {verdict.live_errors:,.0f} 5xx "
        f"({_percent(verdict.live_error_rate)})"
        + (f", {_ms(verdict.live_latency)} average." if verdict.live_latency is not None else "."),
    ]
    return words + [f"{reason[:1].upper()}{reason[1:]}." for reason in verdict.reasons]


def _error_thresholds(alarms: Sequence[AlarmThreshold]) -> list[ChartThreshold]:
    """The canary's 5xx-rate alarms (their threshold is a rate in percent, as the chart's axis)."""
    return [
        ChartThreshold(value=a.threshold, label=f"alarm above {a.threshold:g}%")
        for a in alarms
        if a.watches == "5xx_rate_percent"
    ]


def _alarm_words(alarms: Sequence[AlarmThreshold], watches: str) -> str:
    shown = [a for a in alarms if a.watches == watches]
    if not shown:
        return ""
    if watches == "5xx_rate_percent":
        said = ", ".join(f"{a.alarm} fires above {a.threshold:g}%" for a in shown)
        return f"Canary alarm (dashed line): {said}; it ends the bake at once."
    said = ", ".join(f"{a.alarm} fires when the p99 is above {_ms(a.threshold)}" for a in shown)
    return f"Canary alarm: {said} (the chart draws averages, so the p99 limit is not drawn)."


def _judged_words(verdict: Verdict | None, name: str) -> str:
    """What the analysis found for one of the load balancer's metrics, in the judge's terms."""
    for metric in verdict.metrics if verdict is not None else []:
        if metric.name == name:
            row = metric_row(metric)
            return (
                f"Analysis: {row['result']}; canary {row['canary']} against live {row['live']}, "
                f"change {row['effect']} ({row['confidence']} interval), p {row['p_value']} "
                f"(adjusted {row['p_adjusted']}, {row['test']})."
            )
    return ""


def _top(series: list[ChartSeries], thresholds: list[ChartThreshold], floor: float) -> float:
    values = [v for s in series for v in s.y if v is not None] + [t.value for t in thresholds]
    return max([floor, *values]) * _HEADROOM


def metric_charts(
    samples: BakeSamples,
    x_min: float,
    x_max: float,
    marks: list[ChartMark],
    alarms: Sequence[AlarmThreshold],
    verdict: Verdict | None,
    prefix: str = "",
) -> list[Chart]:
    """5xx rate and latency of canary and live, as points per period, with the canary's alarms."""
    # Live first, canary on top: where they are equal the canary's dot sits inside live's ring.
    errors = [
        _series(samples.live, "live", "live", "rate"),
        _series(samples.canary, "canary", "canary", "rate"),
    ]
    latencies = [
        _series(samples.live, "live", "live", "latency"),
        _series(samples.canary, "canary", "canary", "latency"),
    ]
    error_lines = _error_thresholds(alarms)
    period = samples.canary[0].seconds if samples.canary else (samples.live[0].seconds if samples.live else 0)
    per = f"One point per {period} s period." if period else "No samples."
    error_words = [
        _rate_words("Canary", samples.canary),
        _rate_words("Live", samples.live),
        per,
        _alarm_words(alarms, "5xx_rate_percent"),
        _judged_words(verdict, "5xx rate"),
    ]
    latency_words = [
        _latency_words("Canary", samples.canary),
        _latency_words("Live", samples.live),
        _alarm_words(alarms, "latency_p99_seconds"),
        _judged_words(verdict, "latency"),
    ]
    error_words = [w for w in error_words if w]
    latency_words = [w for w in latency_words if w]
    return [
        Chart(
            id=f"{prefix}error-chart",
            title="5xx rate",
            unit="%",
            x_min=x_min,
            x_max=x_max,
            y_max=_top(errors, error_lines, 1.0),
            series=errors,
            marks=marks,
            thresholds=error_lines,
            words=error_words,
        ),
        Chart(
            id=f"{prefix}latency-chart",
            title="Average latency",
            unit=" ms",
            x_min=x_min,
            x_max=x_max,
            y_max=_top(latencies, [], 10.0),
            series=latencies,
            marks=marks,
            thresholds=[],
            words=latency_words,
        ),
    ]


def bake_charts(verdict: Verdict) -> list[Chart]:
    """The approval page's charts: the bake the verdict judged, from its start to the analysis."""
    samples = verdict.samples or BakeSamples()
    marks = [
        ChartMark(at=_x(verdict.window_start), label="bake", when=f"{verdict.window_start:%H:%M:%S} UTC"),
        ChartMark(at=_x(verdict.window_end), label="analysis", when=f"{verdict.window_end:%H:%M:%S} UTC"),
    ]
    stamps = [s.at for s in (*samples.canary, *samples.live)]
    start = min([verdict.window_start, *stamps])
    end = max([verdict.window_end, *(s.at + timedelta(seconds=s.seconds) for s in samples.canary)])
    x_min, x_max = x_range(start, end, marks)
    return metric_charts(samples, x_min, x_max, marks, verdict.alarms, verdict, "bake-")
