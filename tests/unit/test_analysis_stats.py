"""The judge's pure-Python statistics agree with scipy.stats (a development dependency only)."""

from __future__ import annotations

import math
import random

import pytest
from canaryfleet.logic.analysis import stats
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special as sp_special
from scipy import stats as sp

ALTERNATIVES = ("greater", "less", "two-sided")


def close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


@settings(max_examples=300, deadline=None)
@given(
    a=st.floats(0.05, 5_000),
    b=st.floats(0.05, 5_000),
    x=st.floats(0, 1),
)
def test_incomplete_beta_matches_scipy(a: float, b: float, x: float) -> None:
    assert close(stats.betainc(a, b, x), float(sp_special.betainc(a, b, x)), rel=1e-8, abs_=1e-13)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 20_000),
    share=st.floats(0, 1),
    p=st.floats(0.0005, 0.9995),
    alternative=st.sampled_from(ALTERNATIVES),
)
def test_binomial_test_matches_scipy(n: int, share: float, p: float, alternative: str) -> None:
    k = round(n * share)
    expected = sp.binomtest(k, n, p, alternative=alternative).pvalue
    assert close(stats.binom_test(k, n, p, alternative), expected, rel=1e-7, abs_=1e-12)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 50_000), share=st.floats(0, 1), confidence=st.sampled_from((0.9, 0.95, 0.975, 0.99)))
def test_clopper_pearson_matches_scipy(n: int, share: float, confidence: float) -> None:
    k = round(n * share)
    expected = sp.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    low, high = stats.clopper_pearson(k, n, confidence)
    assert close(low, expected.low, rel=1e-7, abs_=1e-12)
    assert close(high, expected.high, rel=1e-7, abs_=1e-12)


samples = st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=40)
# Rounded values make ties common, as latencies in whole milliseconds have.
tied = st.lists(st.integers(0, 6).map(float), min_size=1, max_size=40)


@settings(max_examples=400, deadline=None)
@given(x=st.one_of(samples, tied), y=st.one_of(samples, tied), alternative=st.sampled_from(ALTERNATIVES))
def test_mann_whitney_matches_scipy(x: list[float], y: list[float], alternative: str) -> None:
    expected = sp.mannwhitneyu(x, y, alternative=alternative)
    got = stats.mann_whitney_u(x, y, alternative)  # type: ignore[arg-type]
    assert got.u1 == pytest.approx(float(expected.statistic))
    if math.isnan(expected.pvalue):  # scipy: every value equal; the judge says the data show nothing
        assert got.p_value == 1.0
    else:
        assert close(got.p_value, float(expected.pvalue), rel=1e-9, abs_=1e-12)


def test_mann_whitney_uses_the_exact_distribution_for_small_samples_without_ties() -> None:
    # Given seven values against nine, no tie
    x = [1.1, 2.3, 3.5, 4.2, 5.9, 6.1, 7.7]
    y = [0.5, 0.9, 1.0, 1.2, 1.3, 2.0, 2.2, 2.5, 3.0]
    # Then the p-value is scipy's exact one, not the normal approximation
    got = stats.mann_whitney_u(x, y, "greater")
    assert got.method == "exact"
    assert got.p_value == pytest.approx(sp.mannwhitneyu(x, y, alternative="greater", method="exact").pvalue)


@pytest.mark.parametrize("alternative", ["greater", "two-sided"])
@pytest.mark.parametrize(("n1", "n2"), [(1, 1), (2, 3), (3, 3), (4, 4), (3, 8), (8, 8)])
def test_the_rank_tests_floor_is_its_exact_p_value_when_the_samples_do_not_overlap(
    n1: int, n2: int, alternative: str
) -> None:
    # Given canary values all above live's: the most extreme arrangement there is
    x = [100.0 + i for i in range(n1)]
    y = [1.0 + i for i in range(n2)]
    exact = float(sp.mannwhitneyu(x, y, alternative=alternative, method="exact").pvalue)
    # Then the floor is that p-value, and no arrangement of as many values gets below it
    assert stats.mann_whitney_floor(n1, n2, alternative) == pytest.approx(min(1.0, exact))  # type: ignore[arg-type]
    assert (
        stats.mann_whitney_u(x, y, alternative).p_value
        >= stats.mann_whitney_floor(n1, n2, alternative) - 1e-15
    )  # type: ignore[arg-type]


