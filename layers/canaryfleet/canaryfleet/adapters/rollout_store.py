"""Rollout state in the state table.

Items, all under pk ``APP#<app>`` unless said otherwise:
- ``LOCK``: the running rollout (owner execution ARN); one per application.
- ``QUEUE#<arrival>#<rollout id>``: a rollout waiting its turn, with its task token.
- ``ROLLOUT#<rollout id>``: the rollout record (stages, weights, waits, verdict, outcome, audit).
- ``VERSION#<version>``: released or rejected, so a version is never rolled out twice.
- ``RELEASE#CURRENT``: the last good revision.
- pk ``DEPLOYMENT#<id>``: a CodeDeploy deployment's waiting token and final status, whichever
  arrives first.
"""

from __future__ import annotations

import abc
import json
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.adapters.dynamo import condition_failed, plain, s, typed
from canaryfleet.models.rollout import Revision, RolloutInput, Stage

DEPLOYMENT_RECORD_DAYS = 14


def app_pk(application: str) -> str:
    return f"APP#{application}"


def rollout_sk(rollout_id: str) -> str:
    return f"ROLLOUT#{rollout_id}"


class StageTransition:
    """What recording a stage changed: whether it was new, and the stage it followed."""

    def __init__(self, first_time: bool, previous_stage: Stage | None, previous_at: datetime | None):
        self.first_time = first_time
        self.previous_stage = previous_stage
        self.previous_at = previous_at


class QueuedRollout:
    def __init__(
        self, sk: str, rollout_id: str, execution_arn: str, token: str | None, enqueued_at: str
    ) -> None:
        self.sk = sk
        self.rollout_id = rollout_id
        self.execution_arn = execution_arn
        self.token = token
        self.enqueued_at = enqueued_at


class RolloutStore(abc.ABC):
    @abc.abstractmethod
    def create(self, rollout: RolloutInput, received_at: datetime) -> bool:
        """Create the record once; return False if it already existed."""

    @abc.abstractmethod
    def record_stage(self, application: str, rollout_id: str, stage: Stage, at: datetime) -> StageTransition:
        """Record that a stage was entered, once per stage."""


