"""Metric samples over a bake, and the charts people read them from.

A sample stands for its whole period: charts draw it as a point at the period's middle, never
as a line to the next one, because nothing is known between two samples.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_SAMPLES = 60


class MetricSample(BaseModel):
    """One period of one target group: requests, errors (requests its targets did not answer 2xx
    to 4xx: their 5xx and the load balancer's own 502s and 504s) and average latency."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    at: datetime = Field(description="Start of the period.")
    seconds: int = Field(ge=1, description="Length of the period.")
    requests: float = Field(ge=0)
    errors: float = Field(ge=0)
    latency: float | None = Field(default=None, ge=0, description="Seconds; None: no request.")

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


class BakeSamples(BaseModel):
    """Canary and live, period by period, over the window an analysis judged."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    canary: list[MetricSample] = Field(default_factory=list, max_length=MAX_SAMPLES)
    live: list[MetricSample] = Field(default_factory=list, max_length=MAX_SAMPLES)


class AlarmThreshold(BaseModel):
    """One of the canary's CloudWatch alarms, as the charts draw it: what it watches and where it fires."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    alarm: str
    watches: Literal["5xx_rate_percent", "latency_p99_seconds", "other"] = Field(
        description="What the alarm's threshold is a value of (the 5xx-rate chart draws the first)."
    )
    threshold: float
    comparison: str = Field(description="CloudWatch's ComparisonOperator, e.g. GreaterThanThreshold.")


Role = Literal["canary", "live", "weight"]


class ChartSeries(BaseModel):
    """One line of a chart: points (samples) or steps (a value that holds until it changes)."""

    model_config = ConfigDict(defer_build=True)

    label: str
    role: Role
    draw: Literal["points", "steps"]
    x: list[float] = Field(description="Unix seconds.")
    y: list[float | None]


class ChartMark(BaseModel):
    """A moment drawn as a vertical line inside the plot, numbered, named in the words below."""

    model_config = ConfigDict(defer_build=True)

    at: float = Field(description="Unix seconds.")
    label: str
    kind: Literal["phase", "alarm", "decision"] = "phase"
    when: str = Field(default="", description="The moment in words, e.g. relative to the start.")


class ChartThreshold(BaseModel):
    """A limit drawn as a horizontal line."""

    model_config = ConfigDict(defer_build=True)

    value: float
    label: str


class Chart(BaseModel):
    """Everything one chart shows, and its numbers in words for those who cannot see it."""

    model_config = ConfigDict(defer_build=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    unit: str
    x_min: float
    x_max: float
    y_max: float = Field(gt=0)
    series: list[ChartSeries]
    marks: list[ChartMark] = Field(default_factory=list)
    thresholds: list[ChartThreshold] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)
