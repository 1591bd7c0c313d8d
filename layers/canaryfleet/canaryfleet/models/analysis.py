"""Canary analysis: per-interval samples of canary and live in, a verdict with its numbers out.

The same models serve the analyse step (samples read from CloudWatch) and ``canaryfleet judge``
(samples from a file), so a policy tuned offline judges exactly as the platform will.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canaryfleet.models.text import OneLineText

# The most intervals one analysis judges a side on: a day of one-minute samples.
MAX_INTERVALS = 1_440

Direction = Literal["increase", "decrease", "either"]
MetricResult = Literal["pass", "fail", "inconclusive"]


class MetricSamples(BaseModel):
    """One metric's values per interval on the canary and on live.

    With request counts it is a ratio metric (an error rate, a payment success rate): each
    value is the share of that interval's requests, and the test uses the counts. Without,
    it is continuous (a latency) and the test compares the per-interval values by rank.
    ``None`` is an interval with no data.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    name: OneLineText = Field(min_length=1, max_length=64)
    direction: Direction = Field(
        default="increase", description="Which change is bad: an increase, a decrease, or either."
    )
    critical: bool = Field(
        default=False, description="Its failure fails the analysis whatever the score (and ends a bake)."
    )
    canary: tuple[float | None, ...] = Field(max_length=MAX_INTERVALS)
    live: tuple[float | None, ...] = Field(max_length=MAX_INTERVALS)
    canary_counts: tuple[float | None, ...] | None = Field(default=None, max_length=MAX_INTERVALS)
    live_counts: tuple[float | None, ...] | None = Field(default=None, max_length=MAX_INTERVALS)
    tolerance: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="A relative change this small is not a failure (0.1: up to 10% worse is tolerated). "
        "For a ratio metric it applies to the rarer outcome's rate (errors; a success rate's misses).",
    )
    min_samples: int = Field(
        default=3, ge=1, le=1_440, description="Fewer intervals with data on either side: inconclusive."
    )
    min_count: float = Field(
        default=0, ge=0, description="Ratio metrics: fewer canary requests than this: inconclusive."
    )

    @property
    def is_ratio(self) -> bool:
        return self.canary_counts is not None

    @model_validator(mode="after")
    def _consistent(self) -> MetricSamples:
        if (self.canary_counts is None) != (self.live_counts is None):
            raise ValueError(f"{self.name}: give both canary_counts and live_counts, or neither")
        values = [v for v in (*self.canary, *self.live) if v is not None]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{self.name}: values must be finite numbers")
        if self.canary_counts is not None and self.live_counts is not None:
            for side, counts, samples in (
                ("canary", self.canary_counts, self.canary),
                ("live", self.live_counts, self.live),
            ):
                if len(counts) != len(samples):
                    raise ValueError(
                        f"{self.name}: {side}_counts has {len(counts)} intervals, {side} has {len(samples)}"
                    )
                if any(c is not None and (not math.isfinite(c) or c < 0) for c in counts):
                    raise ValueError(f"{self.name}: {side}_counts must be finite and not negative")
            if any(not 0 <= v <= 1 for v in values):
                raise ValueError(
                    f"{self.name}: with counts, each value is a share of the interval's requests (0 to 1)"
                )
        return self


class AnalysisSamples(BaseModel):
    """One analysis: the metrics of one canary against live over one window."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    metrics: tuple[MetricSamples, ...] = Field(min_length=1, max_length=50)
    alpha: float = Field(
        default=0.05,
        gt=0,
        le=0.2,
        description="Chance that a canary as good as live fails the analysis, over all its metrics.",
    )
    pass_score: int = Field(
        default=100,
        ge=0,
        le=100,
        description="Below this score (share of judged metrics that pass) the analysis fails, as a "
        "critical metric's failure does. 100: any failure fails.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> AnalysisSamples:
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metric names must be unique: {', '.join(duplicates)}")
        return self


class MetricVerdict(BaseModel):
    """One metric's result, with the numbers behind it."""

    # Stores drop empty values (DynamoDB keeps no None): every optional number has its default.
    model_config = ConfigDict(defer_build=True, frozen=True)

    name: str
    result: MetricResult
    kind: Literal["ratio", "continuous"]
    direction: Direction
    critical: bool
    canary: float | None = Field(
        default=None, description="Ratio: the canary's rate. Continuous: the median interval."
    )
    live: float | None = None
    effect: float | None = Field(
        default=None,
        description="Relative change of canary against live (0.25: 25% higher); None if live is 0.",
    )
    effect_low: float | None = Field(
        default=None, description="The effect's confidence interval; None: unbounded."
    )
    effect_high: float | None = None
    confidence: float = Field(description="Of the interval, simultaneous over the analysis's metrics.")
    p_value: float | None = Field(default=None, description="The test's own p-value; None when not tested.")
    p_adjusted: float | None = Field(default=None, description="Holm-adjusted over the analysis's metrics.")
    test: str
    canary_samples: int
    live_samples: int
    canary_count: float | None = None
    live_count: float | None = None
    reason: str


