"""Rollout policy: the desired shape of a rollout, as a list of canary steps.

In the spirit of Argo Rollouts' canary steps, a step is a one-of: set a weight, bake (and
analyse), or wait for approval. The platform default reproduces canaryfleet's original
design; an application overrides it in its registry entry, and a bundle may carry a
``rollout.yaml`` that overrides it within :class:`PolicyLimits`.
"""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from canaryfleet.models.analysis import MAX_INTERVALS, MetricDefinition

# GetMetricData's periods: 1, 5, 10, 20 or 30 seconds (high-resolution metrics) or a multiple of 60
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricStat.html, Period;
# data older than 3 hours comes only at whole minutes, which bakes that long should use).
_HIGH_RESOLUTION_PERIODS = (1, 5, 10, 20, 30)
# CloudWatch keeps data points of a period under 60 seconds for 3 hours ("Data points with a period
# of less than 60 seconds are available for 3 hours", API_GetMetricData; API_MetricStat, Period: a
# StartTime more than 3 hours ago takes a multiple of 60 seconds "or no data points in that time
# range is returned"). An analysis reads its bake from the bake's start once it ends, seconds later,
# or minutes when its task is retried: a bake sampled more finely lasts 5 minutes less than that.
HIGH_RESOLUTION_KEPT_SECONDS = 3 * 3_600
LONGEST_FINE_BAKE_SECONDS = HIGH_RESOLUTION_KEPT_SECONDS - 300


