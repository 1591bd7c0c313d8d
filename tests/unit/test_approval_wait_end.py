"""When an approval expires: its wait's timeout, counted from when Step Functions entered the state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from canaryfleet.logic.approval import wait_ends_at
from canaryfleet.models.tasks import ApprovalTask
from pydantic import ValidationError

SAMPLE = json.loads((Path(__file__).parents[2] / "events" / "request_approval" / "task.json").read_text())
NOW = datetime(2026, 12, 6, 15, 0, 0, tzinfo=UTC)


def task(**changes: object) -> ApprovalTask:
    return ApprovalTask.model_validate({**SAMPLE, "timeout_seconds": 3600, **changes})


def test_the_timeout_counts_from_when_the_state_was_entered_not_from_the_functions_clock() -> None:
    # A cold start and a retried invoke later, the function reads its clock 4 s after the state began
    entered = NOW - timedelta(seconds=4)

    assert wait_ends_at(task(entered_at=entered.isoformat()), NOW) == entered + timedelta(hours=1)


def test_step_functions_iso_time_with_a_z_is_read_as_utc() -> None:
    # $$.State.EnteredTime as the Step Functions Developer Guide's Context object example writes it
    parsed = task(entered_at="2026-12-06T14:59:58.192Z")

    assert wait_ends_at(parsed, NOW) == datetime(2026, 12, 6, 15, 59, 58, 192000, tzinfo=UTC)


def test_an_entered_time_ahead_of_the_functions_clock_counts_from_the_clock() -> None:
    ahead = NOW + timedelta(milliseconds=300)  # two clocks a moment apart

    assert wait_ends_at(task(entered_at=ahead.isoformat()), NOW) == NOW + timedelta(hours=1)


def test_a_definition_from_before_the_field_counts_from_the_clock() -> None:
    older = ApprovalTask.model_validate({key: value for key, value in SAMPLE.items() if key != "entered_at"})

    assert wait_ends_at(older, NOW) == NOW + timedelta(seconds=SAMPLE["timeout_seconds"])


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        task(entered_at="2026-12-06T14:59:58")
