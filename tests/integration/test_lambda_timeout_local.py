"""The local Lambda answers an invocation that ran past its function's Timeout as Lambda does.

The rule and its sources are in ``LambdaInvokeInProcess``'s docstring: a handler in this process
cannot be stopped, so one that returns past its timeout is answered as a timed-out invocation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from canaryfleet_local.standins.lambda_ import FunctionCode, LambdaInvokeInProcess
from tests.integration.helpers import a_moto_function, moto_account

REGION = "eu-west-1"

# A handler that records it ran, then works for as long as its event says.
HANDLER = """
import time
from pathlib import Path


def handler(event, context):
    Path(event["record"]).write_text("ran")
    time.sleep(event["seconds"])
    return {"slept": event["seconds"]}
"""


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LambdaInvokeInProcess]:
    """The local Lambda on a bare moto account, with a function of 1 s running ``HANDLER``."""
    (tmp_path / "app.py").write_text(HANDLER)
    with moto_account(REGION):
        a_moto_function("worker", timeout=1)
        local = LambdaInvokeInProcess("123456789012", REGION)
        local.register("worker", FunctionCode("Worker", tmp_path, "app.handler"))
        with local.installed():
            yield local


def invoke(seconds: float, record: Path) -> dict[str, Any]:
    payload = json.dumps({"seconds": seconds, "record": str(record)}).encode()
    response = boto3.client("lambda", region_name=REGION).invoke(FunctionName="worker", Payload=payload)
    return {"error": response.get("FunctionError"), "payload": json.loads(response["Payload"].read())}


def test_an_invocation_past_its_functions_timeout_answers_sandbox_timedout(
    runtime: LambdaInvokeInProcess, tmp_path: Path
) -> None:
    # Given a function whose Timeout is 1 s
    record = tmp_path / "ran"

    # When its handler works for 1.5 s
    answer = invoke(1.5, record)

    # Then Lambda answers a timed-out invocation, its result dropped; what it did still happened
    assert answer["error"] == "Unhandled"
    assert answer["payload"]["errorType"] == "Sandbox.Timedout"
    assert answer["payload"]["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    assert runtime.invocations[-1].request_id in answer["payload"]["errorMessage"]
    assert runtime.invocations[-1].error_type == "Sandbox.Timedout"
    assert record.read_text() == "ran"


def test_an_invocation_within_its_timeout_answers_its_result(
    runtime: LambdaInvokeInProcess, tmp_path: Path
) -> None:
    answer = invoke(0.0, tmp_path / "ran")

    assert answer == {"error": None, "payload": {"slept": 0.0}}
