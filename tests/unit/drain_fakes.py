"""In-memory implementations of the drain and notify ports, with the AWS adapters' contracts.

Each keeps the conditions its adapter puts on DynamoDB, S3, Auto Scaling or Run Command (a
drain begins once, an outcome is set once, a hook completes once, a thread is claimed
once), so logic tested on them behaves as it does on AWS; the integration tests prove the
adapters themselves on moto.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from canaryfleet.errors import InstancesNotReachable, UnknownApplication
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.approval import SlackMessageRef
from canaryfleet.models.drain import (
    DrainBudget,
    DrainCheck,
    DrainOrder,
    DrainRecord,
    DrainStatus,
    DrainTrigger,
    LifecycleHookRef,
)
from canaryfleet.models.rollout_record import LockRecord, RolloutRecord
from canaryfleet.models.thread import Thread
from canaryfleet.ports.approvals import CardUpdate, EmailReach
from canaryfleet.ports.drains import MAX_INSTANCES_PER_COMMAND, InvocationRun, StoredObject
from canaryfleet.ports.notify import STALE_CLAIM


# --- the state table ------------------------------------------------------------------------
class InMemoryRollouts:
    """The rollout lock and records, as far as drains and notices read them (RolloutLock, RolloutRecords)."""

    def __init__(self) -> None:
        self.locks: dict[str, dict[str, Any]] = {}
        self.records: dict[tuple[str, str], dict[str, Any]] = {}

    def start(self, application: str, rollout_id: str, record: dict[str, Any] | None = None) -> None:
        """A rollout holds its application's lock and has its record."""
        self.locks[application] = {"owner": f"arn:exec:{rollout_id}", "rollout_id": rollout_id}
        self.records[(application, rollout_id)] = dict(record or {})

    def lock(self, application: str) -> LockRecord | None:
        found = self.locks.get(application)
        return LockRecord.model_validate(found) if found is not None else None

    def get(self, application: str, rollout_id: str) -> RolloutRecord | None:
        """The record as the store reads it back: stored attributes over what every record has."""
        stored = self.records.get((application, rollout_id))
        if stored is None:
            return None
        version = str(stored.get("version", "1.0.0"))
        written_at_arrival = {
            "application": application,
            "rollout_id": rollout_id,
            "version": version,
            "artifact_bucket": "artifacts",
            "artifact_key": f"{application}/{version}.zip",
            "received_at": "2026-11-26T09:55:00+00:00",
        }
        return RolloutRecord.model_validate(written_at_arrival | stored)


_FINAL = (DrainStatus.DRAINED, DrainStatus.LOGS_LOST)


