"""`canaryfleet report`: one self-contained HTML page with the timeline of a rollout.

Canary weight over time, canary and live error rate and latency from the target groups'
CloudWatch metrics, stage boundaries, alarms, the verdict and the decision. Inline SVG,
no scripts, no external assets; every value goes through Jinja2's autoescaping.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from canaryfleet.logic.analysis.words import metric_rows
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.rollout import Stage
from canaryfleet.models.rollout_record import RolloutRecord
from jinja2 import Environment, FileSystemLoader, select_autoescape

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricDataQueryTypeDef

TEMPLATES = Path(__file__).parent / "templates"
WIDTH, HEIGHT, PAD = 760, 160, 40
STAGE_LABELS = {
    "started": "started",
    "canary_deployed": "canary deployed",
    "traffic_shifted": "traffic shifted",
    "verdict": "verdict",
    "awaiting_approval": "awaiting approval",
    "released": "released",
    "rolled_back": "rolled back",
}


@dataclass
class Series:
    name: str
    css: str
    points: list[tuple[datetime, float]]


def _metric_series(app: AppConfig, start: datetime, end: datetime) -> dict[str, list[tuple[datetime, float]]]:
    """Requests, 5xx and latency of both target groups over the window, one point per period."""
    lb = "/".join(app.listener_rule_arn.split(":", 5)[5].split("/")[1:4])
    seconds = max(1.0, (end - start).total_seconds())
    period = 1 if seconds <= 600 else 60 * max(1, int(seconds // 3600))
    queries: list[MetricDataQueryTypeDef] = []
    for side, group in (("canary", app.canary), ("live", app.live)):
        dims: list[DimensionTypeDef] = [
            {"Name": "LoadBalancer", "Value": lb},
            {"Name": "TargetGroup", "Value": group.target_group_arn.split(":", 5)[5]},
        ]
        for metric, stat in (
            ("RequestCount", "Sum"),
            ("HTTPCode_Target_5XX_Count", "Sum"),
            ("TargetResponseTime", "Average"),
        ):
            queries.append(
                {
                    "Id": f"{side}_{metric.lower()}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/ApplicationELB",
                            "MetricName": metric,
                            "Dimensions": dims,
                        },
                        "Period": period,
                        "Stat": stat,
                    },
                }
            )
    response = boto3.client("cloudwatch").get_metric_data(
        MetricDataQueries=queries, StartTime=start.replace(microsecond=0), EndTime=end + timedelta(seconds=1)
    )
    result: dict[str, list[tuple[datetime, float]]] = {}
    for item in response["MetricDataResults"]:
        # A datapoint stands for its whole period: draw it at the period's middle.
        half = timedelta(seconds=period / 2)
        stamps = [(t if t.tzinfo else t.replace(tzinfo=UTC)) + half for t in item.get("Timestamps", [])]
        result[item["Id"]] = sorted(zip(stamps, [float(v) for v in item.get("Values", [])], strict=False))
    return result


def _rate(
    errors: list[tuple[datetime, float]], requests: list[tuple[datetime, float]]
) -> list[tuple[datetime, float]]:
    totals = dict(requests)
    return [(t, 100.0 * e / totals[t]) for t, e in errors if totals.get(t)]


class Chart:
    """Maps times and values onto an SVG box."""

    def __init__(self, start: datetime, end: datetime, top: float) -> None:
        self.start, self.end = start, end
        self.top = top if top > 0 else 1.0

    def x(self, when: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        return round(PAD + (WIDTH - 2 * PAD) * (when - self.start).total_seconds() / span, 1)

    def y(self, value: float) -> float:
        return round(HEIGHT - PAD / 2 - (HEIGHT - PAD) * min(value, self.top) / self.top, 1)

    def path(self, points: list[tuple[datetime, float]], step: bool = False) -> str:
        """An SVG path; a gap in the data (no traffic on that side) breaks the line."""
        parts: list[str] = []
        previous: float | None = None
        deltas = sorted((b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(points))
        gap = 2.5 * deltas[len(deltas) // 2] if deltas else 0.0  # well over the usual spacing
        last: datetime | None = None
        for when, value in points:
            x, y = self.x(when), self.y(value)
            broken = not step and last is not None and (when - last).total_seconds() > gap
            last = when
            if not parts or broken:
                parts.append(f"M{x},{y}")
            elif step and previous is not None:
                parts.append(f"L{x},{previous} L{x},{y}")
            else:
                parts.append(f"L{x},{y}")
            previous = y
        return " ".join(parts)


def report_data(record: RolloutRecord, app: AppConfig, now: datetime | None = None) -> dict[str, Any]:
    """Everything the page shows, from the rollout record and the metrics."""
    # From the rollout's turn (a queued upload waited before it), or from its arrival.
    start = record.stage_started_at or record.received_at
    start -= timedelta(seconds=1)
    end = record.ended_at or now or datetime.now(UTC)
    if end <= start:
        end = start + timedelta(seconds=1)
    metrics = _metric_series(app, start, end)
    weights = sorted(
        ((e.at, float(e.weight)) for e in record.weight_log.values()),
        key=lambda p: p[0],
    )
    weight_points = [(start, 0.0), *weights, (end, weights[-1][1] if weights else 0.0)]
    error_series = [
        Series(
            "canary",
            "canary",
            _rate(
                metrics.get("canary_httpcode_target_5xx_count", []), metrics.get("canary_requestcount", [])
            ),
        ),
        Series(
            "live",
            "live",
            _rate(metrics.get("live_httpcode_target_5xx_count", []), metrics.get("live_requestcount", [])),
        ),
    ]
    latency_series = [
        Series("canary", "canary", [(t, v * 1000) for t, v in metrics.get("canary_targetresponsetime", [])]),
        Series("live", "live", [(t, v * 1000) for t, v in metrics.get("live_targetresponsetime", [])]),
    ]
    stages = sorted(
        (
            (when, STAGE_LABELS[name])
            for name in STAGE_LABELS
            if (when := record.stage_at(Stage(name))) is not None
        ),
        key=lambda s: s[0],
    )
    alarms: list[dict[str, Any]] = [
        {"at": a.at, "alarm": a.alarm, "side": a.side} for a in record.audit if a.kind == "alarm"
    ]
    decisions = [a.stored() for a in record.audit if a.kind in ("approve", "reject", "abort", "promote")]
    charts = []
    for chart_id, title, unit, series, top in (
        ("weight-chart", "Canary weight", "%", [Series("canary weight", "weight", weight_points)], 100.0),
        (
            "error-chart",
            "5xx rate",
            "%",
            error_series,
            max([v for s in error_series for _, v in s.points] + [1.0]),
        ),
        (
            "latency-chart",
            "Latency (average)",
            "ms",
            latency_series,
            max([v for s in latency_series for _, v in s.points] + [1.0]),
        ),
    ):
        chart = Chart(start, end, top * 1.1 if chart_id != "weight-chart" else top)
        charts.append(
            {
                "id": chart_id,
                "title": title,
                "unit": unit,
                "top": round(top, 2),
                "series": [
                    {
                        "name": s.name,
                        "css": s.css,
                        "path": chart.path(s.points, step=chart_id == "weight-chart"),
                    }
                    for s in series
                    if s.points
                ],
                "stages": [{"x": chart.x(when), "label": label} for when, label in stages],
                "alarms": [{"x": chart.x(a["at"]), "alarm": a["alarm"]} for a in alarms if a["at"]],
            }
        )
    return {
        "record": record,
        "application": app.application,
        "start": start,
        "end": end,
        "seconds": round((end - start).total_seconds(), 1),
        "charts": charts,
        "stages": sorted(
            [{"at": when, "label": label} for when, label in stages]
            + [{"at": a["at"], "label": f"alarm {a['alarm']} ({a['side']})"} for a in alarms if a["at"]],
            key=lambda row: row["at"],
        ),
        "alarms": alarms,
        "verdict": record.verdict.model_dump(mode="json") if record.verdict else None,
        "verdict_metrics": metric_rows(record.verdict),
        "decisions": decisions,
        "outcome": record.outcome or record.status,
        "width": WIDTH,
        "height": HEIGHT,
    }


def render(data: dict[str, Any]) -> str:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("report.html").render(**data)


def write_report(record: RolloutRecord, app: AppConfig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report_data(record, app)), encoding="utf-8")
    return path
