"""Starting an approval's expiry: one execution of ApprovalExpiryStateMachine per approval."""

from __future__ import annotations

import abc
import json
import math
from datetime import datetime

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client, error_code


class ApprovalExpiry(abc.ABC):
    @abc.abstractmethod
    def schedule(self, approval_id: str, expires_at: datetime, now: datetime) -> bool:
        """Have the approval expired at ``expires_at``; False if that was already arranged."""

    @abc.abstractmethod
    def settle_now(self, approval_id: str) -> bool:
        """Have an approval the rollout no longer waits for settled at once; False if asked before."""


class StepFunctionsApprovalExpiry(ApprovalExpiry):
    def __init__(self, state_machine_arn: str) -> None:
        self._state_machine_arn = state_machine_arn

    def schedule(self, approval_id: str, expires_at: datetime, now: datetime) -> bool:
        wait = max(0, math.ceil((expires_at - now).total_seconds()))
        # One execution per approval, however often this is retried.
        return self._start(approval_id, approval_id, wait)

    def settle_now(self, approval_id: str) -> bool:
        # The same machine with no wait: its task records how the approval ended and settles its
        # Slack message, as the expiry would at the end of the wait. One such run per approval.
        return self._start(f"{approval_id}-ended", approval_id, 0)

    def _start(self, name: str, approval_id: str, wait: int) -> bool:
        try:
            client("stepfunctions").start_execution(
                stateMachineArn=self._state_machine_arn,
                name=name,
                input=json.dumps({"approval_id": approval_id, "wait_seconds": wait}),
            )
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return False
            raise
        return True
