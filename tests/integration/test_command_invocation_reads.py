"""Where a drain's invocation is, read from GetCommandInvocation as botocore hands it over: its
detailed status, and its run's start, a string that is empty until the run starts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber
from canaryfleet.adapters.clients import client, reset_clients
from canaryfleet.adapters.drains import SsmCommandStatuses
from canaryfleet.ports.drains import InvocationRun

COMMAND = "0b6a2b1e-6d1c-4c27-9a57-1f5b0d4c3e21"
INSTANCE = "i-0abc0000000000000"
ASKED = {"CommandId": COMMAND, "InstanceId": INSTANCE}


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    reset_clients()
    with Stubber(client("ssm")) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _invocation(details: str, started: str) -> dict[str, Any]:
    status = "TimedOut" if "Timed" in details else details
    return {
        "CommandId": COMMAND,
        "InstanceId": INSTANCE,
        "Status": status,
        "StatusDetails": details,
        "ExecutionStartDateTime": started,
    }


@pytest.mark.parametrize(
    ("details", "started", "run"),
    [
        # Run Command's own format (ISO 8601, UTC): the run started, then its command expired
        (
            "Delivery Timed Out",
            "2026-12-07T10:04:10.123Z",
            InvocationRun(
                "TimedOut", "Delivery Timed Out", datetime(2026, 12, 7, 10, 4, 10, 123000, tzinfo=UTC)
            ),
        ),
        # An offset, and none at all (read as UTC)
        (
            "DeliveryTimedOut",
            "2026-12-07T11:04:10+01:00",
            InvocationRun("TimedOut", "DeliveryTimedOut", datetime(2026, 12, 7, 10, 4, 10, tzinfo=UTC)),
        ),
        (
            "InProgress",
            "2026-12-07T10:04:10",
            InvocationRun("InProgress", "InProgress", datetime(2026, 12, 7, 10, 4, 10, tzinfo=UTC)),
        ),
        # "If the plugin hasn't started to run, the string is empty"; anything else unreadable
        ("Delivery Timed Out", "", InvocationRun("TimedOut", "Delivery Timed Out", None)),
        ("Delayed", "soon", InvocationRun("Delayed", "Delayed", None)),
    ],
)
def test_an_invocations_run_reads_its_detailed_status_and_start(
    ssm: Stubber, details: str, started: str, run: InvocationRun
) -> None:
    ssm.add_response("get_command_invocation", _invocation(details, started), ASKED)

    assert SsmCommandStatuses().run(COMMAND, INSTANCE) == run


def test_an_invocation_without_a_status_reads_as_one_not_ended(ssm: Stubber) -> None:
    # botocore's ssm model requires no member of GetCommandInvocationResult
    ssm.add_response("get_command_invocation", {"CommandId": COMMAND, "InstanceId": INSTANCE}, ASKED)

    assert SsmCommandStatuses().run(COMMAND, INSTANCE) == InvocationRun("", "", None)


def test_an_invocation_run_command_does_not_know_has_no_run(ssm: Stubber) -> None:
    ssm.add_client_error(
        "get_command_invocation", service_error_code="InvocationDoesNotExist", http_status_code=400
    )

    assert SsmCommandStatuses().run(COMMAND, INSTANCE) is None