class InMemoryDrainStore:
    """DrainStore with DynamoDrainStore's conditions; items hold JSON values, as the table does."""

    def __init__(self, rollouts: InMemoryRollouts | None = None) -> None:
        self.owners: dict[str, str] = {}
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.rollouts = rollouts if rollouts is not None else InMemoryRollouts()

    def _item(self, application: str, instance_id: str) -> dict[str, Any] | None:
        return self.items.get((application, instance_id))

    @staticmethod
    def _record(item: dict[str, Any]) -> DrainRecord:
        return DrainRecord.model_validate(item)

    # -- starting and joining ---------------------------------------------------------------
    def begin(self, record: DrainRecord) -> DrainRecord | None:
        if record.instance_id in self.owners:
            return None
        self.owners[record.instance_id] = record.application
        return self.create(record)

    def create(self, record: DrainRecord) -> DrainRecord | None:
        key = (record.application, record.instance_id)
        if key in self.items:
            return None
        item = record.model_dump(mode="json", exclude_none=True, exclude={"triggers"})
        self.items[key] = {**item, "triggers": [record.trigger.value]}
        return record.model_copy(update={"triggers": (record.trigger,)})

    def owner(self, instance_id: str) -> str | None:
        return self.owners.get(instance_id)

    def join(
        self,
        application: str,
        instance_id: str,
        trigger: DrainTrigger,
        hook: LifecycleHookRef | None,
        deadline: datetime | None,
    ) -> DrainRecord | None:
        item = self._item(application, instance_id)
        if item is None:
            return None
        if hook is not None:  # if_not_exists: the first hook's token stays
            item.setdefault("hook_name", hook.name)
            item.setdefault("hook_auto_scaling_group", hook.auto_scaling_group)
            item.setdefault("hook_token", hook.token)
        item["triggers"] = sorted({*item["triggers"], trigger.value})  # a string set
        if deadline is not None:
            current = self._record(item).deadline
            if current is None or deadline < current:
                item["deadline"] = deadline.isoformat()
        return self._record(item)

    def get(self, application: str, instance_id: str) -> DrainRecord | None:
        item = self._item(application, instance_id)
        return self._record(item) if item is not None else None

    def find(self, instance_id: str) -> DrainRecord | None:
        application = self.owner(instance_id)
        return self.get(application, instance_id) if application else None

    def list_drains(self, application: str) -> list[DrainRecord]:
        records = [self._record(item) for (app, _), item in self.items.items() if app == application]
        return sorted(records, key=lambda r: r.started_at)

    # -- progress ---------------------------------------------------------------------------
    def _status(self, application: str, instance_id: str) -> DrainStatus | None:
        item = self._item(application, instance_id)
        return DrainStatus(item["status"]) if item is not None else None

    def _set(self, application: str, instance_id: str, **values: Any) -> None:
        item = self._item(application, instance_id)
        if item is not None:  # attribute_exists(pk): an update never creates a record
            item.update(values)

    def mark_deregistered(
        self,
        application: str,
        instance_id: str,
        groups: list[str],
        at: datetime,
        in_flight_until: datetime | None,
    ) -> None:
        self._set(
            application,
            instance_id,
            deregistered_from=list(groups),
            deregistered_at=at.isoformat(),
            in_flight_until=in_flight_until.isoformat() if in_flight_until is not None else None,
        )

    def mark_queued(self, application: str, instance_id: str) -> None:
        if self._status(application, instance_id) is DrainStatus.REQUESTED:
            self._set(application, instance_id, status=DrainStatus.QUEUED.value)

    def claim(
        self, application: str, instance_id: str, now: datetime, stale_before: datetime
    ) -> DrainRecord | None:
        record = self.get(application, instance_id)
        if record is None:
            return None
        claimed_at = (self._item(application, instance_id) or {}).get("claimed_at")
        stale = claimed_at is not None and datetime.fromisoformat(claimed_at) < stale_before
        if record.status in (DrainStatus.REQUESTED, DrainStatus.QUEUED) or (
            record.status is DrainStatus.DISPATCHING and stale
        ):
            self._set(
                application, instance_id, status=DrainStatus.DISPATCHING.value, claimed_at=now.isoformat()
            )
            return self.get(application, instance_id)
        return None

    def use_budget(self, application: str, instance_id: str, budget: DrainBudget) -> bool:
        if self._status(application, instance_id) not in (DrainStatus.REQUESTED, DrainStatus.QUEUED):
            return False
        self._set(application, instance_id, budget=budget.model_dump())
        return True

    def release(self, application: str, instance_id: str) -> None:
        if self._status(application, instance_id) is DrainStatus.DISPATCHING:
            self._set(application, instance_id, status=DrainStatus.QUEUED.value)

    def claim_retry(
        self, application: str, instance_id: str, attempts: int, now: datetime, stale_before: datetime
    ) -> bool:
        record = self.get(application, instance_id)
        if record is None or record.attempts != attempts:
            return False
        claimed_at = (self._item(application, instance_id) or {}).get("claimed_at")
        stale = claimed_at is not None and datetime.fromisoformat(claimed_at) < stale_before
        if record.status is not DrainStatus.RUNNING and not (
            record.status is DrainStatus.DISPATCHING and stale
        ):
            return False
        self._set(application, instance_id, status=DrainStatus.DISPATCHING.value, claimed_at=now.isoformat())
        return True

    def unclaim_retry(self, application: str, instance_id: str) -> None:
        if self._status(application, instance_id) is DrainStatus.DISPATCHING:
            self._set(application, instance_id, status=DrainStatus.RUNNING.value)

    def record_command(
        self,
        application: str,
        instance_id: str,
        command_id: str,
        run_id: str,
        manifest_key: str,
        at: datetime,
    ) -> None:
        item = self._item(application, instance_id)
        if item is None:
            return
        item.update(
            status=DrainStatus.RUNNING.value,
            command_ids=[*item.get("command_ids", []), command_id],
            run_id=run_id,
            manifest_key=manifest_key,
            dispatched_at=at.isoformat(),
            attempts=item.get("attempts", 0) + 1,
        )

    def record_heartbeat(self, application: str, instance_id: str) -> None:
        item = self._item(application, instance_id)
        if item is not None:
            item["heartbeats"] = item.get("heartbeats", 0) + 1

    def record_late_run_look(
        self, application: str, instance_id: str, command_id: str, attempt: int, at: datetime
    ) -> None:
        item = self._item(application, instance_id)
        running = self._status(application, instance_id) is DrainStatus.RUNNING
        if item is None or not running or item.get("attempts", 0) != attempt:
            return
        recorded = item.get("late_run_look_at")
        if item.get("late_run_command") == command_id and recorded and datetime.fromisoformat(recorded) >= at:
            return
        item.update(late_run_command=command_id, late_run_look_at=at.astimezone(UTC).isoformat())

    def finish(self, application: str, instance_id: str, **values: Any) -> DrainRecord | None:
        if not DrainStatus(values["status"]).final:
            raise ValueError(f"{values['status']} is not a final status")
        status = self._status(application, instance_id)
        if status is None or status in _FINAL:
            return None
        self._set(application, instance_id, **values)
        return self.get(application, instance_id)

    def mark_hook_completed(self, application: str, instance_id: str, at: datetime) -> None:
        self._set(application, instance_id, hook_completed_at=at.isoformat())

    # -- canary awareness -------------------------------------------------------------------
    def mark_canary_interruption(self, application: str, instance_id: str, rollout_id: str) -> bool:
        item = self._item(application, instance_id)
        if item is None or "canary_interruption_rollout" in item:
            return False
        item["canary_interruption_rollout"] = rollout_id
        return True

    def record_canary_interruption(
        self, application: str, rollout_id: str, instance_id: str, at: datetime
    ) -> bool:
        record = self.rollouts.records.get((application, rollout_id))
        if record is None or instance_id in record.get("canary_interrupted_instances", []):
            return False
        record.setdefault("canary_interruptions", []).append({"instance": instance_id, "at": at.isoformat()})
        record.setdefault("audit", []).append(
            {"kind": "canary_spot_interruption", "instance": instance_id, "at": at.isoformat()}
        )
        record["canary_interrupted_instances"] = sorted(
            {*record.get("canary_interrupted_instances", []), instance_id}
        )
        return True


