"""The bench's baseline judge (the fixed limits canaryfleet judged with before) still judges as it did."""

import pytest
from canaryfleet.models.policy import AnalysisSpec

from bench.baselines.fixed_limits_judge import judge

SPEC = AnalysisSpec(
    min_requests=100, max_error_rate=0.01, max_error_rate_increase=0.005, max_latency_ratio=1.25
)


def side(requests: float, errors: float, latency: float | None = 0.1) -> dict[str, float | None]:
    return {"requests": requests, "errors": errors, "latency": latency}


def test_given_canary_like_live_then_it_passes() -> None:
    result, reasons = judge(SPEC, side(1000, 1), side(10_000, 9))

    assert result == "pass"
    assert "within limits" in reasons[0]


def test_given_too_few_canary_requests_then_it_is_inconclusive_whatever_the_errors() -> None:
    result, reasons = judge(SPEC, side(40, 40), side(10_000, 0))

    assert result == "inconclusive"
    assert reasons == ["only 40 canary requests, fewer than 100"]


def test_given_a_canary_error_rate_over_the_limit_then_it_fails_with_the_numbers() -> None:
    result, reasons = judge(SPEC, side(1000, 50), side(10_000, 10))

    assert result == "fail"
    assert "canary error rate 5.00% above the 1.00% limit" in reasons


def test_given_a_canary_worse_than_live_by_more_than_allowed_then_it_fails() -> None:
    result, reasons = judge(SPEC, side(1000, 8), side(10_000, 0))

    assert result == "fail"
    assert reasons == ["canary error rate 0.80% exceeds live's 0.00% by more than 0.50%"]


def test_given_a_slow_canary_then_it_fails_on_latency() -> None:
    result, reasons = judge(SPEC, side(1000, 0, latency=0.4), side(10_000, 0, latency=0.1))

    assert result == "fail"
    assert reasons == ["canary latency 400 ms is 4.00x live's 100 ms (limit 1.25x)"]


@pytest.mark.parametrize("live_latency", [None, 0.0])
def test_given_no_live_latency_then_latency_is_not_judged(live_latency: float | None) -> None:
    result, _ = judge(SPEC, side(1000, 0, latency=9.0), side(0, 0, latency=live_latency))

    assert result == "pass"
