"""Ending Step Functions callback waits (`.waitForTaskToken`). Tokens never reach a log."""

from __future__ import annotations

import abc
import json
from typing import Any

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client, error_code

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
