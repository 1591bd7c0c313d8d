"""DynamoDB: concurrent requests, and the range of a number."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest import mock

from moto.dynamodb.exceptions import MockValidationException
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


# "Positive range: 1E-130 to 9.9999999999999999999999999999999999999E+125; negative range:
# -9.9999999999999999999999999999999999999E+125 to -1E-130" (DynamoDB Developer Guide,
# "Supported data types and naming rules",
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html).
DYNAMODB_NUMBER_SMALLEST = Decimal("1E-130")
DYNAMODB_NUMBER_LARGEST = Decimal("9.9999999999999999999999999999999999999E+125")
_OUT_OF_RANGE = "Attempting to store a number with magnitude"


def number_refusal(request: Any) -> str | None:
    """Why DynamoDB refuses a number somewhere in ``request`` (any attribute value, at any depth:
    an item, expression attribute values, a transaction's items), or None."""
    if isinstance(request, list):
        return next((why for why in map(number_refusal, request) if why), None)
    if not isinstance(request, dict):
        return None
    numbers = [request["N"]] if isinstance(request.get("N"), str) else []
    if isinstance(request.get("NS"), list):
        numbers += [n for n in request["NS"] if isinstance(n, str)]
    for text in numbers:
        try:
            magnitude = Decimal(text).copy_abs()  # exact: abs() rounds to the context's 28 digits
        except ArithmeticError:
            continue  # not a number: moto's own check says so
        if magnitude and magnitude < DYNAMODB_NUMBER_SMALLEST:
            return f"Number underflow. {_OUT_OF_RANGE} smaller than supported range"
        if magnitude > DYNAMODB_NUMBER_LARGEST:
            return f"Number overflow. {_OUT_OF_RANGE} larger than supported range"
    return next((why for why in map(number_refusal, request.values()) if why), None)


class DynamoDBNumberRange:
    """Stands in for DynamoDB refusing a number outside its range in any write.

    moto checks the range of an item's numbers in PutItem, but not inside a list, and not in
    UpdateItem's expression attribute values at all: there a number is stored however small or
    large. DynamoDB refuses the request with ``ValidationException`` and changes nothing.
    """

    _WRITES = ("put_item", "update_item", "transact_write_items", "batch_write_item")

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        def checked(original: Any) -> Any:
            def write(handler: Any) -> Any:
                why = number_refusal(handler.body)
                if why:
                    raise MockValidationException(why)
                return original(handler)

            return write

        with contextlib.ExitStack() as stack:
            for name in self._WRITES:
                stack.enter_context(
                    mock.patch.object(DynamoHandler, name, checked(getattr(DynamoHandler, name)))
                )
            yield
