"""Rollout records in the state table (pk ``APP#<app>``, sk ``ROLLOUT#<rollout id>``)."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.models.rollout import RolloutInput, Stage


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

    def create(self, rollout: RolloutInput, received_at: datetime) -> bool:
        item: dict[str, Any] = {
            "pk": {"S": app_pk(rollout.application)},
            "sk": {"S": rollout_sk(rollout.rollout_id)},
            "rollout_id": {"S": rollout.rollout_id},
            "application": {"S": rollout.application},
            "version": {"S": rollout.version},
            "artifact_bucket": {"S": rollout.artifact.bucket},
            "artifact_key": {"S": rollout.artifact.key},
            "status": {"S": "received"},
            "received_at": {"S": received_at.isoformat()},
        }
        optional = {
            "artifact_version_id": rollout.artifact.version_id,
            "artifact_etag": rollout.artifact.etag,
            "commit": rollout.commit,
            "build_url": rollout.build_url,
        }
        item.update({name: {"S": value} for name, value in optional.items() if value})
        try:
            client("dynamodb").put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record_stage(self, application: str, rollout_id: str, stage: Stage, at: datetime) -> StageTransition:
        # The condition makes a stage count once: a retried task or a late duplicate
        # changes nothing and never moves current_stage backwards.
        try:
            response = client("dynamodb").update_item(
                TableName=self._table,
                Key={"pk": {"S": app_pk(application)}, "sk": {"S": rollout_sk(rollout_id)}},
                UpdateExpression="SET #stage_at = :at, current_stage = :stage, current_stage_at = :at",
                ConditionExpression="attribute_not_exists(#stage_at)",
                ExpressionAttributeNames={"#stage_at": f"stage_{stage.value}_at"},
                ExpressionAttributeValues={":at": {"S": at.isoformat()}, ":stage": {"S": stage.value}},
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
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