# --- the instance's world ---------------------------------------------------------------------
class FakeDirectory:
    """EC2 tags: an instance of ``application`` on its ``role`` side, as the fleet stack tags it
    at launch (application, canaryfleet:application, role) and Auto Scaling adds its group's
    name (``an_app``'s groups are ``<application>-<side>``)."""

    def __init__(self) -> None:
        self.instances: dict[str, dict[str, str]] = {}

    def add(self, instance: str, side: str | None = "live", application: str = "orders-api") -> str:
        tags = {"application": application, "canaryfleet:application": application}
        if side:
            tags |= {"role": side, "aws:autoscaling:groupName": f"{application}-{side}"}
        self.instances[instance] = tags
        return instance

    def tags(self, instance_id: str) -> dict[str, str]:
        return dict(self.instances.get(instance_id, {}))


class FakeRegistry:
    """The registry: the onboarded applications' configurations."""

    def __init__(self, *apps: AppConfig) -> None:
        self.apps = {a.application: a for a in apps}

    def get(self, application: str) -> AppConfig:
        if application not in self.apps:
            raise UnknownApplication(f"application {application!r} is not onboarded")
        return self.apps[application]


class FakeTargets:
    """Target groups and their registered instances."""

    def __init__(self) -> None:
        self.registered: defaultdict[str, set[str]] = defaultdict(set)
        # Each group's deregistration delay (the fleet template's default, 30 s); None: unreadable.
        self.delays: defaultdict[str, int | None] = defaultdict(lambda: 30)

    def deregister(self, target_group_arn: str, instance_id: str) -> bool:
        if instance_id not in self.registered[target_group_arn]:
            return False
        self.registered[target_group_arn].discard(instance_id)
        return True

    def deregistration_delay(self, target_group_arn: str) -> int | None:
        return self.delays[target_group_arn]


