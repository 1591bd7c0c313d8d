"""Drain records in the state table (the ``DrainStore`` port on DynamoDB).

Items:
- pk ``APP#<app>``, sk ``DRAIN#<instance id>``: the drain record (:class:`DrainRecord`). An
  instance drains once, so its id is the key; the CLI lists an application's drains with one
  query on its partition.
- pk ``INSTANCE#<instance id>``, sk ``DRAIN``: which application the instance's drain belongs
  to, for the completion, which learns only the instance from Run Command's event. Written
  first, under a condition: the first event for an instance creates it (then the record),
  any later one (a duplicate, or another trigger) joins the drain.
- On the rollout record (pk ``APP#<app>``, sk ``ROLLOUT#<id>``): ``canary_interruptions``, a
  list of ``{"instance", "at"}`` that the canary analysis reads, kept unique per instance with
  the string set ``canary_interrupted_instances``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from canaryfleet.adapters.clients import client
from canaryfleet.adapters.dynamo import expiry, plain, s, typed, unless_condition_failed
from canaryfleet.adapters.rollout_store import app_pk, rollout_sk
from canaryfleet.models.drain import DrainBudget, DrainRecord, DrainStatus, DrainTrigger, LifecycleHookRef

if TYPE_CHECKING:  # the stubs are a development dependency: the layer does not ship them
    from mypy_boto3_dynamodb import DynamoDBClient

RECORD_DAYS = 400  # as long as the log bucket keeps the logs (LogRetentionDays' default)
OWNER_DAYS = 30


def drain_sk(instance_id: str) -> str:
    return f"DRAIN#{instance_id}"


def owner_pk(instance_id: str) -> str:
    return f"INSTANCE#{instance_id}"


def _record(item: dict[str, Any]) -> DrainRecord:
    return DrainRecord.model_validate(plain(item))


class DynamoDrainStore:
    """The drain store port (``canaryfleet.ports.drains.DrainStore``) on the state table."""

    def __init__(self, table_name: str) -> None:
        self._table = table_name

    @property
    def _db(self) -> DynamoDBClient:
        return client("dynamodb")

    def _key(self, application: str, instance_id: str) -> dict[str, Any]:
        return {"pk": s(app_pk(application)), "sk": s(drain_sk(instance_id))}

    # -- starting and joining ----------------------------------------------------------
    def _put_new(self, item: dict[str, Any]) -> bool:
        written = unless_condition_failed(
            lambda: self._db.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        )
        return written is not None

    def begin(self, record: DrainRecord) -> DrainRecord | None:
        """The owner item is the claim; the record follows it.

        Two writes rather than one transaction: a transaction costs twice the capacity, and a
        drain whose second write never happened is created by the next event for its
        instance: see ``create``.
        """
        owner = {
            "pk": s(owner_pk(record.instance_id)),
            "sk": s("DRAIN"),
            "application": s(record.application),
            "started_at": s(record.started_at.isoformat()),
            "expires_at": expiry(OWNER_DAYS),
        }
        if not self._put_new(owner):
            return None
        return self.create(record)

    def create(self, record: DrainRecord) -> DrainRecord | None:
        """Create the record of a claimed instance; None if it exists."""
        values = record.model_dump(mode="json", exclude_none=True, exclude={"triggers"})
        item = {
            "pk": s(app_pk(record.application)),
            "sk": s(drain_sk(record.instance_id)),
            **{name: typed(value) for name, value in values.items()},
            "triggers": {"SS": [record.trigger.value]},
            "expires_at": expiry(RECORD_DAYS),
        }
        if not self._put_new(item):
            return None
        return record.model_copy(update={"triggers": (record.trigger,)})

    def owner(self, instance_id: str) -> str | None:
        response = self._db.get_item(
            TableName=self._table,
            Key={"pk": s(owner_pk(instance_id)), "sk": s("DRAIN")},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return str(item["application"]["S"]) if item else None

    def join(
        self,
        application: str,
        instance_id: str,
        trigger: DrainTrigger,
        hook: LifecycleHookRef | None,
        deadline: datetime | None,
    ) -> DrainRecord | None:
        """Add an event to the drain under way; returns the record after the change."""
        names: dict[str, str] = {"#triggers": "triggers"}
        values: dict[str, Any] = {":trigger": {"SS": [trigger.value]}}
        sets = []
        if hook is not None:
            for field, value in (
                ("hook_name", hook.name),
                ("hook_auto_scaling_group", hook.auto_scaling_group),
                ("hook_token", hook.token),
            ):
                sets.append(f"{field} = if_not_exists({field}, :{field})")
                values[f":{field}"] = s(value)
        expression = (f"SET {', '.join(sets)} " if sets else "") + "ADD #triggers :trigger"
        item = self._apply(application, instance_id, expression, values, names=names, returns=True)
        if item is None:
            return None
        record = _record(item)
        if deadline is not None and (record.deadline is None or deadline < record.deadline):
            record = self._tighten_deadline(application, instance_id, deadline) or record
        return record

    def _tighten_deadline(self, application: str, instance_id: str, deadline: datetime) -> DrainRecord | None:
        return self._update(
            application,
            instance_id,
            "SET deadline = :deadline",
            {":deadline": s(deadline.isoformat())},
            condition="attribute_not_exists(deadline) OR deadline > :deadline",
        )

    def get(self, application: str, instance_id: str) -> DrainRecord | None:
        response = self._db.get_item(
            TableName=self._table, Key=self._key(application, instance_id), ConsistentRead=True
        )
        item = response.get("Item")
        return _record(item) if item else None

    def find(self, instance_id: str) -> DrainRecord | None:
        application = self.owner(instance_id)
        return self.get(application, instance_id) if application else None

    def list_drains(self, application: str) -> list[DrainRecord]:
        records: list[DrainRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": s(app_pk(application)), ":prefix": s("DRAIN#")},
        }
        while True:
            response = self._db.query(**kwargs)
            records.extend(_record(item) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return sorted(records, key=lambda r: r.started_at)
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- progress ------------------------------------------------------------------------
    def _apply(
        self,
        application: str,
        instance_id: str,
        expression: str,
        values: dict[str, Any],
        condition: str = "attribute_exists(pk)",
        names: dict[str, str] | None = None,
        returns: bool = False,
    ) -> dict[str, Any] | None:
        """Apply an update; None if ``condition`` did not hold, else the item after it (if asked for)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(application, instance_id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW" if returns else "NONE",
        }
        names = dict(names or {})
        if "#status" in expression + condition:  # `status` is a reserved word
            names["#status"] = "status"
        if names:
            request["ExpressionAttributeNames"] = names
        response = unless_condition_failed(lambda: self._db.update_item(**request))
        if response is None:
            return None
        attributes: dict[str, Any] = response.get("Attributes", {})
        return attributes

    def _update(
        self,
        application: str,
        instance_id: str,
        expression: str,
        values: dict[str, Any],
        condition: str = "attribute_exists(pk)",
    ) -> DrainRecord | None:
        """Apply an update; the record after it, or None if ``condition`` did not hold."""
        item = self._apply(application, instance_id, expression, values, condition, returns=True)
        return _record(item) if item is not None else None

    def mark_deregistered(
        self,
        application: str,
        instance_id: str,
        groups: list[str],
        at: datetime,
        in_flight_until: datetime | None,
    ) -> None:
        """The instance is out of ``groups``; requests may be in flight to it until ``in_flight_until``."""
        until = typed(in_flight_until.isoformat() if in_flight_until is not None else None)
        self._apply(
            application,
            instance_id,
            "SET deregistered_from = :groups, deregistered_at = :at, in_flight_until = :until",
            {":groups": typed(groups), ":at": s(at.isoformat()), ":until": until},
        )

    def mark_queued(self, application: str, instance_id: str) -> None:
        """The drain's order is in the drain queue (a dispatcher that took it already keeps its status)."""
        self._apply(
            application,
            instance_id,
            "SET #status = :queued",
            {":queued": s(DrainStatus.QUEUED), ":requested": s(DrainStatus.REQUESTED)},
            condition="#status = :requested",
        )

    def claim(
        self, application: str, instance_id: str, now: datetime, stale_before: datetime
    ) -> DrainRecord | None:
        """Take the drain to send its command; None if another dispatcher has it or sent it.

        A claim older than ``stale_before`` whose command was never recorded (its dispatcher
        died) may be taken again.
        """
        return self._update(
            application,
            instance_id,
            "SET #status = :dispatching, claimed_at = :now",
            {
                ":dispatching": s(DrainStatus.DISPATCHING),
                ":requested": s(DrainStatus.REQUESTED),
                ":queued": s(DrainStatus.QUEUED),
                ":now": s(now.isoformat()),
                ":stale": s(stale_before.isoformat()),
            },
            condition="#status IN (:requested, :queued) OR (#status = :dispatching AND claimed_at < :stale)",
        )

    def use_budget(self, application: str, instance_id: str, budget: DrainBudget) -> bool:
        return None is not self._apply(
            application,
            instance_id,
            "SET budget = :budget",
            {
                ":budget": typed(budget.model_dump()),
                ":requested": s(DrainStatus.REQUESTED),
                ":queued": s(DrainStatus.QUEUED),
            },
            condition="#status IN (:requested, :queued)",
        )

    def _give_back(self, application: str, instance_id: str, status: DrainStatus) -> None:
        """A dispatching drain goes back to ``status``: its claim is given up."""
        self._apply(
            application,
            instance_id,
            "SET #status = :status",
            {":status": s(status), ":dispatching": s(DrainStatus.DISPATCHING)},
            condition="#status = :dispatching",
        )

    def release(self, application: str, instance_id: str) -> None:
        """Give a claim back (the command could not be sent; the queue delivers the order again)."""
        self._give_back(application, instance_id, DrainStatus.QUEUED)

    def claim_retry(
        self, application: str, instance_id: str, attempts: int, now: datetime, stale_before: datetime
    ) -> bool:
        return None is not self._apply(
            application,
            instance_id,
            "SET #status = :dispatching, claimed_at = :now",
            {
                ":dispatching": s(DrainStatus.DISPATCHING),
                ":running": s(DrainStatus.RUNNING),
                ":attempts": {"N": str(attempts)},
                ":now": s(now.isoformat()),
                ":stale": s(stale_before.isoformat()),
            },
            condition="attempts = :attempts AND "
            "(#status = :running OR (#status = :dispatching AND claimed_at < :stale))",
        )

    def unclaim_retry(self, application: str, instance_id: str) -> None:
        self._give_back(application, instance_id, DrainStatus.RUNNING)

    def record_command(
        self,
        application: str,
        instance_id: str,
        command_id: str,
        run_id: str,
        manifest_key: str,
        at: datetime,
    ) -> None:
        """The drain document was sent to the instance: one more attempt."""
        self._apply(
            application,
            instance_id,
            "SET #status = :running, "
            "command_ids = list_append(if_not_exists(command_ids, :empty), :command), "
            "run_id = :run, manifest_key = :manifest, dispatched_at = :at, "
            "attempts = if_not_exists(attempts, :zero) + :one",
            {
                ":running": s(DrainStatus.RUNNING),
                ":command": {"L": [s(command_id)]},
                ":empty": {"L": []},
                ":run": s(run_id),
                ":manifest": s(manifest_key),
                ":at": s(at.isoformat()),
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
            },
        )

    def record_heartbeat(self, application: str, instance_id: str) -> None:
        self._apply(
            application,
            instance_id,
            "SET heartbeats = if_not_exists(heartbeats, :zero) + :one",
            {":zero": {"N": "0"}, ":one": {"N": "1"}},
        )

    def record_late_run_look(
        self, application: str, instance_id: str, command_id: str, attempt: int, at: datetime
    ) -> None:
        # The condition compares the times as text: UTC ISO 8601, always with microseconds, orders
        # as the times do (isoformat leaves out microseconds that are zero).
        self._apply(
            application,
            instance_id,
            "SET late_run_command = :command, late_run_look_at = :at",
            {
                ":command": s(command_id),
                ":at": s(at.astimezone(UTC).isoformat(timespec="microseconds")),
                ":running": s(DrainStatus.RUNNING),
                ":attempt": {"N": str(attempt)},
            },
            condition="attribute_exists(pk) AND #status = :running AND attempts = :attempt AND ("
            "attribute_not_exists(late_run_look_at) OR late_run_command <> :command"
            " OR late_run_look_at < :at)",
        )

    def finish(self, application: str, instance_id: str, **values: Any) -> DrainRecord | None:
        """Set the drain's outcome once; None if it was already final (a duplicate event)."""
        status = DrainStatus(values["status"])
        if not status.final:
            raise ValueError(f"{status} is not a final status")
        sets = ", ".join(f"{name} = :{name}" for name in values if name != "status")
        expression_values = {f":{name}": typed(value) for name, value in values.items() if name != "status"}
        expression_values.update(
            {
                ":status": s(status),
                ":drained": s(DrainStatus.DRAINED),
                ":lost": s(DrainStatus.LOGS_LOST),
            }
        )
        return self._update(
            application,
            instance_id,
            f"SET #status = :status, {sets}" if sets else "SET #status = :status",
            expression_values,
            condition="attribute_exists(pk) AND NOT #status IN (:drained, :lost)",
        )

    def mark_hook_completed(self, application: str, instance_id: str, at: datetime) -> None:
        self._apply(application, instance_id, "SET hook_completed_at = :at", {":at": s(at.isoformat())})

    # -- canary awareness ----------------------------------------------------------------
    def mark_canary_interruption(self, application: str, instance_id: str, rollout_id: str) -> bool:
        return (
            self._apply(
                application,
                instance_id,
                "SET canary_interruption_rollout = :rollout",
                {":rollout": s(rollout_id)},
                condition="attribute_exists(pk) AND attribute_not_exists(canary_interruption_rollout)",
            )
            is not None
        )

    def record_canary_interruption(
        self, application: str, rollout_id: str, instance_id: str, at: datetime
    ) -> bool:
        """Add ``{"instance", "at"}`` to the rollout's ``canary_interruptions``, once per instance.

        False if the rollout has no record or already lists the instance.
        """
        entry = {"instance": instance_id, "at": at.isoformat()}
        audit = {"kind": "canary_spot_interruption", "instance": instance_id, "at": at.isoformat()}
        written = unless_condition_failed(
            lambda: self._db.update_item(
                TableName=self._table,
                Key={"pk": s(app_pk(application)), "sk": s(rollout_sk(rollout_id))},
                UpdateExpression=(
                    "SET canary_interruptions = "
                    "list_append(if_not_exists(canary_interruptions, :empty), :entry), "
                    "audit = list_append(if_not_exists(audit, :empty), :audit) "
                    "ADD canary_interrupted_instances :instances"
                ),
                ConditionExpression=(
                    "attribute_exists(pk) AND NOT contains(canary_interrupted_instances, :instance)"
                ),
                ExpressionAttributeValues={
                    ":entry": {"L": [typed(entry)]},
                    ":audit": {"L": [typed(audit)]},
                    ":empty": {"L": []},
                    ":instances": {"SS": [instance_id]},
                    ":instance": s(instance_id),
                },
            )
        )
        return written is not None
