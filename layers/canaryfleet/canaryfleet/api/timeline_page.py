"""The timeline page of one rollout: its charts, verdict, stages and decisions on one page.

The CLI writes it as a file (`canaryfleet report`, `make demo`) from the whole rollout's
CloudWatch samples; the approval API serves it behind a read-only view link, from the
rollout record and the bake the analysis kept. Either way the page loads nothing: uPlot and the
drawing script are inline and allowed by their hashes, and every value is autoescaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from jinja2 import Environment, PackageLoader, select_autoescape

from canaryfleet.api.charts import chart_assets, charts_json, csp_hash
from canaryfleet.api.html import security_headers
from canaryfleet.logic.analysis.words import metric_rows
from canaryfleet.logic.calendar import describe_wait
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
from canaryfleet.models.chart import AlarmThreshold, BakeSamples
from canaryfleet.models.policy import RolloutPolicy
from canaryfleet.models.rollout import Stage
from canaryfleet.models.rollout_record import MAX_LISTED_ALARMS, RolloutRecord

TIMELINE_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:16px;background:#fff;box-sizing:border-box}
h1{font-size:20px;margin:0 0 4px;overflow-wrap:anywhere}h2{font-size:16px;margin:20px 0 6px}
.sub{color:#5a6275;margin-bottom:12px;overflow-wrap:anywhere}
.outcome{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600}
.outcome.released{background:#dff5e3;color:#1b6b2f}.outcome.rolled_back{background:#fde2e1;color:#9b1c1c}
.outcome.rejected{background:#fff1cc;color:#7a5200}.reason{font-weight:600;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%}
td,th{padding:3px 8px 3px 0;text-align:left;vertical-align:top;overflow-wrap:anywhere}
#stages th{white-space:nowrap;font-weight:600}#stages td.clock{color:#5a6275;white-space:nowrap}
ul.plain{padding-left:1.2rem;margin:0}.note{color:#5a6275;font-size:.9rem}
.table-wrap{overflow-x:auto}caption{text-align:left;color:#5a6275;font-size:.9rem}
""".strip()

STAGE_LABELS = {
    Stage.STARTED: "started",
    Stage.CANARY_DEPLOYED: "canary deployed",
    Stage.TRAFFIC_SHIFTED: "traffic shifted",
    Stage.VERDICT: "analysis",
    Stage.AWAITING_APPROVAL: "approval asked",
    Stage.RELEASED: "live: released",
    Stage.ROLLED_BACK: "rolled back",
}


def content_security_policy() -> str:
    """Exactly the page's inline script and styles; nothing loaded, no form, no frame."""
    assets = chart_assets()
    return (
        f"default-src 'none'; script-src {assets.script_src}; "
        f"style-src 'sha256-{csp_hash(TIMELINE_CSS)}' {assets.style_src}; "
        "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    )


def _utc_clock(at: datetime) -> str:
    """An instant's time of day in UTC (the page says UTC), whatever offset it was stored with."""
    return (at.astimezone(UTC) if at.tzinfo is not None else at).strftime("%H:%M:%S")


def calendar_rows(record: RolloutRecord, now: datetime) -> list[tuple[datetime, str, str]]:
    """The rollout's waits for its deployment window or a freeze, and the overrides."""
    rows: list[tuple[datetime, str, str]] = []
    for wait in record.calendar_waits():
        step = "the canary" if wait.guard == "canary" else "going live"
        if wait.ended:
            said = f"waited for the calendar before {step} until {_utc_clock(wait.until)} UTC: {wait.reason}"
        else:
            said = f"waiting before {step} for {describe_wait(wait.until, wait.kind, wait.timezone, now)}"
            said += f": {wait.reason}"
        rows.append((wait.started, "window wait", said))
    for override in record.window_overrides:
        rows.append((override.at, "window overridden", f"by {override.by}: “{override.reason}”"))
    return rows


def stage_rows(record: RolloutRecord, start: datetime, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every stage, weight, alarm, decision, calendar wait and the verdict, in time order, relative
    to the start."""
    rows: list[tuple[datetime, str, str]] = calendar_rows(record, now or datetime.now(UTC))
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
    if record.alarms_not_listed:
        last = max((a.at for a in record.audit if a.kind == "alarm"), default=start)
        more = f"{record.alarms_not_listed} later alarm change(s) to ALARM, not listed"
        rows.append((last, "alarm", f"{more}: a rollout lists its first {MAX_LISTED_ALARMS}"))
    rows.sort(key=lambda row: row[0])
    return [
        {"relative": relative(at, start), "clock": _utc_clock(at), "label": label, "detail": detail}
        for at, label, detail in rows
    ]


def timeline_view(
    record: RolloutRecord,
    samples: BakeSamples,
    policy: RolloutPolicy | None,
    now: datetime | None = None,
    samples_note: str = "",
    alarms: Sequence[AlarmThreshold] | None = None,
) -> dict[str, Any]:
    """Everything the page shows, from the rollout record and its samples; the canary's alarms as
    given (read from CloudWatch by the CLI), else as the analysis recorded them."""
    start = rollout_start(record)
    end = max(record.ended_at or now or datetime.now(UTC), start + timedelta(seconds=1))
    marks = phase_marks(record)
    x_min, x_max = x_range(start, end, marks)
    logged = max([e.weight for e in record.weight_log.values()] or [1])
    # Blue/green ends at 100%: its axis reaches the last weight, past the policy's largest step.
    max_weight = max(policy.max_weight, logged) if policy is not None else logged
    if alarms is None:
        alarms = record.verdict.alarms if record.verdict is not None else []
    charts = [
        weight_chart(record, start, end, max_weight, marks),
        *metric_charts(samples, x_min, x_max, marks, alarms, record.verdict),
    ]
    assets = chart_assets()
    return {
        "record": record,
        "application": record.application,
        "start": start,
        "seconds": round((end - start).total_seconds(), 1),
        "charts": charts,
        "chart_data": charts_json(charts),
        "chart_script": assets.script,
        "chart_style": assets.style,
        "page_css": TIMELINE_CSS,
        "csp": content_security_policy(),
        "samples_note": samples_note,
        "stages": stage_rows(record, start, now),
        "verdict_words": verdict_words(record.verdict) if record.verdict else [],
        "verdict_metrics": metric_rows(record.verdict),
        "outcome": record.outcome or record.status,
        "colors": record.color_text(),
    }


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("canaryfleet", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_timeline(view: dict[str, Any]) -> str:
    return _environment().get_template("timeline.html").render(**view)


def timeline_response(record: RolloutRecord) -> Response[str]:
    """The timeline as the approval API serves it: the bake the analysis kept, the same headers."""
    samples = (
        record.verdict.samples if record.verdict is not None and record.verdict.samples else BakeSamples()
    )
    note = (
        "5xx rate and latency: the bake the analysis judged, as it kept it."
        if record.verdict is not None
        else "No analysis ran: there are no samples to draw."
    )
    body = render_timeline(timeline_view(record, samples, None, samples_note=note))
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=body,
        headers=security_headers() | {"Content-Security-Policy": content_security_policy()},
    )
