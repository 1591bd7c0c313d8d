"""`canaryfleet report`: one self-contained HTML page with the timeline of a rollout.

Canary weight as steps, canary and live 5xx rate and latency as one point per period from
the target groups' CloudWatch metrics, every phase marked inside the plots, the analysis's
limits drawn, and each chart's numbers in words. The page loads nothing: uPlot and the drawing
script are inlined and allowed by their hashes; every value goes through Jinja2's autoescaping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from canaryfleet.adapters.fleet import Metrics
from canaryfleet.api.charts import chart_assets, charts_json
from canaryfleet.logic.charts import (
    DECISIONS,
    metric_charts,
    phase_marks,
    relative,
    rollout_start,
    verdict_words,
    weight_chart,
    x_range,
)
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.chart import BakeSamples
from canaryfleet.models.policy import AnalysisSpec, Bake, RolloutPolicy, default_policy
from canaryfleet.models.rollout import Stage
from canaryfleet.models.rollout_record import RolloutRecord
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
STAGE_LABELS = {
    Stage.STARTED: "started",
    Stage.CANARY_DEPLOYED: "canary deployed",
    Stage.TRAFFIC_SHIFTED: "traffic shifted",
    Stage.VERDICT: "analysis",
    Stage.AWAITING_APPROVAL: "approval asked",
    Stage.RELEASED: "live: released",
    Stage.ROLLED_BACK: "rolled back",
}


def _stage_rows(record: RolloutRecord, start: datetime) -> list[dict[str, Any]]:
    """Every stage, weight, alarm, decision and the verdict, in time order, relative to the start."""
    rows: list[tuple[datetime, str, str]] = []
    for stage, label in STAGE_LABELS.items():
        if (at := record.stage_at(stage)) is not None:
            detail = ""
            if stage is Stage.VERDICT and record.verdict is not None:
                detail = f"{record.verdict.result}: " + "; ".join(record.verdict.reasons)
            if stage is Stage.ROLLED_BACK and record.reason:
                detail = record.reason
            rows.append((at, label, detail))
    for entry in record.weight_log.values():
        rows.append((entry.at, "weight", f"canary weight set to {entry.weight}%"))
    for audit in record.audit:
        if audit.kind in DECISIONS:
            said = f": “{audit.reason}”" if audit.reason else " (no comment)"
            rows.append((audit.at, DECISIONS[audit.kind], f"by {audit.by} via {audit.channel}{said}"))
        elif audit.kind == "alarm":
            rows.append((audit.at, "alarm", f"{audit.alarm} ({audit.side}) went to ALARM"))
    rows.sort(key=lambda row: row[0])
    return [
        {"relative": relative(at, start), "clock": at.strftime("%H:%M:%S"), "label": label, "detail": detail}
        for at, label, detail in rows
    ]


def report_data(record: RolloutRecord, app: AppConfig, now: datetime | None = None) -> dict[str, Any]:
    """Everything the page shows, from the rollout record and the metrics."""
    start = rollout_start(record)
    end = record.ended_at or now or datetime.now(UTC)
    end = max(end, start + timedelta(seconds=1))
    marks = phase_marks(record)
    metrics = Metrics()
    samples = BakeSamples(
        canary=metrics.samples(app, app.canary, start, end), live=metrics.samples(app, app.live, start, end)
    )
    x_min, x_max = x_range(start, end, marks)
    policy = app.policy or default_policy()
    limits = (record.verdict.limits if record.verdict else None) or _analysis_spec(policy) or AnalysisSpec()
    charts = [
        weight_chart(record, start, end, policy.max_weight, marks),
        *metric_charts(samples, x_min, x_max, marks, limits, record.verdict),
    ]
    assets = chart_assets()
    return {
        "record": record,
        "application": app.application,
        "start": start,
        "seconds": round((end - start).total_seconds(), 1),
        "charts": charts,
        "chart_data": charts_json(charts),
        "chart_script": assets.script,
        "chart_style": assets.style,
        "csp": (
            f"default-src 'none'; script-src {assets.script_src}; "
            f"style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
        ),
        "stages": _stage_rows(record, start),
        "verdict_words": verdict_words(record.verdict) if record.verdict else [],
        "outcome": record.outcome or record.status,
    }


def _analysis_spec(policy: RolloutPolicy) -> AnalysisSpec | None:
    """The first bake's analysis limits in the policy, if it has one."""
    return next((s.analysis for s in policy.steps if isinstance(s, Bake) and s.analysis), None)


def render(data: dict[str, Any]) -> str:
    environment = Environment(
        loader=ChoiceLoader([FileSystemLoader(TEMPLATES), PackageLoader("canaryfleet", "templates")]),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("report.html").render(**data)


def write_report(record: RolloutRecord, app: AppConfig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report_data(record, app)), encoding="utf-8")
    return path