class FakeQueue:
    """The drain queue; ``fail`` makes SQS refuse the message."""

    def __init__(self) -> None:
        self.orders: list[DrainOrder] = []
        self.checks: list[tuple[DrainCheck, int]] = []  # each check and its delay
        self.fail = False

    def send(self, order: DrainOrder) -> None:
        if self.fail:
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "try again"}}, "SendMessage"
            )
        self.orders.append(order)

    def check_in(self, check: DrainCheck, seconds: int) -> None:
        if self.fail:
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "try again"}}, "SendMessage"
            )
        self.checks.append((check, seconds))


class FakeStatuses:
    """Run Command's status of each (command, instance); an invocation not set runs InProgress.
    ``runs`` holds the invocations whose detailed status and start were set (not started else)."""

    def __init__(self) -> None:
        self.statuses: dict[tuple[str, str], str] = {}
        self.runs: dict[tuple[str, str], InvocationRun] = {}
        self.reads: list[tuple[str, str]] = []

    def run(self, command_id: str, instance_id: str) -> InvocationRun | None:
        self.reads.append((command_id, instance_id))
        status = self.statuses.get((command_id, instance_id), "InProgress")
        return self.runs.get((command_id, instance_id), InvocationRun(status, status, None))


class FakeHooks:
    """Auto Scaling's lifecycle actions: an active token completes once, then the action has ended."""

    def __init__(self) -> None:
        self.active: set[str] = set()
        self.completed: list[str] = []
        self.heartbeats: list[str] = []

    def complete(self, hook: LifecycleHookRef, instance_id: str) -> bool:
        if hook.token not in self.active:
            return False
        self.active.discard(hook.token)
        self.completed.append(instance_id)
        return True

    def heartbeat(self, hook: LifecycleHookRef, instance_id: str) -> bool:
        self.heartbeats.append(instance_id)
        return hook.token in self.active


@dataclass
class FakeRunCommand:
    """SendCommand: up to 50 instances a call; an unreachable one fails the call; throttling raises;
    an instance the role may not act on (``denied``: not tagged canaryfleet:application) makes IAM
    refuse the whole call."""

    calls: list[tuple[list[str], dict[str, list[str]]]] = field(default_factory=list)
    unreachable: set[str] = field(default_factory=set)
    denied: set[str] = field(default_factory=set)
    throttled: bool = False

    def send(
        self, document: str, instance_ids: list[str], parameters: dict[str, list[str]], comment: str
    ) -> str:
        if not 1 <= len(instance_ids) <= MAX_INSTANCES_PER_COMMAND:
            raise ValueError(f"a command serves 1 to {MAX_INSTANCES_PER_COMMAND} instances")
        if self.throttled:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "SendCommand"
            )
        if self.denied & set(instance_ids):
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not authorized: ssm:SendCommand"}},
                "SendCommand",
            )
        if self.unreachable & set(instance_ids):
            raise InstancesNotReachable(f"{sorted(self.unreachable & set(instance_ids))}")
        self.calls.append((list(instance_ids), parameters))
        return f"{len(self.calls):08d}-0000-4000-8000-000000000000"