class DynamoRolloutStore(RolloutStore):
    def __init__(self, table_name: str) -> None:
        self._table = table_name

    @property
    def _db(self) -> Any:
        return client("dynamodb")

    # -- the rollout record ------------------------------------------------------------
    def create(self, rollout: RolloutInput, received_at: datetime, arrival: str | None = None) -> bool:
        item: dict[str, Any] = {
            "pk": s(app_pk(rollout.application)),
            "sk": s(rollout_sk(rollout.rollout_id)),
            "rollout_id": s(rollout.rollout_id),
            "application": s(rollout.application),
            "version": s(rollout.version),
            "artifact_bucket": s(rollout.artifact.bucket),
            "artifact_key": s(rollout.artifact.key),
            "status": s("received"),
            "received_at": s(received_at.isoformat()),
            "weight_log": {"M": {}},
            "audit": {"L": []},
        }
        optional = {
            "artifact_version_id": rollout.artifact.version_id,
            "artifact_etag": rollout.artifact.etag,
            "commit": rollout.commit,
            "build_url": rollout.build_url,
            "arrival": arrival,
        }
        item.update({name: s(value) for name, value in optional.items() if value})
        try:
            self._db.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def get(self, application: str, rollout_id: str) -> dict[str, Any] | None:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s(rollout_sk(rollout_id))},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return plain(item) if item else None

    def update(self, application: str, rollout_id: str, **values: Any) -> None:
        """Set top-level attributes of the rollout record."""
        names = {f"#a{i}": name for i, name in enumerate(values)}
        self._db.update_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s(rollout_sk(rollout_id))},
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":v{i}": typed(v) for i, v in enumerate(values.values())},
        )

    def append_audit(self, application: str, rollout_id: str, entry: dict[str, Any]) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s(rollout_sk(rollout_id))},
            UpdateExpression="SET audit = list_append(if_not_exists(audit, :empty), :entry)",
            ExpressionAttributeValues={":entry": {"L": [typed(entry)]}, ":empty": {"L": []}},
        )

    def log_weight(self, application: str, rollout_id: str, seq: str, weight: int, at: datetime) -> None:
        """Record the canary weight set at step ``seq``; a retry of the same step overwrites itself."""
        self._db.update_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s(rollout_sk(rollout_id))},
            UpdateExpression="SET weight_log.#seq = :entry",
            ExpressionAttributeNames={"#seq": seq},
            ExpressionAttributeValues={":entry": typed({"weight": weight, "at": at.isoformat()})},
        )

    def record_stage(self, application: str, rollout_id: str, stage: Stage, at: datetime) -> StageTransition:
        # The condition makes a stage count once: a retried task or a late duplicate
        # changes nothing and never moves current_stage backwards.
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key={"pk": s(app_pk(application)), "sk": s(rollout_sk(rollout_id))},
                UpdateExpression="SET #stage_at = :at, current_stage = :stage, current_stage_at = :at",
                ConditionExpression="attribute_not_exists(#stage_at)",
                ExpressionAttributeNames={"#stage_at": f"stage_{stage.value}_at"},
                ExpressionAttributeValues={":at": s(at.isoformat()), ":stage": s(stage.value)},
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as exc:
            if condition_failed(exc):
                return StageTransition(first_time=False, previous_stage=None, previous_at=None)
            raise
        old = response.get("Attributes", {})
        previous = old.get("current_stage", {}).get("S")
        previous_at = old.get("current_stage_at", {}).get("S")
        return StageTransition(
            first_time=True,
            previous_stage=Stage(previous) if previous else None,
            previous_at=datetime.fromisoformat(previous_at) if previous_at else None,
        )

    def list_rollouts(self, application: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": s(app_pk(application)), ":prefix": s("ROLLOUT#")},
        }
        while True:
            response = self._db.query(**kwargs)
            items.extend(plain(i) for i in response["Items"])
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- waits ---------------------------------------------------------------------------
    def set_wait(
        self, application: str, rollout_id: str, kind: str, token: str, **extra: Any
    ) -> dict[str, Any]:
        """Store the token of the wait the rollout is in; returns the record after the change."""
        values = {"wait_kind": kind, "wait_token": token, "wait_started_at": _now(), **extra}
        names = {f"#a{i}": name for i, name in enumerate(values)}
        response = self._db.update_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s(rollout_sk(rollout_id))},
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":v{i}": typed(v) for i, v in enumerate(values.values())},
            ReturnValues="ALL_NEW",
        )
        return plain(response["Attributes"])

    def clear_wait(self, application: str, rollout_id: str, token: str) -> None:
        """Forget a wait's token once it ended, unless a newer wait replaced it."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": s(app_pk(application)), "sk": s(rollout_sk(rollout_id))},
                UpdateExpression="REMOVE wait_token, wait_kind",
                ConditionExpression="wait_token = :token",
                ExpressionAttributeValues={":token": s(token)},
            )
        except ClientError as exc:
            if not condition_failed(exc):
                raise

    # -- lock and queue ------------------------------------------------------------------
    def enqueue(self, application: str, arrival: str, rollout_id: str, execution_arn: str) -> None:
        """Take a place in the application's queue at arrival (before the execution starts)."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": s(app_pk(application)),
                    "sk": s(f"QUEUE#{arrival}#{rollout_id}"),
                    "rollout_id": s(rollout_id),
                    "execution_arn": s(execution_arn),
                    "enqueued_at": s(_now()),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not condition_failed(exc):
                raise

    def attach_queue_token(
        self, application: str, arrival: str, rollout_id: str, execution_arn: str, token: str
    ) -> None:
        """The queued rollout's execution now waits for its turn with ``token``."""
        self._db.update_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s(f"QUEUE#{arrival}#{rollout_id}")},
            UpdateExpression=(
                "SET #token = :token, rollout_id = :rollout, execution_arn = :execution, "
                "enqueued_at = if_not_exists(enqueued_at, :now)"
            ),
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues={
                ":token": s(token),
                ":rollout": s(rollout_id),
                ":execution": s(execution_arn),
                ":now": s(_now()),
            },
        )

    def drop_from_queue(self, application: str, sk: str) -> None:
        self._db.delete_item(TableName=self._table, Key={"pk": s(app_pk(application)), "sk": s(sk)})

    def queue_head(self, application: str) -> QueuedRollout | None:
        response = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": s(app_pk(application)), ":prefix": s("QUEUE#")},
            ConsistentRead=True,
            Limit=1,
        )
        if not response["Items"]:
            return None
        item = plain(response["Items"][0])
        return QueuedRollout(
            item["sk"],
            item["rollout_id"],
            item["execution_arn"],
            item.get("token"),
            item.get("enqueued_at", ""),
        )

    def queue_length(self, application: str) -> int:
        response = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": s(app_pk(application)), ":prefix": s("QUEUE#")},
            ConsistentRead=True,
            Select="COUNT",
        )
        return int(response["Count"])

    def lock(self, application: str) -> dict[str, Any] | None:
        response = self._db.get_item(
            TableName=self._table, Key={"pk": s(app_pk(application)), "sk": s("LOCK")}, ConsistentRead=True
        )
        item = response.get("Item")
        return plain(item) if item else None

    def hand_lock_to(self, application: str, head: QueuedRollout) -> bool:
        """Give the free lock to the head of the queue, atomically; False if someone else got it."""
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                "pk": s(app_pk(application)),
                                "sk": s("LOCK"),
                                "owner": s(head.execution_arn),
                                "rollout_id": s(head.rollout_id),
                                "acquired_at": s(_now()),
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": {"pk": s(app_pk(application)), "sk": s(head.sk)},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                return False
            raise
        return True

    def release_lock(self, application: str, owner: str) -> bool:
        """Delete the lock if ``owner`` holds it; False if it did not."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={"pk": s(app_pk(application)), "sk": s("LOCK")},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": s(owner)},
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    # -- versions and releases -----------------------------------------------------------
    def version_status(self, application: str, version: str) -> dict[str, Any] | None:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s(f"VERSION#{version}")},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return plain(item) if item else None

    def decide_version(
        self, application: str, version: str, status: str, rollout_id: str, reason: str
    ) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": s(app_pk(application)),
                "sk": s(f"VERSION#{version}"),
                "status": s(status),
                "rollout_id": s(rollout_id),
                "reason": s(reason),
                "at": s(_now()),
            },
        )

    def last_good(self, application: str) -> Revision | None:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s("RELEASE#CURRENT")},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return Revision.model_validate_json(plain(item)["revision"]) if item else None

    def set_last_good(self, application: str, revision: Revision, rollout_id: str) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": s(app_pk(application)),
                "sk": s("RELEASE#CURRENT"),
                "revision": s(revision.model_dump_json()),
                "rollout_id": s(rollout_id),
                "at": s(_now()),
            },
        )

    # -- CodeDeploy deployments ----------------------------------------------------------
    def deployment_for(self, rollout_id: str, purpose: str) -> str | None:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": s(f"ROLLOUT-DEPLOYMENTS#{rollout_id}"), "sk": s(purpose)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return str(item["deployment_id"]["S"]) if item else None

    def remember_deployment(self, rollout_id: str, purpose: str, deployment_id: str, group: str) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": s(f"ROLLOUT-DEPLOYMENTS#{rollout_id}"),
                "sk": s(purpose),
                "deployment_id": s(deployment_id),
                "group": s(group),
                "at": s(_now()),
            },
        )

    def deployments_of(self, rollout_id: str) -> list[dict[str, Any]]:
        response = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": s(f"ROLLOUT-DEPLOYMENTS#{rollout_id}")},
            ConsistentRead=True,
        )
        return [plain(i) for i in response["Items"]]

    def attach_deployment_token(self, deployment_id: str, token: str, context: dict[str, str]) -> str | None:
        """Store the token waiting for a deployment; returns its final status if already known."""
        response = self._db.update_item(
            TableName=self._table,
            Key={"pk": s(f"DEPLOYMENT#{deployment_id}"), "sk": s("DEPLOYMENT")},
            UpdateExpression="SET task_token = :token, context = :context, expires_at = :ttl",
            ExpressionAttributeValues={
                ":token": s(token),
                ":context": s(json.dumps(context)),
                ":ttl": {"N": str(int(time.time()) + DEPLOYMENT_RECORD_DAYS * 86_400)},
            },
            ReturnValues="ALL_NEW",
        )
        final = response["Attributes"].get("final_status", {}).get("S")
        return str(final) if final else None

    def record_deployment_outcome(
        self, deployment_id: str, status: str, detail: str
    ) -> dict[str, Any] | None:
        """Record a deployment's final status once; returns the item (with any token) the first time."""
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key={"pk": s(f"DEPLOYMENT#{deployment_id}"), "sk": s("DEPLOYMENT")},
                UpdateExpression="SET final_status = :status, final_detail = :detail, expires_at = :ttl",
                ConditionExpression="attribute_not_exists(final_status)",
                ExpressionAttributeValues={
                    ":status": s(status),
                    ":detail": s(detail),
                    ":ttl": {"N": str(int(time.time()) + DEPLOYMENT_RECORD_DAYS * 86_400)},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if condition_failed(exc):
                return None
            raise
        return plain(response["Attributes"])


def _now() -> str:
    return datetime.now(UTC).isoformat()
