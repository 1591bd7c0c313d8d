"""CloudWatch evaluating metric-math alarms: PutMetricAlarm's limits, and the alarm state changes.

moto stores a metric-math alarm and never evaluates it. This stand-in evaluates the critical
metrics' fail-fast alarms (``canaryfleet-<application>.<metric>``, put by the bake) on the fleet
simulator's ticks, over the metric data in moto's CloudWatch, and puts each state change on the
default bus as the documented "CloudWatch Alarm State Change" event. The fleet's own alarms are
played by the simulator (a scenario's ``trips_alarms``), not evaluated here.

Sources:
- PutMetricAlarm, https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html:
  ``Metrics`` holds up to 20 MetricDataQuery structures, at most 10 with ``MetricStat`` and 10
  with ``Expression``, exactly one with ``ReturnData`` true; ``Period`` is 10, 20, 30 or a
  multiple of 60; ``DatapointsToAlarm`` is at most ``EvaluationPeriods``, and
  ``EvaluationPeriods`` x ``Period`` at most 86,400 seconds; a new alarm starts in
  INSUFFICIENT_DATA, and an update keeps the alarm's state.
- MetricDataQuery, https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDataQuery.html:
  an ``Id`` starts with a lower-case letter and holds letters, numbers and underscores.
- Alarm evaluation ("M out of N", ``TreatMissingData``),
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html.
- The event, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html.

Expressions: the grammar the platform writes, and only it: numbers, query ids, ``+ - * / ^``,
comparisons, ``AND``/``OR``, parentheses, ``ABS``, ``IF(c, a, b)`` and ``FILL(id, number)``:
operators and functions of metric math's syntax
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html; it has no
square root function, hence ``^ 0.5``). An alarm this stand-in evaluates whose expression uses
anything else is refused at PutMetricAlarm with a message saying so: the local cloud does not
guess.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse

from canaryfleet_local.standins.eventbridge import emit_service_event, service_event

_QUERY_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")
_MAX_QUERIES, _MAX_STATS, _MAX_EXPRESSIONS = 20, 10, 10
# "An alarm's total current evaluation period can be no longer than seven days, so Period
# multiplied by EvaluationPeriods can't be more than 604,800 seconds. For alarms with a period of
# less than one hour (3,600 seconds), the total evaluation period can't be longer than one day
# (86,400 seconds)" (botocore cloudwatch model, PutMetricAlarmInput.Period).
_MAX_EVALUATION_SECONDS, _MAX_EVALUATION_SECONDS_UNDER_AN_HOUR = 604_800, 86_400


def evaluation_too_long(period: int, evaluation_periods: int) -> str | None:
    """PutMetricAlarm's refusal of a total evaluation period over its limit, or None."""
    total = period * evaluation_periods
    if period < 3_600 and total > _MAX_EVALUATION_SECONDS_UNDER_AN_HOUR:
        return (
            "EvaluationPeriods x Period must not exceed 86,400 seconds (one day) for a period under an hour."
        )
    if total > _MAX_EVALUATION_SECONDS:
        return "EvaluationPeriods x Period must not exceed 604,800 seconds (seven days)."
    return None


_EVALUATED = re.compile(r"^canaryfleet-[a-z][a-z0-9-]*\.")  # the fail-fast alarms
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Value = float | None


def valid_period(period: int) -> bool:
    return period in (10, 20, 30) or (period > 0 and period % 60 == 0)


# -- expressions -----------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|[-+*/^(),<>]))"
)
_FUNCTIONS = {"ABS": 1, "IF": 3, "FILL": 2}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


class UnsupportedExpression(ValueError):
    """An expression outside the grammar this stand-in evaluates."""


