"""Drain events, orders, budgets and manifests, parsed at the edge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel
from canaryfleet.errors import InvalidEvent
from canaryfleet.logic.drain import DrainTarget, execution_seconds, next_run_id
from canaryfleet.models.drain import (
    LIFECYCLE_BUDGET,
    SPOT_BUDGET,
    SPOT_NOTICE_SECONDS,
    CommandInvocationEvent,
    DrainEvent,
    DrainManifest,
    DrainOrder,
    DrainRecord,
    DrainStatus,
    DrainTrigger,
    ManifestFile,
    SkippedFile,
)
from canaryfleet.models.events import parse_event
from pydantic import ValidationError

from tests.helpers import load_event

NOW = datetime(2026, 11, 26, 10, 15, 40, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sample", "trigger"),
    [
        ("drain_request/lifecycle_terminate", DrainTrigger.LIFECYCLE),
        ("drain_request/spot_interruption", DrainTrigger.SPOT),
        ("drain_request/rebalance_recommendation", DrainTrigger.REBALANCE),
    ],
)
def test_each_event_that_starts_a_drain_parses_as_its_trigger(sample: str, trigger: DrainTrigger) -> None:
    event = parse_event(DrainEvent, load_event(sample))

    assert (event.trigger, event.instance_id) == (trigger, "i-1234567890abcdef0")


def test_a_termination_hook_event_carries_the_hook_to_complete() -> None:
    event = parse_event(DrainEvent, load_event("drain_request/lifecycle_terminate"))

    assert event.hook is not None
    assert (event.hook.name, event.hook.auto_scaling_group, event.hook.token) == (
        "canaryfleet-drain",
        "payments-api-live",
        "87654321-4321-4321-4321-210987654321",
    )


def test_the_lifecycle_token_never_appears_in_a_repr() -> None:
    event = parse_event(DrainEvent, load_event("drain_request/lifecycle_terminate"))

    assert "87654321-4321" not in repr(event)
    assert "87654321-4321" not in repr(event.hook)


def test_a_launch_lifecycle_action_is_refused_with_a_typed_error() -> None:
    event = load_event("drain_request/lifecycle_terminate")
    event["detail"]["LifecycleTransition"] = "autoscaling:EC2_INSTANCE_LAUNCHING"

    with pytest.raises(InvalidEvent, match="LifecycleTransition"):
        parse_event(DrainEvent, event)


def test_an_event_of_another_kind_is_refused_with_a_typed_error() -> None:
    with pytest.raises(InvalidEvent, match="invalid DrainEvent"):
        parse_event(DrainEvent, load_event("drain_complete/command_invocation_success"))


def test_the_command_level_status_event_is_not_an_invocation_event() -> None:
    with pytest.raises(InvalidEvent, match="detail-type"):
        parse_event(CommandInvocationEvent, load_event("drain_complete/command_status_change"))


def test_each_sample_drain_order_parses() -> None:
    batch = parse_event(SqsModel, load_event("drain_dispatch/orders"))

    orders = [DrainOrder.model_validate_json(str(record.body)) for record in batch.Records]

    assert [o.trigger for o in orders] == [DrainTrigger.LIFECYCLE, DrainTrigger.SPOT]


def test_the_spot_budget_fits_in_the_two_minute_notice_logs_first() -> None:
    assert SPOT_BUDGET.execution_seconds < SPOT_NOTICE_SECONDS
    assert SPOT_BUDGET.flush_first and not LIFECYCLE_BUDGET.flush_first


def test_the_documents_timeout_is_cut_to_the_earliest_instances_end() -> None:
    targets = [
        DrainTarget("orders-api", "i-0aaaaaaaaaaaaaaaa", "orders-api/", NOW + timedelta(seconds=70)),
        DrainTarget("orders-api", "i-0bbbbbbbbbbbbbbbb", "orders-api/", NOW + timedelta(seconds=110)),
    ]

    assert execution_seconds(SPOT_BUDGET, targets, NOW) == 65


def test_the_documents_timeout_is_its_budget_without_a_deadline() -> None:
    target = DrainTarget("orders-api", "i-0aaaaaaaaaaaaaaaa", "orders-api/", None)

    assert execution_seconds(LIFECYCLE_BUDGET, [target], NOW) == LIFECYCLE_BUDGET.execution_seconds


def test_a_retry_never_runs_under_its_first_runs_prefix() -> None:
    first = next_run_id(NOW)

    assert first == "20261126T101540Z"
    assert next_run_id(NOW, after=first) == "20261126T101541Z"
    assert next_run_id(NOW + timedelta(seconds=30), after=first) == "20261126T101610Z"


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "/var/log/app.log", "logs/../../x", "manifest.json", "", "server.log\n"]
)
def test_a_manifest_entry_must_stay_inside_its_prefix(name: str) -> None:
    with pytest.raises(ValidationError):
        ManifestFile(name=name, size=1, sha256="0" * 64)
    with pytest.raises(ValidationError):
        SkippedFile(name=name, error="[Errno 28] No space left on device")


def test_a_manifest_totals_its_files() -> None:
    manifest = DrainManifest.model_validate(
        {
            "instance_id": "i-0aaaaaaaaaaaaaaaa",
            "application": "orders-api",
            "run_id": "20261126T101540Z",
            "mode": "drain",
            "created_at": NOW.isoformat(),
            "files": [
                {"name": "app.log", "size": 10, "sha256": "a" * 64},
                {"name": "archive/app.1.log", "size": 32, "sha256": "b" * 64},
            ],
        }
    )

    assert manifest.total_bytes == 42


def record(**changes: Any) -> DrainRecord:
    values: dict[str, Any] = {
        "instance_id": "i-0aaaaaaaaaaaaaaaa",
        "application": "orders-api",
        "trigger": "lifecycle",
        "status": "running",
        "log_prefix": "orders-api/",
        "started_at": NOW.isoformat(),
        "budget": LIFECYCLE_BUDGET.model_dump(),
        "hook_name": "canaryfleet-drain",
        "hook_auto_scaling_group": "orders-api-live",
        "hook_token": "secret-token-1234",
    }
    return DrainRecord.model_validate(values | changes)


def test_a_records_public_view_has_no_hook_token() -> None:
    public = record().public()

    assert "secret-token-1234" not in json.dumps(public)
    assert public["hook_name"] == "canaryfleet-drain"


def test_only_drained_and_logs_lost_are_final() -> None:
    assert {s for s in DrainStatus if s.final} == {DrainStatus.DRAINED, DrainStatus.LOGS_LOST}
