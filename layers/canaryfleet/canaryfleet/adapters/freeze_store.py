"""Platform-wide freezes in the state table: pk ``FREEZES``, sk ``FREEZE#<id>``.

Removing a freeze marks it removed (who, when, why) instead of deleting it, so the calendar
keeps its own audit. The whole calendar is one partition, read with one Query.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from canaryfleet.adapters.clients import client
from canaryfleet.adapters.dynamo import plain, put_new, s, typed, unless_condition_failed
from canaryfleet.errors import FreezeExists, UnknownFreeze
from canaryfleet.models.calendar import Freeze

if TYPE_CHECKING:  # the stubs are a development dependency: the layer does not ship them
    from mypy_boto3_dynamodb import DynamoDBClient

FREEZES_PK = "FREEZES"


def _key(freeze_id: str) -> dict[str, Any]:
    return {"pk": s(FREEZES_PK), "sk": s(f"FREEZE#{freeze_id}")}


class DynamoFreezeCalendar:
    """The freeze calendar port (:class:`canaryfleet.ports.calendar.FreezeCalendar`)."""

    def __init__(self, table_name: str) -> None:
        self._table = table_name

    @property
    def _db(self) -> DynamoDBClient:
        return client("dynamodb")

    def freezes(self) -> list[Freeze]:
        found: list[Freeze] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :freeze)",
            "ExpressionAttributeValues": {":pk": s(FREEZES_PK), ":freeze": s("FREEZE#")},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**kwargs)
            found.extend(Freeze.model_validate(plain(item)) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def declare(self, freeze: Freeze) -> None:
        item = {**_key(freeze.freeze_id), **{k: typed(v) for k, v in freeze.stored().items()}}
        if not put_new(self._db, self._table, item):
            raise FreezeExists(f"freeze {freeze.freeze_id} already exists")

    def remove(self, freeze_id: str, by: str, reason: str, at: datetime) -> Freeze:
        response = unless_condition_failed(
            lambda: self._db.update_item(
                TableName=self._table,
                Key=_key(freeze_id),
                UpdateExpression="SET removed_by = :by, removed_at = :at, removed_reason = :why",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(removed_at)",
                ExpressionAttributeValues={":by": s(by), ":at": s(at.isoformat()), ":why": s(reason)},
                ReturnValues="ALL_NEW",
            )
        )
        if response is None:
            raise UnknownFreeze(f"no standing freeze {freeze_id} (never declared, or already removed)")
        return Freeze.model_validate(plain(response["Attributes"]))
