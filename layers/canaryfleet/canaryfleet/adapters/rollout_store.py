"""Rollout state in the state table.

Items, all under pk ``APP#<app>`` unless said otherwise:
- ``LOCK``: the running rollout (owner execution ARN); one per application.
- ``QUEUE#<arrival>#<rollout id>``: a rollout waiting its turn, with its task token.
- ``ROLLOUT#<rollout id>``: the rollout record (stages, weights, waits, verdict, outcome, audit).
- ``VERSION#<version>``: released or rejected, so a version is never rolled out twice (a rollout
  that failed before it deployed anything leaves its version undecided: logic/outcome.py).
- ``ROLLING#<version>``: the one rollout the version is being rolled out by.
- ``RELEASE#CURRENT``: the last good revision.
- pk ``DEPLOYMENT#<id>``: a CodeDeploy deployment's waiting token and final status, whichever
  arrives first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.adapters.dynamo import (
    condition_failed,
    condition_failed_in_transaction,
    plain,
    put_new,
    s,
    typed,
    unless_condition_failed,
)
from canaryfleet.models.app_config import Color, Strategy
from canaryfleet.models.artifact import rollout_id_prefix
from canaryfleet.models.rollout import Revision, RolloutInput, Stage, Verdict
from canaryfleet.models.rollout_record import (
    MAX_LISTED_ALARMS,
    AbortRequest,
    AuditEntry,
    DeploymentRecord,
    DeploymentWait,
    LockRecord,
    QueuedRollout,
    RolloutOutcome,
    RolloutRecord,
    StageTransition,
    VersionClaim,
    VersionDecision,
    Wait,
    WindowOverride,
    WindowWait,
    queue_sk,
)
from canaryfleet.ports.clock import Clock, SystemClock

if TYPE_CHECKING:  # the stubs are a development dependency: the layer does not ship them
    from mypy_boto3_dynamodb import DynamoDBClient

# What UpdateItem may return (botocore's dynamodb model: ReturnValue).
ReturnValues = Literal["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"]

DEPLOYMENT_RECORD_DAYS = 14


def app_pk(application: str) -> str:
    return f"APP#{application}"


def rollout_sk(rollout_id: str) -> str:
    return f"ROLLOUT#{rollout_id}"


def _occurrence(
    stage: Stage, step: int | None, what: Literal["at", "notified_at"], extension: int = 0
) -> str:
    """The record's attribute of a stage's occurrence: ``stage_<stage>_at`` (or ``_notified_at``)
    once per rollout, ``stage_<stage>_step<N>_at`` at canary step N, and
    ``stage_<stage>_step<N>_ext<K>_at`` after the Kth extension of its bake."""
    if step is None:
        return f"stage_{stage.value}_{what}"
    return (
        f"stage_{stage.value}_step{step}_ext{extension}_{what}"
        if extension
        else f"stage_{stage.value}_step{step}_{what}"
    )


class DynamoRolloutStore:
    """The rollouts port (:class:`canaryfleet.ports.rollouts.RolloutStore`) on the state table."""

    def __init__(self, table_name: str, clock: Clock | None = None) -> None:
        self._table = table_name
        self._clock = clock or SystemClock()

    @property
    def _db(self) -> DynamoDBClient:
        return client("dynamodb")

    def _now(self) -> str:
        return self._clock.now().isoformat()

    def _key(self, application: str, rollout_id: str) -> dict[str, Any]:
        return {"pk": s(app_pk(application)), "sk": s(rollout_sk(rollout_id))}

    def _set(
        self, application: str, rollout_id: str, values: dict[str, Any], returns: ReturnValues = "NONE"
    ) -> Any:
        """Set top-level attributes of the rollout record (each typed write names its own)."""
        names = {f"#a{i}": name for i, name in enumerate(values)}
        return self._db.update_item(
            TableName=self._table,
            Key=self._key(application, rollout_id),
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":v{i}": typed(v) for i, v in enumerate(values.values())},
            ReturnValues=returns,
        )

    # -- the rollout record ------------------------------------------------------------
    def create(self, rollout: RolloutInput, received_at: datetime, arrival: str | None = None) -> bool:
        item: dict[str, Any] = {
            **self._key(rollout.application, rollout.rollout_id),
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
        if rollout.bundle_notes:
            item["bundle_notes"] = {"L": [s(note) for note in rollout.bundle_notes]}
        if rollout.policy is not None:
            item["policy"] = typed(rollout.policy.model_dump(mode="json"))
        return put_new(self._db, self._table, item)

    def get(self, application: str, rollout_id: str) -> RolloutRecord | None:
        response = self._db.get_item(
            TableName=self._table, Key=self._key(application, rollout_id), ConsistentRead=True
        )
        item = response.get("Item")
        return RolloutRecord.model_validate(plain(item)) if item else None

    def mark_started(self, application: str, rollout_id: str, execution_arn: str) -> None:
        self._set(application, rollout_id, {"status": "started", "execution_arn": execution_arn})

    def record_outcome(
        self,
        application: str,
        rollout_id: str,
        outcome: RolloutOutcome,
        reason: str,
        *,
        error: str | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        """How the rollout ended; a rejected upload has no end time (it never started)."""
        values: dict[str, Any] = {"status": outcome, "outcome": outcome, "reason": reason}
        if error is not None:
            values["error"] = error
        if ended_at is not None:
            values["ended_at"] = ended_at.isoformat()
        self._set(application, rollout_id, values)

    def record_verdict(self, application: str, rollout_id: str, verdict: Verdict) -> None:
        self._set(application, rollout_id, {"verdict": verdict.model_dump(mode="json")})

    def record_decision(self, application: str, rollout_id: str, decision: AuditEntry) -> None:
        self._set(application, rollout_id, {"decision": decision.stored()})

    def request_abort(self, application: str, rollout_id: str, request: AbortRequest) -> None:
        self._set(application, rollout_id, {"abort_requested": request.model_dump(mode="json")})

    def abort_requested(self, application: str, rollout_id: str) -> AbortRequest | None:
        """The abort asked for the rollout, if any: a strongly consistent read of that attribute
        alone, so an abort recorded a moment ago is seen ("A strongly consistent read returns a
        result that reflects all writes that received a successful response prior to the read",
        DynamoDB Developer Guide, "Read consistency")."""
        response = self._db.get_item(
            TableName=self._table,
            Key=self._key(application, rollout_id),
            ConsistentRead=True,
            ProjectionExpression="abort_requested",
        )
        asked = plain(response.get("Item") or {}).get("abort_requested")
        return AbortRequest.model_validate(asked) if asked is not None else None

    def request_promotion(self, application: str, rollout_id: str, by: str) -> None:
        self._set(application, rollout_id, {"promoted_by": by})

    def append_audit(self, application: str, rollout_id: str, entry: AuditEntry) -> None:
        """Add ``entry`` to the record's audit; past MAX_LISTED_ALARMS alarms, count them instead.

        A record is one item, and an item holds at most 400 KB (DynamoDB's quotas): an alarm
        that flaps for as long as a rollout waits (days, for a window or an approval) would
        otherwise fill it, and every later write to the rollout would fail. Decisions, expiries
        and interruptions are few and always listed, each once: the same entry written again
        (two completions of one decision at once, a retried invocation) finds its key in
        ``audit_keys`` and changes nothing, in one conditional write (``contains(path,
        operand)`` is true for "a Set that contains a particular element within the set",
        DynamoDB Developer Guide, "Condition and filter expressions, operators, and functions";
        an attribute not there contains nothing). Alarm entries come from events the alarm
        function handles once per event (its idempotency).
        """
        key = self._key(application, rollout_id)
        append = "SET audit = list_append(if_not_exists(audit, :empty), :entry)"
        values: dict[str, Any] = {":entry": {"L": [typed(entry.stored())]}, ":empty": {"L": []}}
        if entry.kind != "alarm":
            once = entry.once_key()
            unless_condition_failed(
                lambda: self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=f"{append} ADD audit_keys :keys",
                    ConditionExpression="NOT contains(audit_keys, :key)",
                    ExpressionAttributeValues={**values, ":keys": {"SS": [once]}, ":key": {"S": once}},
                )
            )
            return
        counted = {**values, ":one": {"N": "1"}, ":most": {"N": str(MAX_LISTED_ALARMS)}}
        listed = unless_condition_failed(
            lambda: self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression=f"{append} ADD alarms_listed :one",
                ConditionExpression="attribute_not_exists(alarms_listed) OR alarms_listed < :most",
                ExpressionAttributeValues=counted,
            )
        )
        if listed is None:
            self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="ADD alarms_not_listed :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    def log_weight(self, application: str, rollout_id: str, seq: str, weight: int, at: datetime) -> None:
        """Record the canary weight set at step ``seq``; a retry of the same step overwrites itself."""
        self._db.update_item(
            TableName=self._table,
            Key=self._key(application, rollout_id),
            UpdateExpression="SET weight_log.#seq = :entry",
            ExpressionAttributeNames={"#seq": seq},
            ExpressionAttributeValues={":entry": typed({"weight": weight, "at": at.isoformat()})},
        )

    def record_stage(
        self,
        application: str,
        rollout_id: str,
        stage: Stage,
        at: datetime,
        step: int | None = None,
        *,
        extension: int = 0,
    ) -> StageTransition:
        # The condition makes an occurrence (the stage, or the stage at a canary step) count
        # once: a retried task or a late duplicate changes nothing and never moves
        # current_stage backwards. A step's occurrence has a top-level marker of its own (a path
        # into a map would fail on a record without the map); stage_<stage>_at stays the
        # stage's first entry, as the timeline reads it.
        marker = _occurrence(stage, step, "at", extension)
        first = f"stage_{stage.value}_at"
        update = "SET #marker = :at, current_stage = :stage, current_stage_at = :at"
        names = {"#marker": marker}
        if marker != first:
            update += ", #first = if_not_exists(#first, :at)"
            names["#first"] = first
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=self._key(application, rollout_id),
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(#marker)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":at": s(at.isoformat()), ":stage": s(stage.value)},
                ReturnValues="UPDATED_OLD",
                # The record as it stands comes with the refusal (UpdateItem, DynamoDB API Reference).
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if condition_failed(exc):
                standing = cast("dict[str, Any]", exc.response).get("Item", {})
                return StageTransition(
                    first_time=False, notified=_occurrence(stage, step, "notified_at", extension) in standing
                )
            raise
        old = response.get("Attributes", {})
        previous_at = old.get("current_stage_at", {}).get("S")
        # UPDATED_OLD may leave out a value the update did not change: a step's stage that
        # follows the same stage of the step before (set_weight 10, then set_weight 50).
        previous = old.get("current_stage", {}).get("S") or (stage.value if previous_at else None)
        return StageTransition(
            first_time=True,
            previous_stage=Stage(previous) if previous else None,
            previous_at=datetime.fromisoformat(previous_at) if previous_at else None,
        )

    def stage_notified(
        self, application: str, rollout_id: str, stage: Stage, step: int | None = None, *, extension: int = 0
    ) -> None:
        # A step's notice also stands for the stage's first one: a later repeat without a step
        # (blue/green's move to the release color) is no news once a step told the stage.
        marker, first = _occurrence(stage, step, "notified_at", extension), f"stage_{stage.value}_notified_at"
        update, names = "SET #marker = :now", {"#marker": marker}
        if marker != first:
            update, names = f"{update}, #first = if_not_exists(#first, :now)", {**names, "#first": first}
        self._db.update_item(
            TableName=self._table,
            Key=self._key(application, rollout_id),
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":now": s(self._now())},
        )

    def list_rollouts(self, application: str, version: str | None = None) -> list[RolloutRecord]:
        # A version's rollout ids share a prefix: the query reads that version's records only.
        prefix = "ROLLOUT#" + (rollout_id_prefix(application, version) if version is not None else "")
        records = (RolloutRecord.model_validate(item) for item in self._items(application, prefix))
        return [r for r in records if version is None or r.version == version]

    def _items(self, application: str, prefix: str, **query: Any) -> Iterator[dict[str, Any]]:
        """The application's items whose sort key starts with ``prefix``, every page of them."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": s(app_pk(application)), ":prefix": s(prefix)},
            **query,
        }
        while True:
            response = self._db.query(**kwargs)
            yield from (plain(item) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- waits ---------------------------------------------------------------------------
    def set_wait(self, application: str, rollout_id: str, wait: Wait) -> RolloutRecord:
        """Store the token of the wait the rollout is in; returns the record after the change."""
        values = {
            f"wait_{name}" if name in ("kind", "token", "started_at") else name: value
            for name, value in wait.model_dump(mode="json", exclude_none=True).items()
        }
        response = self._set(application, rollout_id, values, returns="ALL_NEW")
        return RolloutRecord.model_validate(plain(response["Attributes"]))

    def clear_wait(
        self, application: str, rollout_id: str, token: str, stopped_because: str | None = None
    ) -> None:
        """Forget a wait's token once it ended, unless a newer wait replaced it. One write with
        ``stopped_because``: whoever finds the wait gone also finds why."""
        update, values = "REMOVE wait_token, wait_kind", {":token": s(token)}
        if stopped_because is not None:
            update, values = f"SET stopped_because = :why {update}", {**values, ":why": s(stopped_because)}
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(application, rollout_id),
                UpdateExpression=update,
                ConditionExpression="wait_token = :token",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not condition_failed(exc):
                raise

    def set_window_waits(self, application: str, rollout_id: str, waits: dict[str, WindowWait]) -> None:
        """Only the rollout's own execution writes them, one step at a time: the map is replaced."""
        stored = {guard: wait.model_dump(mode="json") for guard, wait in waits.items()}
        self._set(application, rollout_id, {"window_waits": stored})

    def add_window_override(self, application: str, rollout_id: str, override: WindowOverride) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=self._key(application, rollout_id),
            UpdateExpression="SET window_overrides = list_append(if_not_exists(window_overrides, :none), :o)",
            ExpressionAttributeValues={
                ":o": {"L": [typed(override.model_dump(mode="json"))]},
                ":none": {"L": []},
            },
        )

    # -- lock and queue ------------------------------------------------------------------
    def enqueue(self, application: str, arrival: str, rollout_id: str, execution_arn: str) -> None:
        """Take a place in the application's queue at arrival (before the execution starts), once.

        The place is written with a marker of the rollout (``PLACE#<rollout id>``) in one
        transaction, and neither is written again. A start_rollout retried after its first
        attempt started the execution (its mark_started throttled, say) may come once that
        execution has taken its turn, and with it its place (``hand_lock_to``): a new place would
        head the queue with no wait attached, and hold back every later rollout of the
        application until it went stale.
        """
        pk, now = s(app_pk(application)), self._now()
        place = {
            "pk": pk,
            "sk": s(queue_sk(arrival, rollout_id)),
            "rollout_id": s(rollout_id),
            "execution_arn": s(execution_arn),
            "enqueued_at": s(now),
        }
        marker = {"pk": pk, "sk": s(f"PLACE#{rollout_id}"), "arrival": s(arrival), "enqueued_at": s(now)}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                    for item in (place, marker)
                ]
            )
        except ClientError as exc:
            if not condition_failed_in_transaction(exc):
                raise  # a conflict with another transaction: the caller's retry takes the place

    def attach_queue_token(
        self, application: str, arrival: str, rollout_id: str, execution_arn: str, token: str
    ) -> None:
        """The queued rollout's execution now waits for its turn with ``token``."""
        self._db.update_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s(queue_sk(arrival, rollout_id))},
            UpdateExpression=(
                "SET #token = :token, rollout_id = :rollout, execution_arn = :execution, "
                "enqueued_at = if_not_exists(enqueued_at, :now)"
            ),
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues={
                ":token": s(token),
                ":rollout": s(rollout_id),
                ":execution": s(execution_arn),
                ":now": s(self._now()),
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
        return QueuedRollout.model_validate(item)

    def queued(self, application: str) -> list[QueuedRollout]:
        """The application's queue, in arrival order (read consistently)."""
        return [
            QueuedRollout.model_validate(item)
            for item in self._items(application, "QUEUE#", ConsistentRead=True)
        ]

    def queue_length(self, application: str) -> int:
        # A Query counts at most 1 MB of items a page (DynamoDB Developer Guide, "Paginating
        # table query results"): the count is the sum of every page's.
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": s(app_pk(application)), ":prefix": s("QUEUE#")},
            "ConsistentRead": True,
            "Select": "COUNT",
        }
        count = 0
        while True:
            response = self._db.query(**request)
            count += int(response["Count"])
            if "LastEvaluatedKey" not in response:
                return count
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def rollouts_in_progress(self, application: str) -> list[str]:
        lock = self.lock(application)
        queued = self._items(application, "QUEUE#", ProjectionExpression="rollout_id", ConsistentRead=True)
        return [*([lock.rollout_id] if lock is not None else []), *(item["rollout_id"] for item in queued)]

    def lock(self, application: str) -> LockRecord | None:
        response = self._db.get_item(
            TableName=self._table, Key={"pk": s(app_pk(application)), "sk": s("LOCK")}, ConsistentRead=True
        )
        item = response.get("Item")
        return LockRecord.model_validate(plain(item)) if item else None

    def hand_lock_to(self, application: str, head: QueuedRollout) -> bool:
        """Give the free lock to the head of the queue, atomically; False if someone else got it."""
        if head.token is None:
            return False  # not waiting for its turn yet
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
                                "acquired_at": s(self._now()),
                                "token": s(head.token),
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": {"pk": s(app_pk(application)), "sk": s(head.sk)},
                            # The lock keeps the token the entry waits with now (a retried wait
                            # attaches a new one).
                            "ConditionExpression": "attribute_exists(pk) AND #token = :token",
                            "ExpressionAttributeNames": {"#token": "token"},
                            "ExpressionAttributeValues": {":token": s(head.token)},
                        }
                    },
                ]
            )
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                return False
            raise
        return True

    def _update_held_lock(self, application: str, owner: str, update: str, **values: str) -> bool:
        """Apply ``update`` to the lock if ``owner`` holds it; False if it did not."""
        updated = unless_condition_failed(
            lambda: self._db.update_item(
                TableName=self._table,
                Key={"pk": s(app_pk(application)), "sk": s("LOCK")},
                UpdateExpression=update,
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner", "#token": "token"},
                ExpressionAttributeValues={":owner": s(owner), **{f":{k}": s(v) for k, v in values.items()}},
            )
        )
        return updated is not None

    def turn_delivered(self, application: str, owner: str) -> None:
        self._update_held_lock(application, owner, "REMOVE #token")

    def release_lock(self, application: str, owner: str) -> bool:
        """Delete the lock if ``owner`` holds it; False if it did not."""
        deleted = unless_condition_failed(
            lambda: self._db.delete_item(
                TableName=self._table,
                Key={"pk": s(app_pk(application)), "sk": s("LOCK")},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": s(owner)},
            )
        )
        return deleted is not None

    def transfer_lock(self, application: str, owner: str, to: str) -> bool:
        """Give the lock ``owner`` holds to ``to``; False if ``owner`` did not hold it."""
        return self._update_held_lock(application, owner, "SET #owner = :to REMOVE #token", to=to)

    # -- versions and releases -----------------------------------------------------------
    def version_status(self, application: str, version: str) -> VersionDecision | None:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s(f"VERSION#{version}")},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return VersionDecision.model_validate(plain(item)) if item else None

    def claim_version(
        self, application: str, version: str, rollout_id: str, *, replacing: str | None = None
    ) -> VersionClaim | None:
        condition = "attribute_not_exists(pk) OR rollout_id = :me"
        values = {":me": s(rollout_id)}
        if replacing is not None:
            condition += " OR rollout_id = :replacing"
            values[":replacing"] = s(replacing)
        key = {"pk": s(app_pk(application)), "sk": s(f"ROLLING#{version}")}
        try:
            self._db.put_item(
                TableName=self._table,
                Item={**key, "rollout_id": s(rollout_id), "claimed_at": s(self._now())},
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                # The claim that stands comes with the refusal (PutItem, DynamoDB API Reference).
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not condition_failed(exc):
                raise
            standing = cast("dict[str, Any]", exc.response)["Item"]
            return VersionClaim.model_validate(plain(standing))
        return None

    def decide_version(
        self,
        application: str,
        version: str,
        status: Literal["released", "rejected"],
        rollout_id: str,
        reason: str,
    ) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": s(app_pk(application)),
                "sk": s(f"VERSION#{version}"),
                "status": s(status),
                "rollout_id": s(rollout_id),
                "reason": s(reason),
                "at": s(self._now()),
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

    def set_last_good(
        self, application: str, revision: Revision, rollout_id: str, color: Color | None = None
    ) -> None:
        # An update, not a put: an in-place release (no color) keeps the color a blue/green
        # release left, so switching strategies back and forth never forgets which one serves.
        values: dict[str, Any] = {
            "revision": revision.model_dump_json(),
            "rollout_id": rollout_id,
            "at": self._now(),
        }
        if color is not None:
            values["color"] = color
        names = {f"#a{i}": name for i, name in enumerate(values)}
        self._db.update_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s("RELEASE#CURRENT")},
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":v{i}": typed(v) for i, v in enumerate(values.values())},
        )

    def live_color(self, application: str) -> Color | None:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": s(app_pk(application)), "sk": s("RELEASE#CURRENT")},
            ConsistentRead=True,
        )
        color = (response.get("Item") or {}).get("color", {}).get("S")
        return "green" if color == "green" else "blue" if color == "blue" else None

    def set_colors(
        self, application: str, rollout_id: str, strategy: Strategy, live: Color, release: Color
    ) -> None:
        self._set(
            application, rollout_id, {"strategy": strategy, "live_color": live, "release_color": release}
        )

    def record_old_color_left_up(self, application: str, rollout_id: str, reason: str) -> None:
        self._set(application, rollout_id, {"old_color_left_up": reason})

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
                "at": s(self._now()),
            },
        )
        # The deployment's own item exists from now on: its state-change events are canaryfleet's.
        # An update, so that neither a token nor an outcome stored meanwhile is overwritten.
        self._db.update_item(
            TableName=self._table,
            Key={"pk": s(f"DEPLOYMENT#{deployment_id}"), "sk": s("DEPLOYMENT")},
            UpdateExpression="SET rollout_id = :rollout, purpose = :purpose, expires_at = :ttl",
            ExpressionAttributeValues={
                ":rollout": s(rollout_id),
                ":purpose": s(purpose),
                ":ttl": {"N": str(int(time.time()) + DEPLOYMENT_RECORD_DAYS * 86_400)},
            },
        )

    def knows_deployment(self, deployment_id: str) -> bool:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": s(f"DEPLOYMENT#{deployment_id}"), "sk": s("DEPLOYMENT")},
            ConsistentRead=True,
            ProjectionExpression="pk",
        )
        return "Item" in response

    def deployments_of(self, rollout_id: str) -> list[DeploymentRecord]:
        response = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": s(f"ROLLOUT-DEPLOYMENTS#{rollout_id}")},
            ConsistentRead=True,
        )
        return [
            DeploymentRecord.model_validate({**plain(i), "purpose": i["sk"]["S"]}) for i in response["Items"]
        ]

    def attach_deployment_token(
        self, deployment_id: str, token: str, context: dict[str, str]
    ) -> DeploymentWait:
        """Store the token waiting for a deployment; the item after, with its final status and
        detail if the state-change event came first."""
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
        return DeploymentWait.model_validate(plain(response["Attributes"]))

    def record_deployment_outcome(
        self, deployment_id: str, status: str, detail: str
    ) -> DeploymentWait | None:
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
        return DeploymentWait.model_validate(plain(response["Attributes"]))

    def deployment_outcome(self, deployment_id: str) -> str | None:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": s(f"DEPLOYMENT#{deployment_id}"), "sk": s("DEPLOYMENT")},
            ProjectionExpression="final_status",
            ConsistentRead=True,
        )
        status = response.get("Item", {}).get("final_status")
        return str(status["S"]) if status else None