def _period_at_least(seconds: int) -> int:
    """The shortest period GetMetricData takes that is at least ``seconds``."""
    return next((p for p in _HIGH_RESOLUTION_PERIODS if p >= seconds), 60 * -(-seconds // 60))


class _Step(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class SetWeight(_Step):
    """Send ``weight`` percent of the listener rule's traffic to the canary target group."""

    kind: Literal["set_weight"] = "set_weight"
    weight: int = Field(ge=0, le=100, description="Canary share in percent; live gets the rest.")


class AnalysisSpec(BaseModel):
    """How canary is judged against live over a bake (CloudWatch metrics of the two target groups)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    min_requests: int = Field(default=100, ge=1, description="Fewer canary requests than this: inconclusive.")
    # The fixed limits of the judge before the statistical one (logic/analysis/). Accepted so
    # that existing policies still parse; no judge reads them (bench/baselines keeps that judge).
    max_error_rate: float = Field(
        default=0.01, ge=0, le=1, description="Not used since the statistical judge."
    )
    max_error_rate_increase: float = Field(
        default=0.005, ge=0, le=1, description="Not used since the statistical judge."
    )
    max_latency_ratio: float = Field(default=1.25, ge=1, description="Not used since the statistical judge.")
    interval_seconds: int = Field(
        default=60,
        ge=1,
        le=3_600,
        description="One sample per side per interval (GetMetricData's period): 60 for the load balancer's "
        "one-minute metrics (a multiple of the platform's LoadBalancerMetricsPeriod, else the upload is "
        "rejected); 1, 5, 10, 20 or 30 only for high-resolution metrics (the local cloud's).",
    )
    min_intervals: int = Field(
        default=3,
        ge=1,
        le=1_440,
        description="The load balancer's latency: fewer intervals: inconclusive. Latency also needs enough "
        "intervals for its rank test to fail: 4 a side with the 5xx rate at alpha 0.05, else inconclusive.",
    )
    alpha: float = Field(
        default=0.05,
        gt=0,
        le=0.2,
        description="Chance that a canary as good as live fails the analysis, over all its metrics.",
    )
    pass_score: int = Field(
        default=100, ge=0, le=100, description="A score (share of judged metrics that pass) below it fails."
    )
    alb_metrics: tuple[Literal["5xx_rate", "latency"], ...] = Field(
        default=("5xx_rate", "latency"),
        description="The load balancer's metrics judged, both critical: the 5xx rate (on request "
        "counts) and the target response time.",
    )
    metrics: tuple[MetricDefinition, ...] = Field(
        default=(), max_length=20, description="The application's own metrics, judged beside them."
    )
    # The load balancer "measures and sends its metrics in 60-second intervals"
    # (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html),
    # and CloudWatch makes one-minute metrics available about two minutes later
    # (https://docs.datadoghq.com/integrations/guide/cloud-metric-delay/). A window ending "now" would
    # count the last minutes short; it ends instead at the last whole minute this long ago.
    metrics_delay_seconds: int = Field(
        default=120,
        ge=0,
        le=900,
        description="How late the load balancer's metrics reach CloudWatch; default 120. The window ends at "
        "the last whole minute before now minus this. 0: metrics are complete at once (the local cloud's "
        "simulator publishes each datapoint as it happens), so the window ends now.",
    )

    @field_validator("interval_seconds")
    @classmethod
    def _a_period_cloudwatch_takes(cls, value: int) -> int:
        if value not in _HIGH_RESOLUTION_PERIODS and value % 60:
            raise ValueError("interval_seconds must be 1, 5, 10, 20, 30 or a multiple of 60 (GetMetricData)")
        return value

    @model_validator(mode="after")
    def _metrics_to_judge(self) -> AnalysisSpec:
        names = [m.name for m in self.metrics]
        taken = sorted({n for n in names if names.count(n) > 1 or n in ("5xx rate", "latency")})
        if taken:
            raise ValueError(f"metric names must be unique and not a built-in's: {', '.join(taken)}")
        if not self.alb_metrics and not self.metrics:
            raise ValueError("an analysis needs at least one metric")
        return self


class Bake(_Step):
    """Wait while the canary serves traffic; an alarm or an abort ends it early."""

    kind: Literal["bake"] = "bake"
    duration_seconds: int = Field(ge=1, le=86_400, description="How long to bake. Default 600.")
    analysis: AnalysisSpec | None = Field(
        default_factory=AnalysisSpec, description="Judge canary against live at the end; None skips it."
    )


class OnTimeout(StrEnum):
    ROLLBACK = "rollback"
    PROMOTE = "promote"


class Approval(_Step):
    """Wait for a person to approve or reject."""

    kind: Literal["approval"] = "approval"
    timeout_seconds: int = Field(default=86_400, ge=1, le=7 * 86_400, description="Default 24 hours.")
    on_timeout: OnTimeout = Field(default=OnTimeout.ROLLBACK, description="What an unanswered request means.")


Step = Annotated[SetWeight | Bake | Approval, Field(discriminator="kind")]


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The steps a deployment window guards: starting the canary, and going live.
WindowGuard = Literal["canary", "live"]


class DeploymentWindow(BaseModel):
    """When the application may be released: on ``days``, from ``start`` to ``end`` local time.

    ``end`` before ``start`` is a window across midnight (``days`` are the days it opens). Times
    may carry seconds. Outside every window of a policy, a guarded step waits for the next one.
    """

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    days: tuple[Weekday, ...] = Field(default=WEEKDAYS, min_length=1, description="Default: every day.")
    start: time = Field(description="Local time the window opens (HH:MM or HH:MM:SS).")
    end: time = Field(description="Local time it closes; before start: the next day.")
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Asia/Kolkata. Default UTC.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("start", "end")
    @classmethod
    def _naive(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give the time without an offset; the window's timezone says where")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> DeploymentWindow:
        if self.start == self.end:
            raise ValueError("a window's start and end are equal: it would never be open")
        return self


class RolloutPolicy(BaseModel):
    """The steps a rollout takes between the canary deployment and the live deployment."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    steps: tuple[Step, ...] = Field(min_length=1, max_length=20)
    deployment_timeout_seconds: int = Field(
        default=3_600, ge=1, le=6 * 3_600, description="Longest wait for one CodeDeploy deployment."
    )
    inconclusive_extensions: int = Field(
        default=1, ge=0, le=3, description="Times an inconclusive bake is extended before a human decides."
    )
    windows: tuple[DeploymentWindow, ...] = Field(
        default=(),
        max_length=14,
        description="When guarded steps may run; empty (the default): at any time. Freezes apply either way.",
    )
    window_guards: tuple[WindowGuard, ...] = Field(
        default=("canary", "live"),
        description="Steps that wait for a window and for the end of a freeze. Default: starting the canary "
        "and going live, so an approval given just before a freeze does not go live inside it.",
    )

    def intervals_finer_than(self, metrics_period: int) -> list[str]:
        """The bakes that sample the load balancer's metrics more often than it publishes them.

        The load balancer "measures and sends its metrics in 60-second intervals" (Elastic Load
        Balancing, "CloudWatch metrics for your Application Load Balancer"): a shorter interval
        leaves most of the analysis's samples empty, and its fail-fast alarms would be
        high-resolution alarms on a one-minute metric, which CloudWatch evaluates only at the
        minute and bills as high-resolution (botocore ``cloudwatch``, ``PutMetricAlarmInput.Period``).
        """
        problems: list[str] = []
        for index, step in enumerate(self.steps):
            spec = step.analysis if isinstance(step, Bake) else None
            if spec is None or not spec.alb_metrics or spec.interval_seconds % metrics_period == 0:
                continue
            problems.append(
                f"steps[{index}] samples the load balancer's metrics every {spec.interval_seconds} s, but "
                f"it publishes them every {metrics_period} s: make interval_seconds a multiple of "
                f"{metrics_period}"
            )
        return problems

    def bakes_beyond_their_analysis(self) -> list[str]:
        """The bakes whose analysis could not read them whole: sampled under a minute for longer
        than CloudWatch keeps such data (the analysis would find no data and be inconclusive), or
        longer than MAX_INTERVALS of their intervals (more samples than one analysis judges)."""
        problems: list[str] = []
        for index, step in enumerate(self.steps):
            if not isinstance(step, Bake) or step.analysis is None:
                continue
            seconds, every = step.duration_seconds, step.analysis.interval_seconds
            if every < 60 and seconds > LONGEST_FINE_BAKE_SECONDS:
                problems.append(
                    f"steps[{index}] bakes {seconds} s sampled every {every} s, but CloudWatch keeps "
                    f"data of a period under 60 s for 3 hours and the analysis reads the bake from its "
                    f"start: bake at most {LONGEST_FINE_BAKE_SECONDS} s, or make interval_seconds 60 or more"
                )
            elif seconds > MAX_INTERVALS * every:
                problems.append(
                    f"steps[{index}] bakes {seconds} s sampled every {every} s, more than the "
                    f"{MAX_INTERVALS} intervals one analysis judges: bake at most {MAX_INTERVALS * every} s, "
                    f"or make interval_seconds {_period_at_least(-(-seconds // MAX_INTERVALS))}"
                )
        return problems

    @model_validator(mode="after")
    def _weights_before_bakes(self) -> RolloutPolicy:
        weight = 0
        for step in self.steps:
            if isinstance(step, SetWeight):
                weight = step.weight
            elif isinstance(step, Bake) and weight == 0:
                raise ValueError(
                    "a bake needs a set_weight above 0 before it: nothing would reach the canary"
                )
        return self

    @property
    def max_weight(self) -> int:
        return max((s.weight for s in self.steps if isinstance(s, SetWeight)), default=0)


def default_policy() -> RolloutPolicy:
    """5% canary, a 10-minute bake with analysis, manual approval (24 h, roll back), then live."""
    return RolloutPolicy(
        steps=(SetWeight(weight=5), Bake(duration_seconds=600), Approval()),
    )


class PolicyLimits(BaseModel):
    """What a bundle's rollout.yaml may not go beyond (set by the platform)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    max_canary_weight: int = Field(default=50, ge=0, le=100)
    min_bake_seconds: int = Field(default=300, ge=1)
    require_approval: bool = Field(default=True, description="A bundle cannot remove the human.")
    allow_promote_on_timeout: bool = Field(default=False)
