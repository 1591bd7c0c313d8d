"""The state table's item helpers, shared by every store: attribute values and plain values.

Each store keeps its own keys and conditions; this module only converts between Python
values and DynamoDB attribute values, the same way for all of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import error_code

if TYPE_CHECKING:  # the stubs are a development dependency: the layer does not ship them
    from mypy_boto3_dynamodb import DynamoDBClient

_T = TypeVar("_T")

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def s(value: str) -> dict[str, str]:
    """A string attribute value."""
    return {"S": value}


# DynamoDB keeps numbers of magnitude 1E-130 to 9.9999999999999999999999999999999999999E+125
# and refuses a write that holds any other ("Number underflow" / "overflow": Developer Guide,
# "Supported data types and naming rules"). The p-value of a clearly failing canary is far
# smaller (1E-167 for 6% errors against 0.5% over 5,000 requests): stored as it is, it would
# fail the very write that records the verdict.
_SMALLEST = Decimal("1E-130")
_LARGEST = Decimal("9.9999999999999999999999999999999999999E+125")


def _storable(text: str) -> Decimal:
    """A float DynamoDB keeps: 0 below its smallest magnitude, its largest above its range."""
    number = Decimal(text)
    magnitude = number.copy_abs()  # exact: abs() would round to the context's 28 digits
    if magnitude < _SMALLEST:
        return Decimal(0)
    return _LARGEST.copy_sign(number) if magnitude > _LARGEST else number


def _constant(name: str) -> Decimal | None:
    """NaN has no DynamoDB number: null; an infinity is kept as the largest number of its sign."""
    return None if name == "NaN" else _LARGEST.copy_sign(Decimal(name))


def typed(value: Any) -> dict[str, Any]:
    """A JSON-able value as a DynamoDB attribute value (floats go through Decimal, in DynamoDB's range)."""
    document = json.loads(json.dumps(value), parse_float=_storable, parse_constant=_constant)
    return cast("dict[str, Any]", _SERIALIZER.serialize(document))


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_number(v) for v in value]
    if isinstance(value, set):
        return sorted(value)
    return value


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values (numbers as int or float, sets as sorted lists)."""
    return {key: _number(_DESERIALIZER.deserialize(value)) for key, value in item.items()}


def expiry(days: int) -> dict[str, str]:
    """The table's time-to-live attribute value (``expires_at``), ``days`` from now."""
    return {"N": str(int(time.time()) + days * 86_400)}


def condition_failed(exc: ClientError) -> bool:
    """The write's condition did not hold (someone else got there first, or it was done)."""
    return error_code(exc) == "ConditionalCheckFailedException"


def condition_failed_in_transaction(exc: ClientError) -> bool:
    """A TransactWriteItems cancelled because one of its conditions failed (not a conflict with
    another transaction, a throttle or a validation error): its ``CancellationReasons``, one per
    item in order, hold ``ConditionalCheckFailed`` (botocore dynamodb model, ``CancellationReason``).
    DynamoDB's API reference says only the Java SDK sets that property; botocore sets it too: it
    parses an error's modeled fields into the response (``endpoint._add_modeled_error_fields``)."""
    if error_code(exc) != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    return any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons)


def unless_condition_failed(write: Callable[[], _T]) -> _T | None:
    """Make a conditional write: its response, or None if its condition did not hold."""
    try:
        return write()
    except ClientError as exc:
        if condition_failed(exc):
            return None
        raise


def put_new(db: DynamoDBClient, table: str, item: dict[str, Any]) -> bool:
    """Put an item unless one with its key exists; False if one did (a retry or a duplicate)."""
    written = unless_condition_failed(
        lambda: db.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    )
    return written is not None