Node = tuple[Any, ...]


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            if text[position:].strip() == "":
                break
            raise UnsupportedExpression(f"cannot read {text[position:]!r}")
        tokens.append(next(g for g in found.groups() if g is not None))
        position = found.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise UnsupportedExpression(f"expected {expected or 'more'}, found {token or 'the end'}")
        self.at += 1
        return token

    def parse(self) -> Node:
        node = self.logical()
        if self.peek() is not None:
            raise UnsupportedExpression(f"unexpected {self.peek()!r}")
        return node

    def logical(self) -> Node:
        node = self.comparison()
        while self.peek() in ("AND", "OR"):
            node = (self.take(), node, self.comparison())
        return node

    def comparison(self) -> Node:
        node = self.additive()
        if self.peek() in _COMPARE:
            node = (self.take(), node, self.additive())
        return node

    def additive(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            node = (self.take(), node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            node = (self.take(), node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return ("neg", self.unary())
        return self.power()

    def power(self) -> Node:
        node = self.primary()
        if self.peek() == "^":  # binds tighter than * and /
            node = (self.take(), node, self.unary())
        return node

    def primary(self) -> Node:
        lexeme = self.take()
        if lexeme == "(":
            node = self.logical()
            self.take(")")
            return node
        if re.match(r"^\d", lexeme):
            return ("num", float(lexeme))
        if self.peek() == "(":
            if lexeme not in _FUNCTIONS:
                raise UnsupportedExpression(f"function {lexeme} is not evaluated by the local cloud")
            self.take("(")
            args = [self.logical()]
            while self.peek() == ",":
                self.take()
                args.append(self.logical())
            self.take(")")
            if len(args) != _FUNCTIONS[lexeme]:
                raise UnsupportedExpression(f"{lexeme} takes {_FUNCTIONS[lexeme]} argument(s)")
            if lexeme == "FILL" and (args[0][0] != "id" or args[1][0] != "num"):
                raise UnsupportedExpression("FILL is evaluated only as FILL(id, number)")
            return ("call", lexeme, *args)
        if lexeme in ("AND", "OR") or not re.match(r"^[a-z]", lexeme):
            raise UnsupportedExpression(f"unexpected {lexeme!r}")
        return ("id", lexeme)


def parse_expression(text: str) -> Node:
    return _Parser(text).parse()


def referenced_ids(node: Node) -> set[str]:
    if node[0] == "id":
        return {node[1]}
    return set().union(*(referenced_ids(n) for n in node[1:] if isinstance(n, tuple)))


def evaluate(node: Node, values: dict[str, Value]) -> Value:
    """One timestamp's value; None where an input has no datapoint or the arithmetic has no answer."""
    kind = node[0]
    if kind == "num":
        return float(node[1])
    if kind == "id":
        return values.get(node[1])
    if kind == "neg":
        inner = evaluate(node[1], values)
        return None if inner is None else -inner
    if kind == "call":
        return _call(node[1], node[2:], values)
    return _binary(kind, evaluate(node[1], values), evaluate(node[2], values))


def _call(name: str, args: tuple[Node, ...], values: dict[str, Value]) -> Value:
    if name == "FILL":
        found = evaluate(args[0], values)
        return float(args[1][1]) if found is None else found
    if name == "IF":
        condition = evaluate(args[0], values)
        if condition is None:
            return None
        return evaluate(args[1] if condition != 0 else args[2], values)
    inner = evaluate(args[0], values)
    if inner is None:
        return None
    return abs(inner)  # ABS


def _binary(kind: str, left: Value, right: Value) -> Value:
    if left is None or right is None:
        return None
    if kind in ("AND", "OR"):
        return float((left != 0 and right != 0) if kind == "AND" else (left != 0 or right != 0))
    if kind in _COMPARE:
        return float(_COMPARE[kind](left, right))
    if kind == "/":
        return None if right == 0 else left / right
    if kind == "^":
        return _power(left, right)
    return {"+": left + right, "-": left - right, "*": left * right}[kind]


def _power(base: float, exponent: float) -> Value:
    if (base < 0 and not float(exponent).is_integer()) or (base == 0 and exponent < 0):
        return None  # no real answer
    return float(base**exponent)


# -- PutMetricAlarm's rules ----------------------------------------------------------------


def check_put_metric_alarm(request: dict[str, Any]) -> None:
    """Refuse what PutMetricAlarm refuses (the module's sources), with AWS's error type."""
    metrics: list[dict[str, Any]] = request.get("Metrics") or []
    evaluation_periods = int(request.get("EvaluationPeriods") or 0)
    datapoints = request.get("DatapointsToAlarm")
    if evaluation_periods < 1:
        raise ValidationError("EvaluationPeriods must be at least 1.")
    if datapoints is not None and not 1 <= int(datapoints) <= evaluation_periods:
        raise ValidationError("DatapointsToAlarm must be between 1 and EvaluationPeriods.")
    if not metrics:
        period = int(request.get("Period") or 0)
        if period and not valid_period(period):
            raise ValidationError("Period must be 10, 20, 30 or a multiple of 60.")
        if (too_long := evaluation_too_long(period, evaluation_periods)) is not None:
            raise ValidationError(too_long)
        return
    stats = [m for m in metrics if "MetricStat" in m]
    expressions = [m for m in metrics if "Expression" in m]
    if len(metrics) > _MAX_QUERIES or len(stats) > _MAX_STATS or len(expressions) > _MAX_EXPRESSIONS:
        raise ValidationError(
            "Metrics holds at most 20 queries: up to 10 with MetricStat and 10 with Expression."
        )
    returned = [m for m in metrics if m.get("ReturnData", True) in (True, "true")]
    if len(returned) != 1:
        raise ValidationError("Exactly one query in Metrics must have ReturnData true.")
    for query in metrics:
        if not _QUERY_ID.fullmatch(str(query.get("Id", ""))):
            raise ValidationError(
                f"Invalid Id {query.get('Id')!r}: it starts with a lower-case letter and holds "
                "letters, numbers and underscores."
            )
    for query in stats:
        period = int(query["MetricStat"].get("Period") or 0)
        if not valid_period(period):
            raise ValidationError(f"{query['Id']}: Period must be 10, 20, 30 or a multiple of 60.")
        if (too_long := evaluation_too_long(period, evaluation_periods)) is not None:
            raise ValidationError(too_long)


def check_evaluable(request: dict[str, Any]) -> None:
    """The local cloud's own refusal: an evaluated alarm it cannot evaluate is not put."""
    metrics: list[dict[str, Any]] = request.get("Metrics") or []
    ids = {str(m.get("Id")) for m in metrics}
    if not metrics:
        raise ValidationError("the local cloud evaluates only metric-math alarms under this name")
    periods = {int(m["MetricStat"]["Period"]) for m in metrics if "MetricStat" in m}
    if len(periods) != 1:
        raise ValidationError("the local cloud evaluates alarms whose metrics share one Period")
    if request.get("ComparisonOperator") not in _OPERATORS:
        raise ValidationError(f"the local cloud does not evaluate {request.get('ComparisonOperator')}")
    for query in metrics:
        if "Expression" not in query:
            continue
        try:
            unknown = referenced_ids(parse_expression(str(query["Expression"]))) - ids
        except UnsupportedExpression as exc:
            raise ValidationError(f"the local cloud cannot evaluate {query['Id']}: {exc}") from None
        if unknown:
            raise ValidationError(f"{query['Id']} names unknown ids: {', '.join(sorted(unknown))}")


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


# -- evaluation ------------------------------------------------------------------------


@dataclass
class _Watched:
    request: dict[str, Any]
    last_end: datetime | None = None  # the end of the last period evaluated
    previous: dict[str, str] = field(default_factory=dict)


class CloudWatchMetricMathAlarms:
    """Stands in for CloudWatch evaluating the fail-fast metric-math alarms (see the module).

    Installed, it also checks every PutMetricAlarm against CloudWatch's rules, and starts every
    new alarm in INSUFFICIENT_DATA, as CloudWatch does (moto starts it in OK).
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.RLock()
        self.state_changes: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = CloudWatchResponse.put_metric_alarm
        stand_in = self

        def put_metric_alarm(response: CloudWatchResponse) -> Any:
            keys = ("AlarmName", "Metrics", "EvaluationPeriods", "DatapointsToAlarm", "Period")
            request = {key: response._get_param(key) for key in keys}
            request.update(
                {
                    "ComparisonOperator": response._get_param("ComparisonOperator"),
                    "Threshold": response._get_param("Threshold"),
                    "TreatMissingData": response._get_param("TreatMissingData"),
                    "AlarmDescription": response._get_param("AlarmDescription"),
                }
            )
            check_put_metric_alarm(request)
            name = str(request["AlarmName"])
            if _EVALUATED.match(name):
                check_evaluable(request)
            backend = cloudwatch_backends[response.current_account][response.region]
            new = name not in backend.alarms
            result = original(response)
            if new:  # moto starts a new alarm in OK
                backend.set_alarm_state(name, "Unchecked: Initial alarm creation", "{}", "INSUFFICIENT_DATA")
            if _EVALUATED.match(name):
                with stand_in._lock:
                    known = stand_in._watched.get(name)
                    # An update keeps the alarm's state, and where its evaluation had got to.
                    stand_in._watched[name] = _Watched(request, known.last_end if known else None)
            return result

        with mock.patch.object(CloudWatchResponse, "put_metric_alarm", put_metric_alarm):
            yield

    def evaluate(self, now: datetime | None = None) -> None:
        """Evaluate each watched alarm whose latest period has ended since its last evaluation."""
        now = now or datetime.now(UTC)
        backend = cloudwatch_backends[self.account_id][self.region]
        with self._lock:
            for name, watched in list(self._watched.items()):
                alarm = backend.alarms.get(name)
                if alarm is None:  # deleted
                    del self._watched[name]
                    continue
                self._evaluate(name, watched, alarm, now)

    def _evaluate(self, name: str, watched: _Watched, alarm: Any, now: datetime) -> None:
        request = watched.request
        metrics = request["Metrics"]
        period = int(next(m["MetricStat"]["Period"] for m in metrics if "MetricStat" in m))
        step = timedelta(seconds=period)
        end = _EPOCH + ((now - _EPOCH) // step) * step
        if watched.last_end is not None and end <= watched.last_end:
            return
        watched.last_end = end
        periods = int(request["EvaluationPeriods"])
        needed = int(request.get("DatapointsToAlarm") or periods)
        starts = [end - step * k for k in range(periods, 0, -1)]
        values = self._series(metrics, starts[0], end, period)
        returned = next(m for m in metrics if m.get("ReturnData", True) in (True, "true"))
        points = [self._value(returned, metrics, values, at) for at in starts]
        threshold = float(request["Threshold"])
        compare = _OPERATORS[str(request["ComparisonOperator"])]
        missing = str(request.get("TreatMissingData") or "missing")
        breaching = sum(1 for p in points if p is not None and compare(p, threshold))
        present = [p for p in points if p is not None]
        if missing == "breaching":
            breaching += len(points) - len(present)
        if breaching >= needed:
            value = "ALARM"
        elif present or missing in ("notBreaching", "breaching"):
            value = "OK"
        else:
            value = "INSUFFICIENT_DATA"
        if value == alarm.state_value:
            return
        shown = ", ".join(f"{p:.4g}" for p in present) or "no datapoints"
        relation = "greater than" if "Greater" in str(request["ComparisonOperator"]) else "less than"
        reason = (
            f"Threshold Crossed: {breaching} out of the last {periods} datapoints [{shown}] were "
            f"{relation} the threshold ({threshold:g}) (minimum {needed} datapoints for OK -> ALARM "
            "transition)."
            if value == "ALARM"
            else f"Threshold not crossed: datapoints [{shown}]"
        )
        self._set_state(name, alarm, request, value, reason)

    def _series(
        self, metrics: list[dict[str, Any]], start: datetime, end: datetime, period: int
    ) -> dict[str, dict[datetime, float]]:
        backend = cloudwatch_backends[self.account_id][self.region]
        queries = [
            {"Id": m["Id"], "MetricStat": {**m["MetricStat"], "Period": period}}
            for m in metrics
            if "MetricStat" in m
        ]
        # moto keeps timestamps as naive UTC.
        results = backend.get_metric_data(
            queries=queries, start_time=start.replace(tzinfo=None), end_time=end.replace(tzinfo=None)
        )
        found: dict[str, dict[datetime, float]] = {}
        for result in results:
            stamps = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in result.get("timestamps", [])]
            found[result["id"]] = dict(
                zip(stamps, (float(v) for v in result.get("values", [])), strict=False)
            )
        return found

    def _value(
        self,
        query: dict[str, Any],
        metrics: list[dict[str, Any]],
        series: dict[str, dict[datetime, float]],
        at: datetime,
    ) -> Value:
        if "MetricStat" in query:
            return series.get(query["Id"], {}).get(at)
        by_id = {m["Id"]: m for m in metrics}
        node = parse_expression(str(query["Expression"]))
        inputs = {qid: self._value(by_id[qid], metrics, series, at) for qid in referenced_ids(node)}
        return evaluate(node, inputs)

    def _set_state(self, name: str, alarm: Any, request: dict[str, Any], value: str, reason: str) -> None:
        backend = cloudwatch_backends[self.account_id][self.region]
        previous = {"value": alarm.state_value, "reason": alarm.state_reason or "", "timestamp": _stamp()}
        backend.set_alarm_state(name, reason, "{}", value)
        state = {"value": value, "reason": reason, "timestamp": _stamp()}
        self.state_changes.append({"alarm": name, "state": value, "reason": reason})
        event = service_event(
            self.account_id,
            self.region,
            "aws.cloudwatch",
            "CloudWatch Alarm State Change",
            [f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{name}"],
            {
                "alarmName": name,
                "state": state,
                "previousState": previous,
                "configuration": {
                    "description": request.get("AlarmDescription") or "",
                    "metrics": [
                        {k: v for k, v in m.items() if k in ("Id", "Expression", "ReturnData", "MetricStat")}
                        for m in request["Metrics"]
                    ],
                },
            },
        )
        emit_service_event(self.account_id, self.region, event)


def _stamp() -> str:
    """An alarm state's timestamp as CloudWatch writes it (``2026-12-02T21:00:00.000+0000``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
