"""Malformed events to every function of the template: a typed error, and nothing written.

Each function's sample events (events/<function>/) are mutated (a key dropped, a value
replaced by another JSON value, the whole event replaced) until the models the handler
parses with refuse them. The real handler then runs in the local cloud with the template's
environment, and every AWS call it makes is recorded: none may change anything.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import botocore.client
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    EventBridgeModel,
    SqsModel,
)
from canaryfleet.errors import InvalidEvent
from canaryfleet.models.approval import ExpireApprovalTask, RotationEvent
from canaryfleet.models.drain import CommandInvocationEvent, DrainEvent, DrainOrder
from canaryfleet.models.events import parse_event
from canaryfleet.models.notification import NoticeRecord
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from canaryfleet_local.cloud import LocalCloud
from tests.helpers import EVENT_MODELS, EVENTS, logical_id

# What a call may do without changing anything.
READS = ("Get", "Describe", "List", "Query", "Scan", "BatchGet", "Head", "Select")


def _valid(model: type[BaseModel]) -> Callable[[Any], bool]:
    def check(event: Any) -> bool:
        try:
            parse_event(model, event)
        except InvalidEvent:
            return False
        return True

    return check


def _detail(model: type[BaseModel]) -> Callable[[Any], bool]:
    """An EventBridge event whose detail parses with ``model``."""
    return lambda event: _valid(EventBridgeModel)(event) and _valid(model)(event.get("detail"))


def _records(model: type[BaseModel], body_is_json: bool = True) -> Callable[[Any], bool]:
    """An SQS batch with at least one record whose body parses with ``model``."""

    def check(event: Any) -> bool:
        if not _valid(SqsModel)(event):
            return False
        for record in event["Records"]:
            try:
                if body_is_json:
                    model.model_validate_json(record["body"])
                else:
                    parse_event(model, record)
            except (ValidationError, InvalidEvent):
                continue
            return True
        return False

    return check


# function folder -> (its logical id in template.yaml, "the handler would act on this event")
FUNCTIONS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    **{
        folder: (logical_id(folder), _detail(detail) if detail else _valid(model))
        for folder, (model, detail) in EVENT_MODELS.items()
        if folder != "notify"  # an SQS batch: below
    },
    "drain_request": ("DrainRequestFunction", _valid(DrainEvent)),
    "drain_complete": ("DrainCompleteFunction", _valid(CommandInvocationEvent)),
    "rotate_signing_key": ("RotateSigningKeyFunction", _valid(RotationEvent)),
    "expire_approval": ("ExpireApprovalFunction", _valid(ExpireApprovalTask)),
    # SQS batches: a malformed envelope is an InvalidEvent; malformed records are reported back.
    "drain_dispatch": ("DrainDispatchFunction", _records(DrainOrder)),
    "notify": ("NotifyFunction", _records(NoticeRecord, body_is_json=False)),
    # HTTP API: an event that is not a request at all is an InvalidEvent; the others answer 4xx.
    "approval_page": ("ApprovalPageFunction", _valid(APIGatewayProxyEventV2Model)),
    "slack_interactions": ("SlackInteractionsFunction", _valid(APIGatewayProxyEventV2Model)),
}
BATCH = {"drain_dispatch", "notify"}
HTTP = {"approval_page", "slack_interactions"}
SAMPLES: dict[str, list[Any]] = {
    function: [json.loads(path.read_text()) for path in sorted((EVENTS / function).glob("*.json"))]
    for function in FUNCTIONS
}


# --- strategies ------------------------------------------------------------------------------------
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _with(value: Any, path: tuple[Any, ...], change: Callable[[Any, Any], None]) -> Any:
    """A copy of ``value`` with ``change(parent, key)`` applied at ``path``."""
    copied = json.loads(json.dumps(value))
    parent = copied
    for key in path[:-1]:
        parent = parent[key]
    change(parent, path[-1])
    return copied


@st.composite
def malformed(draw: st.DrawFn, function: str) -> Any:
    """A sample event of ``function`` changed until its handler's models refuse it."""
    event = draw(st.sampled_from(SAMPLES[function]))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(event) if p]
        kind = draw(st.sampled_from(["drop", "replace", "whole"] if paths else ["whole"]))
        if kind == "whole":
            event = draw(JSON)
            continue
        path = draw(st.sampled_from(paths))
        if kind == "drop":
            event = _with(event, path, lambda parent, key: parent.pop(key))
        else:
            value = draw(JSON)
            event = _with(event, path, lambda parent, key, value=value: parent.__setitem__(key, value))
    assume(not FUNCTIONS[function][1](event))
    return event


@st.composite
def malformed_bodies(draw: st.DrawFn, function: str) -> Any:
    """A sample SQS batch of ``function`` whose every record's body is mangled."""
    batch = json.loads(json.dumps(draw(st.sampled_from(SAMPLES[function]))))
    for record in batch["Records"]:
        body = json.loads(record["body"])
        if function == "notify":  # SNS's envelope: the notice is its Message
            body["Message"] = json.loads(body["Message"])
        for _ in range(draw(st.integers(1, 2))):
            paths = [p for p in _paths(body) if p]
            path = draw(st.sampled_from(paths))
            if draw(st.booleans()):
                body = _with(body, path, lambda parent, key: parent.pop(key))
            else:
                value = draw(JSON)
                body = _with(body, path, lambda parent, key, value=value: parent.__setitem__(key, value))
            if not isinstance(body, dict):
                break
        if function == "notify" and isinstance(body, dict) and not isinstance(body.get("Message"), str):
            body["Message"] = json.dumps(body.get("Message"))
        record["body"] = draw(st.text(max_size=30)) if draw(st.integers(0, 5)) == 0 else json.dumps(body)
    assume(not FUNCTIONS[function][1](batch))
    return batch


