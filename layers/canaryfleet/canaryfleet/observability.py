"""Logger, Tracer and Metrics, created once; service and namespace come from POWERTOOLS_* variables."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from canaryfleet.errors import transient_aws

# The X-Ray SDK patches what the runtime calls out with: botocore (every AWS call a subsegment,
# the service map's edges) and http.client (the Slack Web API, through urllib). Naming them
# keeps the segments ``patch_all`` gave and skips its probing of a dozen database and HTTP
# libraries the layer does not carry (figure 4 of bench/README.md).
TRACED_LIBRARIES = ("botocore", "httplib")

logger = Logger()
metrics = Metrics()
# Made when first imported (PEP 562, ``__getattr__`` below), not with the module: every
# function imports it (``entry_point``) and so builds it at import, as before; what runs
# outside Lambda and never asks for it (the operator's CLI, which uses the registry and the
# stores) skips the X-Ray SDK, which off Lambda builds a centralised sampler with botocore
# clients at import and patches botocore: 0.3 s of CPU per command.
tracer: Tracer
_tracer_lock = threading.Lock()


def _made_tracer() -> Tracer:
    with _tracer_lock:
        made = globals().get("tracer")
        if made is None:
            made = globals()["tracer"] = Tracer(patch_modules=TRACED_LIBRARIES)
        return cast(Tracer, made)


def __getattr__(name: str) -> Tracer:
    if name != "tracer":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _made_tracer()


def untraced_host(url: str) -> None:
    """Keep the X-Ray SDK from recording calls to ``url``'s host.

    The SDK records a traced HTTP call's URL in its subsegment (``http.request.url``), with only
    the query string taken off. A Slack incoming webhook's or response URL's path is its secret
    (Slack: "Keep it secret, keep it safe"; a response URL posts to its channel for 30 minutes):
    the calls to them are left out of the trace; the Web API's (its token in a header) stay in.
    """
    host = urlsplit(url).hostname
    if host:
        _made_tracer().ignore_endpoint(hostname=host)


def emit_dimensioned(name: str, unit: MetricUnit, value: float, dimension: str, dimension_value: str) -> None:
    """One metric with its own dimension, flushed at once (the handler's metrics keep theirs).

    Unlike ``single_metric``, this honours POWERTOOLS_METRICS_DISABLED.
    """
    own = EphemeralMetrics()
    own.add_dimension(name=dimension, value=dimension_value)
    own.add_metric(name=name, unit=unit, value=value)
    own.flush_metrics()


Handler = TypeVar("Handler", bound=Callable[..., Any])


def entry_point(*, correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """The Powertools stack every function's ``lambda_handler`` wears, said once.

    Outermost first: the logger's Lambda context (state cleared between invocations, the
    correlation id read from the event where one is named), metrics flushed after the
    call, the X-Ray segment around it, and an AWS call's failure that botocore's retries did not
    outlast (throttling, 5xx, no answer) raised as TransientAwsError, which the state machines
    retry by that name.
    """

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def translated(event: Any, context: Any) -> Any:
            try:
                return handler(event, context)
            except Exception as exc:
                transient = transient_aws(exc)
                if transient is None:
                    raise
                # The state machines retry TransientAwsError for minutes (statemachines/
                # rollout.asl.yaml, aws-transient): a throttled CloudWatch call at a burst of
                # bakes is waited out, never a rollback.
                logger.warning("AWS call failed after botocore's retries", extra={"error": str(exc)[:300]})
                raise transient from exc

        traced = _made_tracer().capture_lambda_handler(translated)
        measured = metrics.log_metrics(traced)
        return cast(
            Handler,
            # log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: an event carries link
            # signatures, Slack request signatures and response URLs, which must never be logged.
            logger.inject_lambda_context(
                log_event=False, correlation_id_path=correlation_id_path, clear_state=True
            )(measured),
        )

    return wrap
