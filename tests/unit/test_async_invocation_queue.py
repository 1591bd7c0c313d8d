"""The local stand-in for Lambda's async queue retries as AWS documents: function errors
twice, the service's own refusals without using an attempt."""

from __future__ import annotations

import json
from typing import Any, cast

from canaryfleet_local.standins.lambda_ import LambdaInvokeInProcess
from canaryfleet_local.standins.lambda_async import AsyncInvocationQueue


class ScriptedRuntime:
    """Answers each invocation with the next error type of a script; None means success."""

    def __init__(self, script: list[str | None]) -> None:
        self.script = list(script)
        self.calls = 0

    def run(
        self, function_name: str, payload: bytes | str | None, invocation_type: str
    ) -> tuple[bytes, bool]:
        self.calls += 1
        error = self.script.pop(0) if self.script else None
        if error is None:
            return b"{}", False
        return json.dumps({"errorType": error, "errorMessage": "scripted"}).encode(), True


def _deliver(script: list[str | None], **options: Any) -> tuple[AsyncInvocationQueue, ScriptedRuntime]:
    runtime = ScriptedRuntime(script)
    queue = AsyncInvocationQueue(cast(LambdaInvokeInProcess, runtime), **options)
    queue.submit_invoke("fn", {"id": "event-1"})
    assert queue.wait_idle(5)
    queue.shutdown()
    return queue, runtime


def test_a_function_error_is_tried_three_times_then_kept_as_failed() -> None:
    queue, runtime = _deliver(["Sandbox.Timedout", "ValueError", "Sandbox.Timedout", None])

    assert runtime.calls == 3
    assert [(f.target, f.error, f.event) for f in queue.failed] == [
        ("fn", "Sandbox.Timedout", {"id": "event-1"})
    ]


def test_refusals_by_the_lambda_service_do_not_use_an_attempt() -> None:
    script: list[str | None] = ["Lambda.ServiceException", "Sandbox.Timedout", "TooManyRequestsException"]
    queue, runtime = _deliver([*script, "Lambda.ServiceException", "ValueError", None])

    assert runtime.calls == 6  # two function errors, three refusals, then success
    assert queue.failed == []


def test_endless_refusals_end_as_a_failed_delivery() -> None:
    queue, runtime = _deliver(["Lambda.ServiceException"] * 50, refusals=4)

    assert runtime.calls == 5
    assert [f.error for f in queue.failed] == ["Lambda.ServiceException"]
