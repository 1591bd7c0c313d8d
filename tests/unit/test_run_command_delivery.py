"""The local cloud's Run Command delivers a command late as AWS may, and never past its expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from canaryfleet_local.standins.ssm import SsmRunCommandOnManagedInstances, execution_timeout

REQUESTED = datetime(2026, 11, 26, 10, 15, 33, tzinfo=UTC)


def _command(window_seconds: float) -> Any:
    return SimpleNamespace(
        requested_date_time=REQUESTED, expires_after=REQUESTED + timedelta(seconds=window_seconds)
    )


def test_an_agent_that_takes_the_command_in_time_runs_it_after_being_delayed() -> None:
    # Given an invocation whose agent can take the command 0.05 s after it was sent, well before
    # the command expires
    invocation: dict[str, Any] = {"Status": "InProgress"}

    # When Run Command delivers it
    result = SsmRunCommandOnManagedInstances._deliver(_command(30), invocation, 0.05)

    # Then it runs (nothing to report yet), in progress once taken
    assert result is None and invocation["Status"] == "InProgress"


def test_an_agent_that_cannot_take_the_command_before_it_expires_never_runs_it() -> None:
    # Given an invocation whose agent would take the command after it has expired
    invocation: dict[str, Any] = {"Status": "InProgress"}

    # When Run Command tries to deliver it
    result = SsmRunCommandOnManagedInstances._deliver(_command(0.05), invocation, 10)

    # Then it is Delivery Timed Out at the expiry, without running, still Delayed until then
    assert result is not None and result.status == "DeliveryTimedOut"
    assert invocation["Status"] == "Delayed"


def test_the_execution_timeout_is_the_documents_with_its_parameters_put_in_place() -> None:
    drain = {"mainSteps": [{"inputs": {"timeoutSeconds": "{{ ExecutionTimeout }}"}}]}
    two_steps = {"mainSteps": [{"inputs": {"timeoutSeconds": 60}}, {"inputs": {}}]}

    assert execution_timeout(drain, {"ExecutionTimeout": ["240"]}) == 240
    assert execution_timeout(two_steps, {}) == 60 + 3600  # aws:runShellScript's default
    assert execution_timeout({"mainSteps": []}, {}) == 3600
