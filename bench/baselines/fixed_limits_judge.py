"""The judge canaryfleet had before its statistical one: fixed limits on the window's totals.

Kept as figure 7's baseline (bench/analysis.py), unchanged: the 5xx rate against an absolute
limit and against live's plus an allowance, the average latency against a multiple of live's,
and inconclusive below a request count. The limits are the ``AnalysisSpec`` fields it read.
"""

from __future__ import annotations

from typing import Literal

from canaryfleet.models.policy import AnalysisSpec

VerdictResult = Literal["pass", "fail", "inconclusive"]


def judge(
    spec: AnalysisSpec, canary: dict[str, float | None], live: dict[str, float | None]
) -> tuple[VerdictResult, list[str]]:
    """Pass, fail or inconclusive, with the reasons in words."""
    canary_requests = canary["requests"] or 0.0
    live_requests = live["requests"] or 0.0
    if canary_requests < spec.min_requests:
        return "inconclusive", [f"only {canary_requests:.0f} canary requests, fewer than {spec.min_requests}"]
    canary_rate = (canary["errors"] or 0.0) / canary_requests
    live_rate = (live["errors"] or 0.0) / live_requests if live_requests else 0.0
    reasons = []
    if canary_rate > spec.max_error_rate:
        reasons.append(f"canary error rate {canary_rate:.2%} above the {spec.max_error_rate:.2%} limit")
    if canary_rate - live_rate > spec.max_error_rate_increase:
        reasons.append(
            f"canary error rate {canary_rate:.2%} exceeds live's {live_rate:.2%} "
            f"by more than {spec.max_error_rate_increase:.2%}"
        )
    canary_latency, live_latency = canary["latency"], live["latency"]
    if canary_latency is not None and live_latency:
        ratio = canary_latency / live_latency
        if ratio > spec.max_latency_ratio:
            reasons.append(
                f"canary latency {canary_latency * 1000:.0f} ms is {ratio:.2f}x live's "
                f"{live_latency * 1000:.0f} ms (limit {spec.max_latency_ratio:.2f}x)"
            )
    if reasons:
        return "fail", reasons
    return "pass", [f"canary error rate {canary_rate:.2%} and latency within limits of live's over the bake"]
