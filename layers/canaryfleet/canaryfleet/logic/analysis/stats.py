"""The statistics the canary judge needs, in pure Python (the Lambda layer carries no scipy).

Each function follows the definition ``scipy.stats`` uses, so the unit tests compare the two
(tests/unit/test_analysis_stats.py):

- :func:`binom_test` is ``scipy.stats.binomtest(k, n, p, alternative).pvalue``, and
  :func:`clopper_pearson` its ``proportion_ci(method="exact")``;
- :func:`mann_whitney_u` is ``scipy.stats.mannwhitneyu(x, y, alternative=...)`` with its default
  ``method="auto"``: the exact null distribution when one sample has at most 8 values and
  there is no tie, else the normal approximation with the tie correction and a continuity
  correction;
- :func:`holm` is Holm's step-down adjustment (``statsmodels``' ``multipletests(method="holm")``).

The incomplete beta function is the continued fraction of Numerical Recipes (3rd ed., 6.4),
evaluated with the modified Lentz method.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Literal

Alternative = Literal["greater", "less", "two-sided"]

_NORMAL = NormalDist()
_EPS = 1e-15
_TINY = 1e-300


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z, accurate in the far tail (erfc, not 1 - cdf)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def normal_ppf(q: float) -> float:
    """The standard normal quantile (Wichura's AS241, through the standard library)."""
    return _NORMAL.inv_cdf(q)


def _betacf(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    # The continued fraction converges fast below its mean; above it, use the symmetry.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def binom_pmf(k: int, n: int, p: float) -> float:
    if k < 0 or k > n:
        return 0.0
    if p <= 0.0:
        return 1.0 if k == 0 else 0.0
    if p >= 1.0:
        return 1.0 if k == n else 0.0
    log_pmf = (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )
    return math.exp(log_pmf)


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return betainc(n - k, k + 1, 1.0 - p)


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X > k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 1.0
    if k >= n:
        return 0.0
    return betainc(k + 1, n - k, p)


def _search(a: Callable[[int], float], d: float, lo: int, hi: int) -> int:
    """The index i in [lo, hi] with a(i) <= d < a(i + 1), ``a`` ascending (scipy's binomtest search)."""
    while lo < hi:
        mid = lo + (hi - lo) // 2
        value = a(mid)
        if value < d:
            lo = mid + 1
        elif value > d:
            hi = mid - 1
        else:
            return mid
    return lo if a(lo) <= d else lo - 1


def binom_test(k: int, n: int, p: float, alternative: Alternative) -> float:
    """The exact binomial test's p-value for k successes in n trials against success chance p."""
    if n == 0:
        return 1.0
    if alternative == "less":
        return binom_cdf(k, n, p)
    if alternative == "greater":
        return binom_sf(k - 1, n, p)
    d = binom_pmf(k, n, p)
    rerr = 1 + 1e-7
    if k == p * n:
        return 1.0
    if k < p * n:
        ix = _search(lambda x: -binom_pmf(x, n, p), -d * rerr, math.ceil(p * n), n)
        y = n - ix + int(d * rerr == binom_pmf(ix, n, p))
        pval = binom_cdf(k, n, p) + binom_sf(n - y, n, p)
    else:
        ix = _search(lambda x: binom_pmf(x, n, p), d * rerr, 0, math.floor(p * n))
        pval = binom_cdf(ix, n, p) + binom_sf(k - 1, n, p)
    return min(1.0, pval)


def _find_p(f: Callable[[float], float]) -> float:
    """The root in (0, 1) of ``f``, which is monotone there, by bisection to double precision."""
    lo, hi = 0.0, 1.0
    f_lo = f(lo)
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        f_mid = f(mid)
        if (f_mid < 0) == (f_lo < 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided confidence interval of a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    alpha = (1 - confidence) / 2
    low = 0.0 if k == 0 else _find_p(lambda p: binom_sf(k - 1, n, p) - alpha)
    high = 1.0 if k == n else _find_p(lambda p: binom_cdf(k, n, p) - alpha)
    return low, high


# -- Mann-Whitney U ------------------------------------------------------------------------


def rank_average(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Ranks from 1, ties sharing their average rank; and the size of each group of ties."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        average = (i + j + 2) / 2
        for position in range(i, j + 1):
            ranks[order[position]] = average
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


@lru_cache(maxsize=256)
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """How many arrangements of n1 x's and n2 y's give each U (0..n1*n2), without ties."""
    # counts[m][u] for m y's, built up one x at a time: f(i, m, u) = f(i-1, m, u-m) + f(i, m-1, u).
    previous = [[1] for _ in range(n2 + 1)]  # i = 0: only U = 0
    for i in range(1, n1 + 1):
        current: list[list[int]] = [[1]]  # m = 0: only U = 0
        for m in range(1, n2 + 1):
            size = i * m + 1
            row = [0] * size
            for u, count in enumerate(previous[m]):  # an x after all m y's adds m
                row[u + m] += count
            for u, count in enumerate(current[m - 1]):
                row[u] += count
            current.append(row)
        previous = current
    return tuple(previous[n2])


def _u_exact_sf(u: float, n1: int, n2: int) -> float:
    """P(U >= u) under the null, from the exact distribution (scipy's ``_MWU.sf``)."""
    counts = _u_counts(min(n1, n2), max(n1, n2))
    total = sum(counts)
    start = max(0, math.ceil(u))
    return sum(counts[start:]) / total


@dataclass(frozen=True)
class MannWhitney:
    u1: float  # the statistic of the first sample (scipy's ``statistic``)
    p_value: float
    method: Literal["exact", "asymptotic"]


def mann_whitney_u(x: Sequence[float], y: Sequence[float], alternative: Alternative) -> MannWhitney:
    """Mann-Whitney U test of x against y ("greater": x tends to be larger)."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("the Mann-Whitney U test needs at least one value in each sample")
    ranks, ties = rank_average([*x, *y])
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    if alternative == "greater":
        u, factor = u1, 1
    elif alternative == "less":
        u, factor = u2, 1
    else:
        u, factor = max(u1, u2), 2
    exact = (n1 <= 8 or n2 <= 8) and all(t == 1 for t in ties)
    if exact:
        p = _u_exact_sf(u, n1, n2)
    else:
        n = n1 + n2
        tie_term = sum(t**3 - t for t in ties)
        variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
        numerator = u - n1 * n2 / 2 - 0.5
        # Every value equal: the data say nothing.
        p = 1.0 if variance <= 0 else normal_sf(numerator / math.sqrt(variance))
    return MannWhitney(
        u1=u1, p_value=min(1.0, max(0.0, p * factor)), method="exact" if exact else "asymptotic"
    )


def mann_whitney_floor(n1: int, n2: int, alternative: Alternative) -> float:
    """The smallest p-value the rank test can give with n1 and n2 values, whatever they are.

    Under the null hypothesis every one of the C(n1 + n2, n1) arrangements of the two samples'
    ranks is equally likely, so the most extreme one has probability 1 / C(n1 + n2, n1) (twice
    that for two sides): with three intervals a side, 1/20. Ties only make it larger. However
    far apart the samples are, fewer values cannot show a difference below this level.
    """
    floor = 1 / math.comb(n1 + n2, n1)
    return min(1.0, floor * (2 if alternative == "two-sided" else 1))


def mann_whitney_needs(level: float, alternative: Alternative) -> int:
    """The fewest values a side (as many on each) whose floor is at or below ``level``."""
    return next(n for n in range(1, 64) if mann_whitney_floor(n, n, alternative) <= level)


def hodges_lehmann(
    x: Sequence[float], y: Sequence[float], confidence: float
) -> tuple[float, float | None, float | None]:
    """The shift of x against y (median of all differences x_i - y_j) and its confidence interval.

    The interval is the distribution-free one of Moses (Hollander, Wolfe and Chicken, Nonparametric
    Statistical Methods, 3rd ed., 4.3), with the normal approximation of U's critical value. With
    too few values for the confidence asked, a bound is None (unbounded).
    """
    differences = _Differences(x, y)
    count = differences.count
    middle = count // 2
    if count % 2:
        shift = differences.kth(middle + 1)
    else:
        shift = (differences.kth(middle) + differences.kth(middle + 1)) / 2
    n1, n2 = len(x), len(y)
    z = normal_ppf(0.5 + confidence / 2)
    k = math.floor(n1 * n2 / 2 - z * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12))
    if k < 1:
        return shift, None, None
    return shift, differences.kth(k), differences.kth(count - k + 1)


class _Differences:
    """The n1 * n2 differences x_i - y_j, their order statistics found without making them.

    A day's bake at one-minute intervals has 1,440 values a side: sorting the two million
    differences took half a second of CPU and 75 MB for each metric, more than the analysis
    function has for a few metrics. Here each order statistic is a selection (Monahan, "Algorithm
    616: fast computation of the Hodges-Lehmann location estimator", ACM TOMS 10, 1984): a pivot
    drawn among the differences still possible, counted against with two pointers, narrows every
    row's range of them; O((n1 + n2) log(n1 n2)) expected, in O(n1 + n2) memory, and the very
    differences a sort of them would give.
    """

    def __init__(self, x: Sequence[float], y: Sequence[float]) -> None:
        self._x = sorted(x)
        self._y = sorted(y, reverse=True)  # so that each row x_i - y_j ascends with j
        self.count = len(self._x) * len(self._y)
        self._draw = random.Random(0)  # noqa: S311 - a pivot, not a secret; fixed for the same work each time

    def _at(self, i: int, j: int) -> float:
        """Row i's j-th smallest difference (each is computed as ``x_i - y_j``, as a sort would)."""
        return self._x[i] - self._y[j]

    def _counts(self, pivot: float) -> tuple[list[int], list[int]]:
        """Per row, how many differences are below the pivot, and how many at most it.

        Compared as computed, never rearranged (``x - pivot`` against ``y`` rounds otherwise): a
        row ascends, and rounding keeps order, so each row's counts are at most the last row's,
        and two pointers walk them once.
        """
        x, y = self._x, self._y
        below: list[int] = []
        at_most: list[int] = []
        lt = le = len(y)
        for xi in x:
            while lt and xi - y[lt - 1] >= pivot:
                lt -= 1
            while le and xi - y[le - 1] > pivot:
                le -= 1
            below.append(lt)
            at_most.append(le)
        return below, at_most

    def kth(self, k: int) -> float:
        """The k-th smallest difference (1-based)."""
        if not 1 <= k <= self.count:
            raise ValueError(f"no difference {k} of {self.count}")
        rows = len(self._x)
        low, high = [0] * rows, [len(self._y)] * rows  # row i's candidates: j in [low, high)
        while True:
            left = sum(h - lo for lo, h in zip(low, high, strict=True))
            pick = self._draw.randrange(left)
            for i in range(rows):
                width = high[i] - low[i]
                if pick < width:
                    pivot = self._at(i, low[i] + pick)
                    break
                pick -= width
            below, at_most = self._counts(pivot)
            if k <= sum(below):
                high = [min(h, b) for h, b in zip(high, below, strict=True)]
            elif k > sum(at_most):
                low = [max(lo, a) for lo, a in zip(low, at_most, strict=True)]
            else:
                return pivot


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# -- several metrics at once ---------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: reject where adjusted <= alpha, family-wise error <= alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * p_values[index]))
        adjusted[index] = running
    return adjusted
