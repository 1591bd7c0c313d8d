"""Logger, Tracer and Metrics, created once; service and namespace come from POWERTOOLS_* variables."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def emit_dimensioned(name: str, unit: MetricUnit, value: float, dimension: str, dimension_value: str) -> None:
    """One metric with its own dimension, flushed at once (the handler's metrics keep theirs).

    Unlike ``single_metric``, this honours POWERTOOLS_METRICS_DISABLED.
    """
    own = EphemeralMetrics()
    own.add_dimension(name=dimension, value=dimension_value)
    own.add_metric(name=name, unit=unit, value=value)
    own.flush_metrics()
