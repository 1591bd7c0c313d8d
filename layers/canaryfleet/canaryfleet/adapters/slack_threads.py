"""Where each rollout's Slack thread is: item ``APP#<app>`` / ``SLACK#<rollout id>`` of the state table.

The first notice of a rollout claims the item and posts the thread's first message (the
rollout's card); the others find it and reply. The card shows the furthest stage any notice
has reached (``rank``), so notices that arrive out of order never move it back. This is the
``SlackThreads`` port (``canaryfleet.ports.notify``) on DynamoDB.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from canaryfleet.adapters.clients import client
from canaryfleet.adapters.dynamo import expiry, plain, s, unless_condition_failed
from canaryfleet.adapters.rollout_store import app_pk
from canaryfleet.models.approval import SlackMessageRef
from canaryfleet.models.thread import Thread
from canaryfleet.ports.notify import STALE_CLAIM

# Longer than any rollout runs (its execution's year; a hold alone may last 120 days): once
# DynamoDB's TTL deletes the item, the next notice would start a second card for the rollout.
THREAD_DAYS = 400


def thread_sk(rollout_id: str) -> str:
    return f"SLACK#{rollout_id}"


class DynamoSlackThreads:
    def __init__(self, table_name: str) -> None:
        self._table = table_name

    def _key(self, application: str, rollout_id: str) -> dict[str, dict[str, str]]:
        return {"pk": s(app_pk(application)), "sk": s(thread_sk(rollout_id))}

    def find(self, application: str, rollout_id: str) -> Thread | None:
        item = (
            client("dynamodb")
            .get_item(TableName=self._table, Key=self._key(application, rollout_id), ConsistentRead=True)
            .get("Item")
        )
        values = plain(item) if item else {}
        if "ts" not in values:
            return None
        rank = Decimal(str(values.get("rank", 0)))
        card = values.get("card")
        return Thread(
            SlackMessageRef(channel=values["channel"], ts=values["ts"]),
            rank,
            card if isinstance(card, str) else None,
        )

    def _update(self, application: str, rollout_id: str, **request: Any) -> bool:
        """Update the thread's item; False if the request's condition did not hold."""
        updated = unless_condition_failed(
            lambda: client("dynamodb").update_item(
                TableName=self._table, Key=self._key(application, rollout_id), **request
            )
        )
        return updated is not None

    def claim(self, application: str, rollout_id: str, now: datetime) -> bool:
        return self._update(
            application,
            rollout_id,
            UpdateExpression="SET claimed_at = :now, expires_at = :expires",
            ConditionExpression="attribute_not_exists(ts) AND "
            "(attribute_not_exists(claimed_at) OR claimed_at < :stale)",
            ExpressionAttributeValues={
                ":now": s(now.isoformat()),
                ":stale": s((now - STALE_CLAIM).isoformat()),
                ":expires": expiry(THREAD_DAYS),
            },
        )

    def release(self, application: str, rollout_id: str) -> None:
        # Once the thread has started there is no claim to give up: nothing to do.
        self._update(
            application,
            rollout_id,
            UpdateExpression="REMOVE claimed_at",
            ConditionExpression="attribute_not_exists(ts)",
        )

    def started(
        self, application: str, rollout_id: str, message: SlackMessageRef, rank: Decimal, card: str
    ) -> None:
        self._update(
            application,
            rollout_id,
            UpdateExpression="SET channel = :channel, ts = :ts, #rank = :rank, card = :card",
            ExpressionAttributeNames={"#rank": "rank"},
            ExpressionAttributeValues={
                ":channel": s(message.channel),
                ":ts": s(message.ts),
                ":rank": {"N": str(rank)},
                ":card": s(card),
            },
        )

    def advance(self, application: str, rollout_id: str, rank: Decimal, card: str) -> bool:
        return self._update(
            application,
            rollout_id,
            UpdateExpression="SET #rank = :rank, card = :card",
            ConditionExpression="attribute_exists(ts) AND #rank < :rank",
            ExpressionAttributeNames={"#rank": "rank"},
            ExpressionAttributeValues={":rank": {"N": str(rank)}, ":card": s(card)},
        )