class AnalysisVerdict(BaseModel):
    """Pass, fail or inconclusive, a score, and each metric's result."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    result: MetricResult
    score: int = Field(ge=0, le=100, description="Share of judged (not inconclusive) metrics that pass.")
    alpha: float
    metrics: tuple[MetricVerdict, ...]
    reasons: tuple[str, ...]


# -- what a policy asks for: metrics read from CloudWatch for each side --------------------

# What a metric's dimensions and expressions may name; each side fills in its own.
PLACEHOLDERS = ("application", "side", "target_group", "load_balancer", "auto_scaling_group")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_QUERY_ID = r"^[a-z][a-zA-Z0-9_]{0,30}$"  # GetMetricData's Id rule (a lower-case letter first)


def _known_placeholders(text: str, where: str) -> None:
    unknown = sorted({p for p in _PLACEHOLDER.findall(text) if p not in PLACEHOLDERS})
    if unknown:
        raise ValueError(
            f"{where}: unknown placeholder(s) {', '.join(unknown)}; known: {', '.join(PLACEHOLDERS)}"
        )


def _dimension_text(text: str, what: str, limit: int) -> None:
    """A dimension's name or value as CloudWatch takes it at the bake (PutMetricAlarm) and the
    analysis (GetMetricData), refused at the upload instead: 1 to ``limit`` characters (255 a
    name, 1,024 a value), "only ASCII characters", "at least one non-whitespace character", no
    control characters (botocore ``cloudwatch`` 2010-08-01, ``Dimension``, ``DimensionName``,
    ``DimensionValue``)."""
    if not 1 <= len(text) <= limit:
        raise ValueError(f"{what}: must be 1 to {limit} characters (got {len(text)})")
    if not all(" " <= c <= "~" for c in text) or not text.strip():
        raise ValueError(f"{what}: must be printable ASCII with at least one character that is not a space")


class MetricStatQuery(BaseModel):
    """One CloudWatch metric and statistic; dimension values may hold placeholders such as {target_group}."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    namespace: str = Field(min_length=1, max_length=255)
    metric_name: str = Field(min_length=1, max_length=255)
    dimensions: dict[str, str] = Field(default_factory=dict, max_length=30)
    stat: str = Field(
        default="Average",
        pattern=r"^(SampleCount|Average|Sum|Minimum|Maximum|p\d{1,2}(\.\d{1,2})?|p100)$",
        description="A statistic or a percentile (p99).",
    )

    @model_validator(mode="after")
    def _placeholders(self) -> MetricStatQuery:
        if self.namespace.startswith(":"):
            raise ValueError("namespace: must not start with ':' (CloudWatch's pattern is [^:].*)")
        for name, value in self.dimensions.items():
            _dimension_text(name, "a dimension name", 255)
            if name.startswith(":"):
                raise ValueError(f"dimension {name}: a name that starts with ':' is reserved for AWS")
            _dimension_text(value, f"dimension {name}", 1024)
            _known_placeholders(value, f"dimension {name}")
        return self

    def metric_stat(self, period_seconds: int) -> dict[str, Any]:
        """CloudWatch's MetricStat of this metric (GetMetricData and PutMetricAlarm alike)."""
        return {
            "Metric": {
                "Namespace": self.namespace,
                "MetricName": self.metric_name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
            },
            "Period": period_seconds,
            "Stat": self.stat,
        }

    def rendered(self, values: dict[str, str]) -> MetricStatQuery:
        return self.model_copy(
            update={"dimensions": {k: v.format(**values) for k, v in self.dimensions.items()}}
        )


class MetricQuery(BaseModel):
    """A CloudWatch metric, or a metric-math expression over named metrics (GetMetricData's two kinds)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    metric: MetricStatQuery | None = None
    expression: str | None = Field(default=None, min_length=1, max_length=1_024)
    inputs: dict[str, MetricStatQuery] = Field(
        default_factory=dict, max_length=10, description="The metrics the expression names, by id."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> MetricQuery:
        if (self.metric is None) == (self.expression is None):
            raise ValueError("give either metric or expression (with its inputs)")
        if self.expression is not None:
            if not self.inputs:
                raise ValueError("an expression needs the metrics it names in inputs")
            bad = sorted(i for i in self.inputs if not re.fullmatch(_QUERY_ID, i))
            if bad:
                raise ValueError(
                    "input ids must be a lower-case letter, then letters, digits or '_' (GetMetricData's"
                    f" Id): {', '.join(map(repr, bad))}"
                )
        elif self.inputs:
            raise ValueError("inputs belong to an expression")
        return self

    def expanded(self, qid: str) -> tuple[list[tuple[str, MetricStatQuery]], str | None]:
        """The query as the entries of one Metrics array under id ``qid``: an expression's inputs
        each under an id of its own (``<qid>_<input>``, ids being unique within one request) and
        the expression rewritten to name them; a metric is its one input and no expression."""
        if self.metric is not None:
            return [(qid, self.metric)], None
        assert self.expression is not None
        expression = self.expression
        inputs = []
        for name, metric in self.inputs.items():
            inner = f"{qid}_{name}"
            expression = re.sub(rf"\b{re.escape(name)}\b", inner, expression)
            inputs.append((inner, metric))
        return inputs, expression


def failed_requests(requests: float, target_5xx: float, answered: float) -> float:
    """A load balancer side's failed requests in one interval: those its targets did not answer
    2xx to 4xx, the load balancer's own 502s and 504s for it included (at least its targets' 5xx,
    at most its requests: each count is a datapoint of its own). logic/analysis/collect.py,
    ANSWERED, says why."""
    return min(requests, max(target_5xx, requests - answered))


class MetricDefinition(BaseModel):
    """An application metric in a policy: how to read it for each side, and how to judge it.

    A ratio metric has ``requests``: ``value`` then counts the events per interval (errors,
    payments that succeeded) and the judge uses the counts. Without it, ``value`` is the
    metric itself per interval (a latency), judged by rank.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    name: OneLineText = Field(min_length=1, max_length=64)
    value: MetricQuery
    requests: MetricQuery | None = None
    direction: Direction = "increase"
    critical: bool = False
    tolerance: float = Field(default=0.0, ge=0, lt=1)
    min_samples: int = Field(default=3, ge=1, le=1_440)
    min_count: float = Field(default=0, ge=0)
