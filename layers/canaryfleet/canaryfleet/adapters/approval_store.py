"""Approval records in the state table: pk ``APPROVAL#<approval id>``, sk ``APPROVAL``; and the
Slack requests already handled: pk ``SLACKREQ#<sha256 of the signature>``, sk ``SLACKREQ``.

Every change of status is a conditional write, so two decisions (two clicks, a click and a
Slack button, a decision and the expiry) can never both win.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client
from canaryfleet.adapters.dynamo import condition_failed, plain, put_new, typed
from canaryfleet.models.approval import Approval, ApprovalDecision, ApprovalStatus, SlackMessageRef

if TYPE_CHECKING:  # the stubs are a development dependency: the layer does not ship them
    from mypy_boto3_dynamodb import DynamoDBClient

# Approval records stay readable (the page says what happened) for a while after they expire.
KEEP_AFTER_EXPIRY = timedelta(days=30)
_PENDING, _DECIDING = ApprovalStatus.PENDING.value, ApprovalStatus.DECIDING.value
_OPEN = "#status = :pending OR (#status = :deciding AND claimed_at < :stale)"


def approval_key(approval_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"APPROVAL#{approval_id}"}, "sk": {"S": "APPROVAL"}}


def slack_request_key(request_digest: str) -> dict[str, dict[str, str]]:
    """A Slack request seen once: the SHA-256 of its signature, never the signature itself."""
    return {"pk": {"S": f"SLACKREQ#{request_digest}"}, "sk": {"S": "SLACKREQ"}}


def _with_decision(update: str, values: dict[str, Any], decision: ApprovalDecision | None, keep: bool) -> str:
    """``update`` that also sets ``decision``, or removes the one a claim left (unless ``keep``)."""
    if decision is not None:
        values[":decision"] = typed(decision.model_dump(mode="json"))
        return update + ", decision = :decision"
    return update if keep else update + " REMOVE decision"


class DynamoApprovalStore:
    """The approval store (``canaryfleet.ports.approvals.ApprovalStore``) on the state table."""

    def __init__(self, table_name: str) -> None:
        self._table = table_name

    @property
    def _db(self) -> DynamoDBClient:
        return client("dynamodb")

    def create(self, approval: Approval) -> bool:
        values = approval.model_dump(mode="json", exclude_none=True)
        # The table's TTL attribute is a number named expires_at; the approval's own expiry is
        # kept as approval_expires_at (the rollout record's name for it too).
        values["approval_expires_at"] = values.pop("expires_at")
        item = {key: typed(value) for key, value in values.items()}
        keep_until = approval.expires_at + KEEP_AFTER_EXPIRY
        item.update(approval_key(approval.approval_id))
        item["expires_at"] = {"N": str(int(keep_until.timestamp()))}
        return put_new(self._db, self._table, item)

    def get(self, approval_id: str) -> Approval | None:
        response = self._db.get_item(
            TableName=self._table, Key=approval_key(approval_id), ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        values = plain(item)
        values["expires_at"] = values.pop("approval_expires_at")
        return Approval.model_validate(values)

    def _conditional_update(self, approval_id: str, **kwargs: Any) -> bool:
        try:
            self._db.update_item(TableName=self._table, Key=approval_key(approval_id), **kwargs)
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def claim(
        self, approval_id: str, decision: ApprovalDecision, claim_id: str, stale_before: datetime
    ) -> bool:
        return self._conditional_update(
            approval_id,
            UpdateExpression="SET #status = :deciding, decision = :decision, claim_id = :claim, "
            "claimed_at = :now",
            ConditionExpression=f"attribute_exists(pk) AND ({_OPEN})",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":deciding": {"S": _DECIDING},
                ":pending": {"S": _PENDING},
                ":decision": typed(decision.model_dump(mode="json")),
                ":claim": {"S": claim_id},
                ":now": {"S": decision.at.isoformat()},
                ":stale": {"S": stale_before.isoformat()},
            },
        )

    def finish(
        self,
        approval_id: str,
        claim_id: str,
        status: ApprovalStatus,
        reason: str = "",
        decision: ApprovalDecision | None = None,
    ) -> bool:
        values: dict[str, Any] = {
            ":status": {"S": status.value},
            ":reason": {"S": reason},
            ":claim": {"S": claim_id},
        }
        decided = status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
        update = _with_decision("SET #status = :status, closed_reason = :reason", values, decision, decided)
        return self._conditional_update(
            approval_id,
            UpdateExpression=update,
            ConditionExpression="claim_id = :claim",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )

    def release(self, approval_id: str, claim_id: str) -> None:
        self._conditional_update(
            approval_id,
            UpdateExpression="SET #status = :pending REMOVE decision, claim_id, claimed_at",
            ConditionExpression="claim_id = :claim AND #status = :deciding",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":pending": {"S": _PENDING},
                ":deciding": {"S": _DECIDING},
                ":claim": {"S": claim_id},
            },
        )

    def settle(
        self,
        approval_id: str,
        status: ApprovalStatus,
        at: datetime,
        stale_before: datetime,
        decision: ApprovalDecision | None = None,
        reason: str = "",
    ) -> bool:
        values: dict[str, Any] = {
            ":status": {"S": status.value},
            ":pending": {"S": _PENDING},
            ":deciding": {"S": _DECIDING},
            ":at": {"S": at.isoformat()},
            ":stale": {"S": stale_before.isoformat()},
            ":reason": {"S": reason},
        }
        update = _with_decision(
            "SET #status = :status, settled_at = :at, closed_reason = :reason", values, decision, False
        )
        return self._conditional_update(
            approval_id,
            UpdateExpression=update + (", " if decision is None else " REMOVE ") + "claim_id, claimed_at",
            ConditionExpression=_OPEN,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )

    def set_slack_message(self, approval_id: str, message: SlackMessageRef) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=approval_key(approval_id),
            UpdateExpression="SET slack_message = :message",
            ExpressionAttributeValues={":message": typed(message.model_dump())},
        )

    def mark_emails_sent(self, approval_id: str) -> bool:
        return self._conditional_update(
            approval_id,
            UpdateExpression="SET emails_sent = :yes",
            ConditionExpression="attribute_exists(pk) AND emails_sent = :no",
            ExpressionAttributeValues={":yes": {"BOOL": True}, ":no": {"BOOL": False}},
        )

    def first_use(self, request_digest: str, keep_until: datetime) -> bool:
        # Kept until past Slack's replay window, then DynamoDB's TTL (expires_at) deletes it.
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    **slack_request_key(request_digest),
                    "expires_at": {"N": str(int(keep_until.timestamp()))},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True
