"""DynamoDB: concurrent requests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.responses import DynamoHandler

_SCALAR_TYPES = frozenset({"S", "N", "BOOL"})


class DynamoDBConcurrentRequests:
    """Stands in for DynamoDB serving requests from many callers at once.

    moto's tables are plain dicts: a Query or Scan iterating one while another thread's
    PutItem adds a key fails with "dictionary changed size during iteration". On the local
    cloud functions, state machine threads, the simulator and tests call DynamoDB at the same
    time, so each request is handled whole under one lock, as DynamoDB's own isolation of
    single-item operations would have it.
    """

    def __init__(self, account_id: str = "", region: str = "") -> None:
        self.account_id = account_id
        self.region = region
        self._lock = threading.RLock()

    def read(self, table: str, pk: str, sk: str, names: tuple[str, ...]) -> dict[str, Any] | None:
        """Not an AWS behaviour: some attributes of one item, as GetItem's ``Item`` shows them.

        For the fleet simulator, which looks at every application's rollout several times a
        second: through the API, moto copies and serializes the whole item each time, which took
        a third of the interpreter with 50 applications. The read is made under the same lock as
        the API's requests, and only string, number and boolean attributes are returned.
        """
        backend = dynamodb_backends[self.account_id][self.region]
        with self._lock:
            found = backend.get_table(table).get_item(DynamoType({"S": pk}), DynamoType({"S": sk}))
            if found is None:
                return None
            attributes = {name: found.attrs[name] for name in names if name in found.attrs}
            return {
                name: {value.type: value.value}
                for name, value in attributes.items()
                if value.type in _SCALAR_TYPES
            }

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = DynamoHandler.call_action
        lock = self._lock

        def call_action(handler: Any) -> Any:
            with lock:
                return original(handler)

        with mock.patch.object(DynamoHandler, "call_action", call_action):
            yield
