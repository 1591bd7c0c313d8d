"""Lambda: asynchronous invocation (the queue, its retries) and dead-letter queues."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from canaryfleet_local.standins.aws_clients import shared_client
from canaryfleet_local.standins.lambda_ import LambdaInvokeInProcess


@dataclass
class FailedDelivery:
    """An async invocation or target delivery that failed every attempt (AWS: the DLQ)."""

    target: str
    error: str
    event: Any


# Errors of the Lambda service itself, before a handler ran: not the function's failures.
LAMBDA_SERVICE_EXCEPTION = "Lambda.ServiceException"
_REFUSED = frozenset({LAMBDA_SERVICE_EXCEPTION, "TooManyRequestsException"})


@dataclass
class AsyncInvocationQueue:
    """Stands in for Lambda's asynchronous invocation queue and EventBridge's delivery retries.

    Deliveries run on worker threads, after the call that caused them has returned, as on
    AWS. A function error (the handler raised, or timed out) is retried twice (Lambda's
    default for async invocations); an invocation the Lambda service refused before the
    handler ran goes back to the queue without using an attempt, as Lambda does with 429 and
    5xx for up to six hours (here: up to ``refusals`` times). What still fails is kept in
    ``failed`` for tests to read, and, where the function has a dead-letter queue
    (``dead_letter_queues``, by function name: moto drops ``DeadLetterConfig``), sent there as
    Lambda sends it: the event as the body, the request id and the error as attributes.
    """

    runtime: LambdaInvokeInProcess
    attempts: int = 3
    refusals: int = 20
    dead_letter_queues: dict[str, str] = field(default_factory=dict)
    failed: list[FailedDelivery] = field(default_factory=list)
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=4))
    _pending: int = 0
    _idle: threading.Condition = field(default_factory=threading.Condition)

    def _submit(self, work: Callable[[], None]) -> Future[None]:
        with self._idle:
            self._pending += 1

        def run() -> None:
            try:
                work()
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

        return self._pool.submit(run)

    def hold(self) -> Callable[[], None]:
        """Count work that runs on threads of its own (a Run Command's instances) as pending
        until the returned release is called: ``wait_idle`` waits for it as for a delivery."""
        with self._idle:
            self._pending += 1
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

        return release

    def submit_invoke(self, function_name: str, payload: Any) -> None:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)

        def work() -> None:
            error = ""
            attempts = refusals = 0
            while attempts < self.attempts and refusals <= self.refusals:
                response, failed = self.runtime.run(function_name, body, "Event")
                if not failed:
                    return
                error = json.loads(response).get("errorType", "Unhandled")
                if error in _REFUSED:
                    refusals += 1
                else:
                    attempts += 1
            self.failed.append(
                FailedDelivery(target=function_name, error=error, event=json.loads(body or "{}"))
            )
            self._dead_letter(function_name, body, error)

        self._submit(work)

    def _dead_letter(self, function_name: str, body: str | bytes, error: str) -> None:
        queue_url = self.dead_letter_queues.get(function_name.rsplit(":", 1)[-1])
        if queue_url is None:
            return
        text = body.decode() if isinstance(body, bytes) else body
        shared_client("sqs", self.runtime.region).send_message(
            QueueUrl=queue_url,
            MessageBody=text or "{}",
            MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": error or "Unhandled"},
            },
        )

    def submit_call(self, target: str, event: Any, call: Callable[[], None]) -> None:
        def work() -> None:
            error = ""
            for _ in range(self.attempts):
                try:
                    call()
                    return
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
            self.failed.append(FailedDelivery(target=target, error=error, event=event))

        self._submit(work)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no delivery is queued or running; False if that took longer than timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def lambda_dead_letter_queues(cfn_template: dict[str, Any], physical_ids: dict[str, str]) -> dict[str, str]:
    """Stands in for ``DeadLetterConfig``, which moto's Lambda drops: function name -> queue URL.

    Only SQS targets named by ``Fn::GetAtt <queue>.Arn`` (how template.yaml names them).
    """
    queues = {}
    for logical_id, resource in cfn_template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function" or logical_id not in physical_ids:
            continue
        target = resource.get("Properties", {}).get("DeadLetterConfig", {}).get("TargetArn")
        if isinstance(target, dict) and "Fn::GetAtt" in target:
            queue_id, attribute = target["Fn::GetAtt"]
            if attribute == "Arn" and cfn_template["Resources"][queue_id]["Type"] == "AWS::SQS::Queue":
                queues[physical_ids[logical_id]] = physical_ids[queue_id]
    return queues
