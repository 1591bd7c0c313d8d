"""Ending Step Functions callback waits (`.waitForTaskToken`), and reading how they ended.
Tokens never reach a log."""

from __future__ import annotations

import abc
import json
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.ports.workflow import CallbackEnd, CallbackEnds

# The task already ended (another event won, or it timed out): nothing left to do.
_CLOSED = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


class Callbacks(abc.ABC):
    @abc.abstractmethod
    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        """End the wait successfully; False if it had already ended."""

    @abc.abstractmethod
    def fail(self, token: str, error: str, cause: str) -> bool:
        """End the wait with ``error`` (the name a Catch matches); False if it had already ended."""


class StepFunctionsCallbacks(Callbacks):
    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        try:
            client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(output, default=str))
        except ClientError as exc:
            if error_code(exc) in _CLOSED:
                return False
            raise
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        try:
            client("stepfunctions").send_task_failure(
                taskToken=token, error=error[:256], cause=cause[:32_768]
            )
        except ClientError as exc:
            if error_code(exc) in _CLOSED:
                return False
            raise
        return True


# GetExecutionHistory (API reference): events in descending order of their timestamp with
# reverseOrder, at most 1,000 a page (maxResults), further pages by nextToken. A few pages reach
# back far enough for an approval's wait; past them the reading says it is not complete.
_HISTORY_PAGE = 1000
_HISTORY_PAGES = 3
# The history events of a task's end (botocore stepfunctions model, HistoryEvent). A callback
# task's resource is "<action>.waitForTaskToken"; a timeout's details name no resource.
_ENDS: dict[str, tuple[Literal["succeeded", "failed", "timed_out"], str]] = {
    "TaskSucceeded": ("succeeded", "taskSucceededEventDetails"),
    "TaskFailed": ("failed", "taskFailedEventDetails"),
    "TaskTimedOut": ("timed_out", "taskTimedOutEventDetails"),
}


def _callback_end(event: dict[str, Any]) -> CallbackEnd | None:
    kind, details_key = _ENDS.get(event["type"], (None, ""))
    if kind is None:
        return None
    details: dict[str, Any] = event.get(details_key) or {}
    if kind != "timed_out" and not str(details.get("resource", "")).endswith(".waitForTaskToken"):
        return None
    return CallbackEnd(
        kind, event["timestamp"], details.get("output"), details.get("error"), details.get("cause")
    )


class StepFunctionsCallbackHistory:
    """How an execution's callback waits ended (the ``CallbackHistory`` port): DescribeExecution's
    status, then GetExecutionHistory newest first, back to the time asked."""

    def ends_since(self, execution_arn: str, since: datetime) -> CallbackEnds:
        sfn = client("stepfunctions")
        try:
            status = str(sfn.describe_execution(executionArn=execution_arn)["status"])
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return CallbackEnds("", (), True)
            raise
        ends: list[CallbackEnd] = []
        page: dict[str, Any] = {}
        for _ in range(_HISTORY_PAGES):
            answer = sfn.get_execution_history(
                executionArn=execution_arn, reverseOrder=True, maxResults=_HISTORY_PAGE, **page
            )
            # Sorted again, newest first: moto's history comes oldest first whatever was asked.
            for event in sorted(answer["events"], key=lambda event: int(event["id"]), reverse=True):
                if event["timestamp"] < since:
                    return CallbackEnds(status, tuple(reversed(ends)), True)
                end = _callback_end(dict(event))
                if end is not None:
                    ends.append(end)
            if not answer.get("nextToken"):
                return CallbackEnds(status, tuple(reversed(ends)), True)
            page = {"nextToken": answer["nextToken"]}
        return CallbackEnds(status, tuple(reversed(ends)), False)
