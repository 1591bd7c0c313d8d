"""A verdict's per-metric numbers as people read them: the same words on the approval page, in
Slack, in the email, on the timeline page and in the CLI."""

from __future__ import annotations

from canaryfleet.models.analysis import MetricVerdict
from canaryfleet.models.rollout import Verdict


def value(metric: MetricVerdict, number: float | None) -> str:
    if number is None:
        return "-"
    if metric.kind == "ratio":
        return f"{number:.2%}"
    if metric.name == "latency":  # the load balancer's TargetResponseTime, in seconds
        return f"{number * 1000:.0f} ms"
    return f"{number:.4g}"


def change(number: float | None) -> str:
    return "unbounded" if number is None else f"{number:+.1%}"


def metric_row(metric: MetricVerdict) -> dict[str, str]:
    """One metric's cells: name, result, canary, live, effect with its interval, p-values, test."""
    effect = "-"
    if metric.effect is not None:
        effect = f"{change(metric.effect)} [{change(metric.effect_low)}, {change(metric.effect_high)}]"
    return {
        "name": metric.name + (" (critical)" if metric.critical else ""),
        "result": metric.result,
        "canary": value(metric, metric.canary),
        "live": value(metric, metric.live),
        "effect": effect,
        "confidence": f"{metric.confidence:.1%}",
        "p_value": "-" if metric.p_value is None else f"{metric.p_value:.2g}",
        "p_adjusted": "-" if metric.p_adjusted is None else f"{metric.p_adjusted:.2g}",
        "test": metric.test,
    }


def metric_rows(verdict: Verdict | None) -> list[dict[str, str]]:
    return [metric_row(m) for m in verdict.metrics] if verdict is not None else []


def metric_lines(verdict: Verdict | None) -> list[str]:
    """One line per metric, for text (Slack, email, the CLI)."""
    lines = []
    for row in metric_rows(verdict):
        lines.append(
            f"{row['name']}: {row['result']}, canary {row['canary']} against live {row['live']}, "
            f"change {row['effect']}, p {row['p_value']} (adjusted {row['p_adjusted']})"
        )
    return lines


def score_line(verdict: Verdict | None) -> str:
    if verdict is None or verdict.score is None:
        return ""
    alpha = f", false-failure rate {verdict.alpha:.0%}" if verdict.alpha is not None else ""
    return f"score {verdict.score} of 100{alpha}"