# --- running handlers ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(parameters={"LogLevel": "CRITICAL"}) as local:
        yield local


@contextmanager
def recorded_calls() -> Iterator[list[tuple[str, str]]]:
    """Every AWS call made on this thread: (service, operation)."""
    calls: list[tuple[str, str]] = []
    real = botocore.client.BaseClient._make_api_call
    thread = threading.get_ident()

    def recording(client: Any, operation: str, params: Any) -> Any:
        if threading.get_ident() == thread:
            calls.append((client.meta.service_model.service_name, operation))
        return real(client, operation, params)

    with mock.patch.object(botocore.client.BaseClient, "_make_api_call", recording):
        yield calls


def run(cloud: LocalCloud, function: str, event: Any) -> tuple[Any, list[tuple[str, str]]]:
    """The handler's answer (or its error, as Lambda reports it) and the writes it made."""
    name = cloud.resource(FUNCTIONS[function][0])
    with recorded_calls() as calls:
        body, failed = cloud.runtime.run(name, json.dumps(event), "RequestResponse")
    answer = json.loads(body)
    writes = [(service, op) for service, op in calls if not op.startswith(READS)]
    return ({"errorType": answer["errorType"]} if failed else answer), writes


def state_table(cloud: LocalCloud) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cloud.client("dynamodb").scan(TableName=cloud.output("StateTableName"))[
        "Items"
    ]
    return items


HYPOTHESIS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)


# --- the properties ------------------------------------------------------------------------------
def test_every_function_of_the_template_is_covered(cloud: LocalCloud) -> None:
    assert {logical_id for logical_id, _ in FUNCTIONS.values()} == set(cloud.function_names)
    assert all(SAMPLES.values()), "every function has a sample event"


SINGLE = sorted(set(FUNCTIONS) - BATCH - HTTP)


def each_is_an_invalid_event(
    cloud: LocalCloud, function: str, events: st.SearchStrategy[Any], search: settings = HYPOTHESIS
) -> None:
    """Then every event ``events`` draws is an InvalidEvent to the function, and it writes nothing."""

    @search
    @given(event=events)
    def check(event: Any) -> None:
        answer, writes = run(cloud, function, event)

        assert answer == {"errorType": "InvalidEvent"}
        assert writes == []

    check()


@pytest.mark.parametrize("function", SINGLE)
def test_a_malformed_event_is_an_invalid_event_and_writes_nothing(cloud: LocalCloud, function: str) -> None:
    before = state_table(cloud)

    each_is_an_invalid_event(cloud, function, malformed(function))

    assert state_table(cloud) == before


def _not_sqs(event: Any) -> bool:
    return not _valid(SqsModel)(event)


@pytest.mark.parametrize("function", sorted(BATCH))
def test_a_malformed_batch_reports_every_record_failed_and_writes_nothing(
    cloud: LocalCloud, function: str
) -> None:
    @HYPOTHESIS
    @given(event=malformed_bodies(function))
    def check(event: Any) -> None:
        answer, writes = run(cloud, function, event)

        # Powertools fails the whole invocation when every record failed: all come back alike.
        if answer != {"errorType": "BatchProcessingError"}:
            failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
            assert failed == {record["messageId"] for record in event["Records"]}
        assert writes == []

    check()


@pytest.mark.parametrize("function", ["drain_dispatch", "notify"])
def test_an_event_that_is_not_an_sqs_batch_is_an_invalid_event(cloud: LocalCloud, function: str) -> None:
    # No shrinking: the known failure (notify) would spend seconds minimising its example.
    unshrunk = settings(HYPOTHESIS, phases=[Phase.explicit, Phase.reuse, Phase.generate])
    each_is_an_invalid_event(cloud, function, malformed(function).filter(_not_sqs), unshrunk)


@pytest.mark.parametrize("function", sorted(HTTP))
def test_a_malformed_http_event_is_an_invalid_event_and_writes_nothing(
    cloud: LocalCloud, function: str
) -> None:
    each_is_an_invalid_event(cloud, function, malformed(function))


@st.composite
def mangled_request(draw: st.DrawFn, function: str) -> Any:
    """A well-formed HTTP API event whose request is mangled: headers, body, path parameters."""
    event = json.loads(json.dumps(draw(st.sampled_from(SAMPLES[function]))))
    headers = event["headers"]
    for name in draw(st.lists(st.sampled_from(sorted(headers)), max_size=4, unique=True)):
        headers[name] = draw(st.text(max_size=30))
    if draw(st.booleans()):
        event["body"] = draw(st.text(max_size=200))
        event["isBase64Encoded"] = draw(st.booleans())
    if draw(st.booleans()):
        event["pathParameters"] = {"approval_id": draw(st.text(max_size=40))}
    assume(_valid(APIGatewayProxyEventV2Model)(event))
    return event


@pytest.mark.parametrize("function", sorted(HTTP))
def test_a_mangled_http_request_is_answered_4xx_and_writes_nothing(cloud: LocalCloud, function: str) -> None:
    @HYPOTHESIS
    @given(event=mangled_request(function))
    def check(event: Any) -> None:
        answer, writes = run(cloud, function, event)

        assert 400 <= answer.get("statusCode", 0) < 500, answer
        assert writes == []

    check()
