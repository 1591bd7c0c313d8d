"""`canaryfleet report`: the timeline page of a rollout, written as one self-contained file.

The page itself (charts, verdict, stages) is the runtime's (`canaryfleet.api.timeline_page`),
the same one the approval API serves; here it gets the whole rollout's samples from CloudWatch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from canaryfleet.adapters.fleet import Metrics
from canaryfleet.api.timeline_page import render_timeline, timeline_view
from canaryfleet.logic.charts import rollout_start
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.chart import BakeSamples
from canaryfleet.models.policy import default_policy
from canaryfleet.models.rollout_record import RolloutRecord


def report_data(record: RolloutRecord, app: AppConfig, now: datetime | None = None) -> dict[str, Any]:
    """Everything the page shows, from the rollout record and the metrics of both target groups."""
    start = rollout_start(record)
    end = max(record.ended_at or now or datetime.now(UTC), start + timedelta(seconds=1))
    metrics = Metrics()
    samples = BakeSamples(
        canary=metrics.samples(app, app.canary, start, end), live=metrics.samples(app, app.live, start, end)
    )
    alarms = metrics.alarm_thresholds(app.canary.alarms)
    return timeline_view(record, samples, app.policy or default_policy(), now=end, alarms=alarms)


def render(data: dict[str, Any]) -> str:
    return render_timeline(data)


def write_report(record: RolloutRecord, app: AppConfig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report_data(record, app)), encoding="utf-8")
    return path
