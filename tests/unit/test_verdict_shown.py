"""Each metric's numbers reach the approver: the approval page, Slack, the email, the timeline page."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from canaryfleet.api.html import html_page
from canaryfleet.logic import approval_messages
from canaryfleet.logic.analysis.judge import judge
from canaryfleet.logic.analysis.words import metric_lines, metric_rows
from canaryfleet.logic.notify_messages import detail_lines
from canaryfleet.models.analysis import AnalysisSamples, MetricSamples
from canaryfleet.models.notification import Notice
from canaryfleet.models.rollout import Verdict

from tests.unit.test_approval_messages import approval

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def verdict(metric_count: int = 3) -> Verdict:
    rng = random.Random(3)
    metrics = [
        MetricSamples(
            name="5xx rate",
            critical=True,
            canary=(0.01,) * 8,
            live=(0.01,) * 8,
            canary_counts=(300,) * 8,
            live_counts=(5700,) * 8,
        ),
        MetricSamples(
            name="latency",
            critical=True,
            canary=tuple(0.1 * rng.gauss(1, 0.02) for _ in range(8)),
            live=tuple(0.08 * rng.gauss(1, 0.02) for _ in range(8)),
        ),
    ]
    metrics += [
        MetricSamples(
            name=f"orders {i}", canary=(1.0, 1.1, 0.9, 1.02, 0.98), live=(1.0, 1.05, 0.95, 1.01, 0.99)
        )
        for i in range(metric_count - 2)
    ]
    judged = judge(AnalysisSamples(metrics=tuple(metrics)))
    return Verdict(
        result=judged.result,
        reasons=list(judged.reasons),
        canary_requests=2400,
        canary_errors=24,
        canary_error_rate=0.01,
        canary_latency=0.1,
        live_requests=45600,
        live_errors=456,
        live_error_rate=0.01,
        live_latency=0.08,
        window_start=NOW - timedelta(minutes=8),
        window_end=NOW,
        score=judged.score,
        alpha=judged.alpha,
        metrics=list(judged.metrics),
    )


def test_a_metric_row_has_its_values_change_interval_and_p_values() -> None:
    rows = metric_rows(verdict())
    assert [r["name"] for r in rows] == ["5xx rate (critical)", "latency (critical)", "orders 0"]
    rate, latency, _ = rows
    assert (rate["canary"], rate["live"], rate["result"]) == ("1.00%", "1.00%", "pass")
    assert latency["result"] == "fail" and latency["canary"].endswith(" ms")
    assert latency["effect"].startswith("+2") and "[" in latency["effect"]
    assert latency["p_adjusted"] != "-"


def test_the_approval_page_shows_each_metric() -> None:
    response = html_page(200, "Waiting", "", "", approval=approval(verdict=verdict()))
    page = str(response.body)
    assert 'id="verdict-metrics"' in page
    assert "score 67 of 100" in page
    assert "latency (critical)" in page and "orders 0" in page


def test_slack_and_the_email_carry_each_metric() -> None:
    _, blocks = approval_messages.slack_request(approval(verdict=verdict()))
    rendered = json.dumps(blocks)
    assert "latency (critical): fail, canary" in rendered
    assert "(score 67 of 100, false-failure rate 5%)" in rendered
    _, body = approval_messages.email(approval(verdict=verdict()), "https://example.com/a")
    assert "orders 0: pass" in body


def test_slack_shows_at_most_ten_metrics_and_says_how_many_more() -> None:
    lines = approval_messages.verdict_metric_lines(verdict(metric_count=14))
    assert len(lines) == 11 and lines[-1] == "and 4 more metric(s) on the approval page"
    assert len(metric_lines(verdict(metric_count=14))) == 14


def test_a_verdict_before_the_statistical_judge_shows_no_metric_lines() -> None:
    old = Verdict.model_validate({**verdict().model_dump(), "metrics": [], "score": None, "alpha": None})
    assert metric_lines(old) == [] and approval_messages.verdict_metric_lines(old) == []
    assert "score" not in approval_messages.verdict_summary(old)


def test_the_verdict_notice_lists_each_metric() -> None:
    detail = verdict().model_dump(mode="json")
    body = {"rollout_id": "r", "application": "payments-api", "version": "2.7.0", "detail": detail}
    notice = Notice(
        kind="rollout.verdict", application="payments-api", body=body, message_id="m", published_at=NOW
    )
    lines = detail_lines(notice)
    assert any(line.startswith("◦ latency (critical): fail") for line in lines)