def test_mann_whitney_refuses_an_empty_sample() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        stats.mann_whitney_u([], [1.0], "greater")


def test_hodges_lehmann_is_the_median_of_differences_and_its_interval_covers_it() -> None:
    rng = random.Random(7)
    x = [rng.gauss(1.25, 0.1) for _ in range(10)]
    y = [rng.gauss(1.0, 0.1) for _ in range(10)]
    shift, low, high = stats.hodges_lehmann(x, y, 0.95)
    differences = sorted(a - b for a in x for b in y)
    assert shift == pytest.approx(float(sp.scoreatpercentile(differences, 50)))
    assert low is not None and high is not None
    assert low < shift < high
    # Moses's interval: K = floor(n1 n2 / 2 - z sqrt(n1 n2 (n1 + n2 + 1) / 12)) = 24 for 10 and 10
    assert (low, high) == (differences[23], differences[100 - 24])


def test_hodges_lehmann_interval_is_unbounded_with_too_few_values() -> None:
    assert stats.hodges_lehmann([1.0, 2.0], [1.5], 0.95)[1:] == (None, None)


def test_hodges_lehmann_interval_covers_the_true_shift_as_often_as_it_says() -> None:
    # Given 400 seeded pairs of samples whose true shift is 0.25
    rng = random.Random(11)
    covered = 0
    for _ in range(400):
        x = [rng.gauss(1.25, 0.2) for _ in range(12)]
        y = [rng.gauss(1.0, 0.2) for _ in range(12)]
        _, low, high = stats.hodges_lehmann(x, y, 0.95)
        covered += low is not None and high is not None and low <= 0.25 <= high
    # Then about 95% of the intervals hold it (binomial sd of the share: 1.1 points)
    assert 0.92 <= covered / 400 <= 0.985


def test_holm_adjusts_step_down_and_keeps_order() -> None:
    # Given three p-values; Holm multiplies the smallest by 3, the next by 2, then 1, running max
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5]) == [0.5]
    assert stats.holm([]) == []
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


def test_normal_tail_is_accurate_far_out() -> None:
    assert close(stats.normal_sf(9.0), float(sp.norm.sf(9.0)), rel=1e-12)
    assert close(stats.normal_ppf(0.975), float(sp.norm.ppf(0.975)), rel=1e-12)


def _sorted_hodges_lehmann(x: list[float], y: list[float], confidence: float) -> tuple[float, ...]:
    """The definition, made whole: every difference, sorted."""
    differences = sorted(a - b for a in x for b in y)
    count, middle = len(differences), len(differences) // 2
    shift = differences[middle] if count % 2 else (differences[middle - 1] + differences[middle]) / 2
    z = sp.norm.ppf(0.5 + confidence / 2)
    k = math.floor(len(x) * len(y) / 2 - z * math.sqrt(len(x) * len(y) * (len(x) + len(y) + 1) / 12))
    return (shift, None, None) if k < 1 else (shift, differences[k - 1], differences[count - k])


# Latency-like values with ties and binary-inexact decimals (0.1 - 0.3 is not -0.2 in floats).
_VALUES = st.lists(
    st.one_of(st.sampled_from([0.1, 0.2, 0.3, 1.0, 0.7]), st.floats(0, 5, allow_nan=False)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(x=_VALUES, y=_VALUES)
def test_hodges_lehmann_gives_the_very_order_statistics_of_all_the_differences_sorted(
    x: list[float], y: list[float]
) -> None:
    assert stats.hodges_lehmann(x, y, 0.95) == _sorted_hodges_lehmann(x, y, 0.95)


def test_hodges_lehmann_of_a_days_one_minute_samples_is_exact_without_making_every_difference() -> None:
    rng = random.Random(3)
    x = [round(rng.lognormvariate(-2.5, 0.4), 4) for _ in range(1_440)]
    y = [round(rng.lognormvariate(-2.6, 0.4), 4) for _ in range(1_440)]
    assert stats.hodges_lehmann(x, y, 0.95) == _sorted_hodges_lehmann(x, y, 0.95)
