"""DynamoDB: concurrent requests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.dynamodb.responses import DynamoHandler


class DynamoDBConcurrentRequests:
    """Stands in for DynamoDB serving requests from many callers at once.

    moto's tables are plain dicts: a Query or Scan iterating one while another thread's
    PutItem adds a key fails with "dictionary changed size during iteration". On the local
    cloud functions, state machine threads, the simulator and tests call DynamoDB at the same
    time, so each request is handled whole under one lock, as DynamoDB's own isolation of
    single-item operations would have it.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = DynamoHandler.call_action
        lock = self._lock

        def call_action(handler: Any) -> Any:
            with lock:
                return original(handler)

        with mock.patch.object(DynamoHandler, "call_action", call_action):
            yield