class InMemoryLogObjects:
    """The log bucket: each object with S3's full-object SHA-256 (or none, as after a multipart upload)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str | None]] = {}

    def put(self, bucket: str, key: str, body: bytes, checksum: bool = True) -> None:
        self.objects[(bucket, key)] = (body, hashlib.sha256(body).hexdigest() if checksum else None)

    def read(self, bucket: str, key: str) -> bytes | None:
        found = self.objects.get((bucket, key))
        return found[0] if found else None

    def describe(self, bucket: str, key: str) -> StoredObject | None:
        found = self.objects.get((bucket, key))
        return StoredObject(size=len(found[0]), sha256=found[1]) if found else None


class RecordedAlerts:
    """The notification topic: what was published, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        self.sent.append((kind, application, message))


# --- notify's world -----------------------------------------------------------------------------
class FakeSlack:
    """Slack's Web API with a bot token (threads) or an incoming webhook (no threads)."""

    def __init__(self, threads: bool = True) -> None:
        self._threads = threads
        self.posts: list[dict[str, Any]] = []
        self.updates: list[tuple[str, str]] = []
        self.cards: list[list[dict[str, Any]]] = []  # each update's blocks, as the card shows them
        self.down = False
        self.update_answer: CardUpdate = "updated"  # what chat.update makes of the next updates

    @property
    def threads(self) -> bool:
        return self._threads

    def post(
        self, channel: str | None, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None
    ) -> SlackMessageRef | None:
        if self.down:
            return None
        ts = f"{1000 + len(self.posts)}.000100"
        self.posts.append(
            {"channel": channel, "text": text, "blocks": blocks, "thread_ts": thread_ts, "ts": ts}
        )
        return SlackMessageRef(channel=str(channel), ts=ts) if self._threads else None

    def announce(self, channel: str | None, text: str, blocks: list[dict[str, Any]]) -> bool:
        """A post of no thread: a webhook says only whether it took it (``down``: it refused)."""
        if self.down:
            return False
        self.post(channel, text, blocks)
        return True

    def update(self, message: SlackMessageRef, text: str, blocks: list[dict[str, Any]]) -> CardUpdate:
        if self.update_answer == "updated":
            self.updates.append((message.ts, text))
            self.cards.append(blocks)
        return self.update_answer

    def roots(self) -> list[dict[str, Any]]:
        return [p for p in self.posts if p["thread_ts"] is None]

    def replies(self) -> list[dict[str, Any]]:
        return [p for p in self.posts if p["thread_ts"] is not None]


class InMemorySlackThreads:
    """The SLACK# items' conditions, in memory (DynamoSlackThreads holds them on moto)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def find(self, application: str, rollout_id: str) -> Thread | None:
        item = self.items.get((application, rollout_id), {})
        return Thread(item["message"], item["rank"], item.get("card")) if "message" in item else None

    def claim(self, application: str, rollout_id: str, now: datetime) -> bool:
        item = self.items.setdefault((application, rollout_id), {})
        if "message" in item or ("claimed_at" in item and item["claimed_at"] >= now - STALE_CLAIM):
            return False
        item["claimed_at"] = now
        return True

    def release(self, application: str, rollout_id: str) -> None:
        item = self.items.get((application, rollout_id), {})
        if "message" not in item:
            item.pop("claimed_at", None)

    def started(
        self, application: str, rollout_id: str, message: SlackMessageRef, rank: Decimal, card: str
    ) -> None:
        self.items.setdefault((application, rollout_id), {}).update(message=message, rank=rank, card=card)

    def advance(self, application: str, rollout_id: str, rank: Decimal, card: str) -> bool:
        item = self.items.get((application, rollout_id), {})
        if "message" not in item or item["rank"] >= rank:
            return False
        item.update(rank=rank, card=card)
        return True


class RecordingEmail:
    """The approvers' email topic; ``down`` makes SNS unreachable."""

    def __init__(self) -> None:
        self.subscribed: set[str] = set()
        self.sent: list[tuple[str, str, str]] = []
        self.down = False

    def ensure_subscribed(self, emails: tuple[str, ...]) -> EmailReach:
        new = tuple(sorted(set(emails) - self.subscribed))
        self.subscribed.update(new)
        return EmailReach(subscribed_now=new)

    def send(self, approver: str, subject: str, body: str) -> None:
        if self.down:
            raise ConnectionError("sns unreachable")
        self.sent.append((approver, subject, body))
