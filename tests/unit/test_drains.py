"""Drains on in-memory ports: what each step does, at a time the test chooses (no moto).

The integration tests (tests/integration/test_drain_logic.py) run the same steps against the
DynamoDB and S3 adapters on moto; these hold the logic itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel
from botocore.exceptions import ClientError
from canaryfleet.logic.drain import Drains
from canaryfleet.logic.drain_complete import LOOK_DELIVERY_SECONDS, complete_drain
from canaryfleet.logic.drain_dispatch import BatchOutcome, dispatch_drains
from canaryfleet.logic.drain_request import DrainRequests, request_drain
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.drain import (
    CHECKS_LIMIT,
    HOOK_RENEW_SECONDS,
    MAX_CHECKS,
    CommandInvocationDetail,
    DrainCheck,
    DrainCompletion,
    DrainEvent,
    DrainOrder,
    DrainRecord,
    DrainRequestResult,
    DrainStatus,
    DrainTrigger,
    LifecycleHookRef,
)
from canaryfleet.observability import metrics
from canaryfleet.ports.clock import FixedClock
from canaryfleet.ports.drains import InvocationRun

from canaryfleet_local.parsing import parse_template
from tests.helpers import REPO, load_event
from tests.unit.drain_fakes import (
    FakeDirectory,
    FakeHooks,
    FakeQueue,
    FakeRegistry,
    FakeRunCommand,
    FakeStatuses,
    FakeTargets,
    InMemoryDrainStore,
    InMemoryLogObjects,
    InMemoryRollouts,
    RecordedAlerts,
)

APP = "orders-api"
BUCKET = "canaryfleet-logs"
DOCUMENT = "canaryfleet-drain"
INSTANCE = "i-0598c7d356eba48d7"
OTHER = "i-0abc0000000000001"
CANARY_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders-canary/0123456789abcdef"
LIVE_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders-live/fedcba9876543210"
NOW = datetime(2026, 11, 26, 10, 15, 40, tzinfo=UTC)
CHECK_SECONDS = 60
# When Run Command has ended a scale-in's command, from its sending (models.drain.run_ends_by):
# delivered as late as TimeoutSeconds (30) and the ExecutionTimeout (240) allow, run 240 s, said 10 s on.
RUN_BOUND = 30 + 240 + 240 + 10
LOGS = {"app.log": b"GET / 200\n" * 50, "archive/app.1.log": b"\x00\x01" * 300}
CONFIG = AppConfig.model_validate(
    {
        "application": APP,
        "codedeploy_application": APP,
        "listener_rule_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/s/1/2/3",
        "canary": {
            "deployment_group": "c",
            "target_group_arn": CANARY_TG,
            "auto_scaling_group": f"{APP}-canary",
        },
        "live": {"deployment_group": "l", "target_group_arn": LIVE_TG, "auto_scaling_group": f"{APP}-live"},
        "drain_on_rebalance": True,
    }
)
SAMPLES = {
    DrainTrigger.LIFECYCLE: "lifecycle_terminate",
    DrainTrigger.SPOT: "spot_interruption",
    DrainTrigger.REBALANCE: "rebalance_recommendation",
}


@dataclass
class World:
    """Every port a drain touches, in memory, with one application onboarded."""

    rollouts: InMemoryRollouts = field(default_factory=InMemoryRollouts)
    directory: FakeDirectory = field(default_factory=FakeDirectory)
    targets: FakeTargets = field(default_factory=FakeTargets)
    queue: FakeQueue = field(default_factory=FakeQueue)
    hooks: FakeHooks = field(default_factory=FakeHooks)
    run_command: FakeRunCommand = field(default_factory=FakeRunCommand)
    logs: InMemoryLogObjects = field(default_factory=InMemoryLogObjects)
    alerts: RecordedAlerts = field(default_factory=RecordedAlerts)
    statuses: FakeStatuses = field(default_factory=FakeStatuses)
    config: AppConfig = CONFIG
    onboarded: bool = True
    check_seconds: int = CHECK_SECONDS

    def __post_init__(self) -> None:
        self.store = InMemoryDrainStore(self.rollouts)

    def member(self, side: str = "live", instance: str = INSTANCE) -> str:
        self.directory.add(instance, side, APP)
        self.targets.registered[CANARY_TG if side == "canary" else LIVE_TG].add(instance)
        return instance

    def leave(
        self, trigger: DrainTrigger, instance: str = INSTANCE, at: datetime = NOW
    ) -> DrainRequestResult:
        event = load_event(f"drain_request/{SAMPLES[trigger]}")
        event["detail"]["EC2InstanceId" if trigger is DrainTrigger.LIFECYCLE else "instance-id"] = instance
        if trigger is DrainTrigger.LIFECYCLE:  # the hook is the instance's own group's
            group = self.directory.instances.get(instance, {}).get("aws:autoscaling:groupName")
            event["detail"]["AutoScalingGroupName"] = group or event["detail"]["AutoScalingGroupName"]
        event["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if trigger is DrainTrigger.LIFECYCLE:
            self.hooks.active.add(event["detail"]["LifecycleActionToken"])
        requests = DrainRequests(
            self.directory,
            FakeRegistry(self.config) if self.onboarded else FakeRegistry(),
            self.store,
            self.rollouts,
            self.targets,
            self.queue,
            self.hooks,
            FixedClock(at),
        )
        return request_drain(DrainEvent.model_validate(event), requests)

    def drains(self, at: datetime) -> Drains:
        return Drains(
            self.store,
            self.hooks,
            self.run_command,
            self.logs,
            self.alerts,
            DOCUMENT,
            BUCKET,
            FixedClock(at),
            checks=self.queue,
            statuses=self.statuses,
            check_seconds=self.check_seconds,
        )

    def check(self, at: datetime = NOW, which: int = -1) -> BatchOutcome:
        """The drain queue delivers a check that came due (the last queued, by default)."""
        check, _ = self.queue.checks[which]
        template = load_event("drain_dispatch/orders")["Records"][0]
        batch = SqsModel.model_validate(
            {"Records": [template | {"messageId": "check-0", "body": check.model_dump_json()}]}
        )
        return dispatch_drains(batch, self.drains(at), None)

    def dispatch(self, at: datetime = NOW) -> BatchOutcome:
        template = load_event("drain_dispatch/orders")["Records"][0]
        batch = SqsModel.model_validate(
            {
                "Records": [
                    template | {"messageId": f"m-{n}", "body": order.model_dump_json()}
                    for n, order in enumerate(self.queue.orders)
                ]
            }
        )
        return dispatch_drains(batch, self.drains(at), None)

    def ended(self, status: str = "Success", at: datetime = NOW) -> DrainCompletion:
        detail = load_event("drain_complete/command_invocation_success")["detail"]
        detail |= {"instance-id": INSTANCE, "status": status, "command-id": self.record().current_command}
        return complete_drain(CommandInvocationDetail.model_validate(detail), self.drains(at))

    def run_prefix(self) -> str:
        """Where the current run's logs go: s3://<log bucket>/<app>/<instance>/<run id>/."""
        record = self.record()
        assert record.run_id is not None
        return f"{APP}/{INSTANCE}/{record.run_id}/"

    def flush(self, files: dict[str, bytes], skipped: dict[str, str] | None = None) -> None:
        """What the drain document writes for the current run: the files, then the manifest
        (naming ``skipped``, each with its error: files it could not snapshot)."""
        record = self.record()
        for name, body in files.items():
            self.logs.put(BUCKET, self.run_prefix() + name, body)
        manifest: dict[str, Any] = {
            "instance_id": INSTANCE,
            "application": APP,
            "run_id": record.run_id,
            "mode": "drain",
            "created_at": NOW.isoformat(),
            "files": [
                {"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for n, b in files.items()
            ],
            "skipped": [{"name": n, "error": e} for n, e in (skipped or {}).items()],
        }
        self.logs.put(BUCKET, self.run_prefix() + "manifest.json", json.dumps(manifest).encode())

    def record(self) -> DrainRecord:
        found = self.store.get(APP, INSTANCE)
        assert found is not None
        return found


@pytest.fixture
def world() -> World:
    return World()


# --- an instance leaves -------------------------------------------------------------------------
@pytest.mark.parametrize("trigger", list(DrainTrigger), ids=lambda t: t.value)
def test_each_leaving_event_queues_one_drain_of_the_instance(world: World, trigger: DrainTrigger) -> None:
    # Given a live instance of an onboarded application
    world.member("live")

    # When AWS says it is leaving
    result = world.leave(trigger)

    # Then it is out of its target group and one order waits in the drain queue
    assert result.status == "queued"
    assert [(o.instance_id, o.trigger) for o in world.queue.orders] == [(INSTANCE, trigger)]
    assert world.targets.registered[LIVE_TG] == set()
    assert world.record().status is DrainStatus.QUEUED


def test_a_fleet_being_deleted_still_drains_its_last_instances_by_the_defaults(world: World) -> None:
    # Given a live instance whose application's registry entry is gone: CloudFormation deletes
    # the entry, which names the groups, before it empties the groups through their hooks
    world.member("live")
    world.onboarded = False

    # When its termination hook holds it, and a Spot warning comes for it too
    held = world.leave(DrainTrigger.LIFECYCLE)
    warned = world.leave(DrainTrigger.SPOT)

    # Then its logs are still saved where the application's go by default, and the hook answered
    assert held.status == "queued" and warned.status in ("joined", "duplicate")
    [order] = world.queue.orders
    assert (order.instance_id, order.log_prefix, order.trigger) == (
        INSTANCE,
        f"{APP}/",
        DrainTrigger.LIFECYCLE,
    )
    assert world.targets.registered[LIVE_TG] == {INSTANCE}, "its target groups are not known: Auto Scaling's"
    world.dispatch()
    world.flush(LOGS)
    world.ended()
    assert world.record().status is DrainStatus.DRAINED
    assert world.hooks.completed and world.hooks.active == set()


def test_a_spot_warning_for_an_application_not_onboarded_is_ignored(world: World) -> None:
    world.member("live")
    world.onboarded = False

    result = world.leave(DrainTrigger.SPOT)

    assert result.status == "ignored" and world.queue.orders == []


@pytest.mark.parametrize(
    "events",
    [
        [DrainTrigger.LIFECYCLE, DrainTrigger.LIFECYCLE],
        [DrainTrigger.SPOT, DrainTrigger.REBALANCE, DrainTrigger.LIFECYCLE, DrainTrigger.SPOT],
    ],
    ids=["duplicate", "out-of-order"],
)
def test_a_duplicate_or_out_of_order_event_has_one_effect(world: World, events: list[DrainTrigger]) -> None:
    # Given an instance whose drain the first event started
    world.member("live")
    first = world.leave(events[0])

    # When the same event, or the others, arrive after it
    later = [world.leave(trigger).status for trigger in events[1:]]

    # Then one order was queued and one command is sent for it
    assert first.status == "queued" and "queued" not in later
    assert len(world.queue.orders) == 1
    world.dispatch()
    world.dispatch()
    assert len(world.run_command.calls) == 1
    assert set(world.record().triggers) == set(events)


def test_a_canary_instance_interrupted_during_a_bake_is_recorded_on_the_rollout_once(world: World) -> None:
    # Given a rollout holding its application's lock (its canary baking) and a canary instance
    world.rollouts.start(APP, "r1")
    world.member("canary")

    # When Spot reclaims the instance, warns again, and Auto Scaling's hook follows
    world.leave(DrainTrigger.SPOT)
    world.leave(DrainTrigger.SPOT, at=NOW + timedelta(seconds=5))
    world.leave(DrainTrigger.LIFECYCLE, at=NOW + timedelta(seconds=10))

    # Then the rollout lists the interruption once, so the analysis does not blame the build
    rollout = world.rollouts.records[(APP, "r1")]
    assert rollout["canary_interruptions"] == [{"instance": INSTANCE, "at": NOW.isoformat()}]
    assert [a["kind"] for a in rollout["audit"]] == ["canary_spot_interruption"]
    assert world.record().canary_interruption_rollout == "r1"


def test_a_live_instance_interrupted_during_a_rollout_leaves_it_alone(world: World) -> None:
    # Given a rollout under way and a live instance
    world.rollouts.start(APP, "r1")
    world.member("live")

    # When Spot reclaims it
    world.leave(DrainTrigger.SPOT)

    # Then the rollout record is untouched
    assert world.rollouts.records[(APP, "r1")] == {}


@pytest.mark.parametrize(
    ("side", "release_color", "recorded"),
    [("live", "blue", True), ("canary", "blue", False), ("canary", "green", True), ("live", "green", False)],
)
def test_blue_green_records_an_interruption_of_the_color_the_release_is_on_whichever_group_it_is(
    side: str, release_color: str, recorded: bool
) -> None:
    # Given a blue/green rollout whose release is on one color (blue: the stack's live group)
    world = World(config=CONFIG.model_copy(update={"strategy": "blue_green"}))
    live_color = "green" if release_color == "blue" else "blue"
    world.rollouts.start(
        APP, "r1", {"strategy": "blue_green", "live_color": live_color, "release_color": release_color}
    )
    world.member(side)

    # When Spot reclaims an instance of one of the groups
    world.leave(DrainTrigger.SPOT)

    # Then the rollout lists it only when it carries the release
    rollout = world.rollouts.records[(APP, "r1")]
    assert bool(rollout.get("canary_interruptions")) is recorded


# --- the drain document ends ------------------------------------------------------------------
@pytest.mark.parametrize(("sent_after", "heartbeats"), [(0, 0), (15, 0), (25, 1)])
def test_a_drain_sent_too_late_for_its_hooks_timeout_restarts_it_with_the_command(
    world: World, sent_after: int, heartbeats: int
) -> None:
    # Given a scale-in and a Spot warning, each of its own instance, queued at NOW
    world.member("live")
    world.member("live", OTHER)
    world.leave(DrainTrigger.LIFECYCLE)
    world.leave(DrainTrigger.SPOT, OTHER)

    # When the dispatcher sends them their command, ``sent_after`` seconds after the events
    outcome = world.dispatch(NOW + timedelta(seconds=sent_after))

    # Then the hook's 300 s leave its run (30 s delivery, 240 s, 10 s to complete) 20 s after the
    # event: sent later, the instance in its hook gets a heartbeat once its command is on its way;
    # the Spot instance has no hook to extend
    assert len(outcome.commands) == 2 and outcome.failed == {}  # two budgets: two commands
    assert world.hooks.heartbeats == [INSTANCE] * heartbeats
    assert world.record().heartbeats == heartbeats
    spot = world.store.get(APP, OTHER)
    assert spot is not None and spot.heartbeats == 0


def test_a_hook_that_ended_before_its_heartbeat_leaves_the_command_sent(world: World) -> None:
    # Given a scale-in, sent late, whose termination hook has already ended (timed out)
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.hooks.active.clear()

    # When the dispatcher sends its command
    outcome = world.dispatch(NOW + timedelta(seconds=60))

    # Then the command stands and nothing counts a heartbeat that did not happen
    assert outcome.commands and outcome.failed == {}
    assert world.hooks.heartbeats == [INSTANCE] and world.record().heartbeats == 0


# --- a command's check: its status event is best effort -----------------------------------
def test_every_command_sent_is_checked_later_for_all_its_instances(world: World) -> None:
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)

    outcome = world.dispatch()

    [(check, seconds)] = world.queue.checks
    assert (check.command_id, check.instance_ids, check.checks) == (outcome.commands[0], (INSTANCE,), 1)
    assert seconds == CHECK_SECONDS


def test_a_late_spot_order_does_not_cut_the_document_timeout_of_instances_warned_now() -> None:
    # Given two Spot warnings in one batch: one 80 s old (its request was retried), one just now
    world, alone = World(), World()
    for each in (world, alone):
        each.member("live", OTHER)
        each.leave(DrainTrigger.SPOT, OTHER, at=NOW)
    world.member("live", INSTANCE)
    world.leave(DrainTrigger.SPOT, INSTANCE, at=NOW - timedelta(seconds=80))

    # When the batch is dispatched
    world.dispatch(NOW)
    alone.dispatch(NOW)

    # Then the fresh instance's document has the timeout it has alone, in a command of its own
    timeouts = {tuple(ids): parameters["ExecutionTimeout"] for ids, parameters in world.run_command.calls}
    [(_, on_its_own)] = [(ids, p["ExecutionTimeout"]) for ids, p in alone.run_command.calls]
    assert timeouts[(OTHER,)] == on_its_own
    assert int(timeouts[(INSTANCE,)][0]) < int(on_its_own[0])  # the late one: what is left of its two minutes


# --- requests in flight when a drain starts ------------------------------------------------------
def _in_flight_seconds(world: World) -> dict[tuple[str, ...], int]:
    return {tuple(ids): int(p["InFlightSeconds"][0]) for ids, p in world.run_command.calls}


@pytest.mark.parametrize("trigger", [DrainTrigger.SPOT, DrainTrigger.REBALANCE], ids=lambda t: t.value)
def test_a_drain_of_an_instance_that_still_serves_stops_it_once_the_load_balancer_drained_it(
    world: World, trigger: DrainTrigger
) -> None:
    # Given a live instance whose target group lets requests in flight complete for 30 s
    world.member("live")

    # When a Spot warning or a rebalance recommendation drains it, dispatched 3 s later
    world.leave(trigger, at=NOW)
    world.dispatch(NOW + timedelta(seconds=3))

    # Then the document stops the application only once the 27 s left are over
    assert world.record().in_flight_until == NOW + timedelta(seconds=30)
    assert _in_flight_seconds(world) == {(INSTANCE,): 27}


def test_a_termination_hook_drain_does_not_wait_again_for_what_auto_scaling_drained(world: World) -> None:
    world.member("live")

    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()

    assert world.record().in_flight_until is None
    assert _in_flight_seconds(world) == {(INSTANCE,): 0}


def test_a_deregistration_delay_that_cannot_be_read_waits_what_the_stop_budget_leaves(world: World) -> None:
    # Given a target group whose attributes cannot be read
    world.member("live")
    world.targets.delays[LIVE_TG] = None

    # When a Spot warning drains the instance
    world.leave(DrainTrigger.SPOT)
    world.dispatch()

    # Then it counts ELB's default, 300 s, cut so that the 30-s stop fits in the 90-s document
    assert world.record().in_flight_until == NOW + timedelta(seconds=300)
    assert _in_flight_seconds(world) == {(INSTANCE,): 90 - 30 - 5}


@pytest.mark.parametrize("trigger", [DrainTrigger.SPOT, DrainTrigger.REBALANCE], ids=lambda t: t.value)
def test_the_longest_deregistration_delay_a_fleet_may_set_is_waited_out_whole(
    world: World, trigger: DrainTrigger
) -> None:
    # A fleet's DeregistrationDelaySeconds "must fit in a Spot notice with the log flush": a delay
    # the drain cuts short stops the application while the load balancer still completes requests
    # on it, and those clients get a 5xx
    fleet = parse_template((REPO / "fleet" / "template.yaml").read_text())
    longest = int(fleet["Parameters"]["DeregistrationDelaySeconds"]["MaxValue"])
    world.member("live")
    world.targets.delays[LIVE_TG] = longest

    world.leave(trigger, at=NOW)
    world.dispatch(NOW)

    assert _in_flight_seconds(world) == {(INSTANCE,): longest}


def test_the_wait_is_recorded_before_the_order_reaches_a_dispatcher(world: World) -> None:
    # Given a queue whose dispatcher takes each order the moment it is sent
    seen: list[datetime | None] = []
    send = world.queue.send

    def dispatched_at_once(order: DrainOrder) -> None:
        record = world.store.get(order.application, order.instance_id)
        seen.append(record.in_flight_until if record is not None else None)
        send(order)

    world.queue.send = dispatched_at_once  # type: ignore[method-assign]
    world.member("live")

    world.leave(DrainTrigger.SPOT)

    assert seen == [NOW + timedelta(seconds=30)]


def test_an_instance_with_no_request_left_is_not_held_back_by_one_deregistered_just_now(world: World) -> None:
    # Given two rebalance drains in one batch: one deregistered 40 s ago, one just now
    for instance, at in ((OTHER, NOW - timedelta(seconds=40)), (INSTANCE, NOW)):
        world.member("live", instance)
        world.leave(DrainTrigger.REBALANCE, instance, at=at)

    world.dispatch(NOW)

    # Then each has a command of its own: the first stops at once, the second in 30 s
    assert _in_flight_seconds(world) == {(OTHER,): 0, (INSTANCE,): 30}


class _OutOfTime(FakeStatuses):
    """GetCommandInvocation as a function that ran out of time sees it."""

    def run(self, command_id: str, instance_id: str) -> InvocationRun | None:
        raise TimeoutError("Task timed out after 30.00 seconds")


def test_a_batch_sends_its_orders_before_it_reads_its_checks(world: World) -> None:
    # Given a batch with a check of a running command ahead of a Spot instance's order, and a
    # check that cannot finish (the function runs out of time reading its instances)
    world.member("live", OTHER)
    world.leave(DrainTrigger.LIFECYCLE, OTHER)
    command = world.dispatch().commands[0]
    world.queue.orders.clear()
    world.member("live", INSTANCE)
    world.leave(DrainTrigger.SPOT, INSTANCE)
    world.statuses = _OutOfTime()
    template = load_event("drain_dispatch/orders")["Records"][0]
    check = DrainCheck(command_id=command, instance_ids=(OTHER,))
    records = [
        template | {"messageId": "check", "body": check.model_dump_json()},
        template | {"messageId": "order", "body": world.queue.orders[0].model_dump_json()},
    ]
    sent_before = len(world.run_command.calls)

    # When the batch is dispatched, Then the Spot instance's document was sent all the same
    with pytest.raises(TimeoutError):
        dispatch_drains(SqsModel.model_validate({"Records": records}), world.drains(NOW), None)
    [(ids, _)] = world.run_command.calls[sent_before:]
    assert list(ids) == [INSTANCE]


def test_a_drain_whose_status_event_never_came_is_ended_by_its_check(world: World) -> None:
    # Given a scale-in whose document ran and flushed its logs, but whose status event was lost
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    command = world.dispatch().commands[0]
    world.flush(LOGS)
    world.statuses.statuses[(command, INSTANCE)] = "Success"

    # When its check comes due
    outcome = world.check(NOW + timedelta(seconds=CHECK_SECONDS))

    # Then the drain ends as the event would have ended it: logs verified, hook completed
    assert outcome.checked == {"check-0": {INSTANCE: "drained"}} and outcome.failed == {}
    assert world.record().outcome == "drained"
    assert world.hooks.completed == [INSTANCE] and world.alerts.sent == []


def test_a_drain_its_event_already_ended_is_left_alone_by_its_check(world: World) -> None:
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()
    world.flush(LOGS)
    world.ended("Success")

    outcome = world.check(NOW + timedelta(seconds=CHECK_SECONDS))

    assert outcome.checked == {"check-0": {INSTANCE: "ended"}}
    assert world.statuses.reads == [], "no Run Command call for a drain that ended"
    assert world.hooks.completed == [INSTANCE]


def test_a_command_still_running_is_checked_again_then_its_drain_ends_lost(world: World) -> None:
    # Given a drain whose command never reports an end (the agent went silent)
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()
    renewed_at_send = len(world.hooks.heartbeats)

    # When each check finds it still in progress
    said = [
        world.check(NOW + timedelta(seconds=n * CHECK_SECONDS)).checked["check-0"][INSTANCE]
        for n in range(1, MAX_CHECKS + 1)
    ]

    # Then it is checked MAX_CHECKS times, each a check's delay apart, each renewing the hook; the
    # next is due once Run Command would have ended the command: a delivery that may take 30 s
    # and the document's 240 s ExecutionTimeout, the 240 s run, 10 s more to say so
    assert said == ["checked again later"] * MAX_CHECKS
    assert [c.checks for c, _ in world.queue.checks] == list(range(1, MAX_CHECKS + 2))
    assert world.queue.checks[-1][1] == RUN_BOUND - MAX_CHECKS * CHECK_SECONDS
    assert world.hooks.heartbeats[renewed_at_send:] == [INSTANCE] * MAX_CHECKS
    assert world.hooks.completed == []

    # When that check finds it in progress still
    outcome = world.check(NOW + timedelta(seconds=RUN_BOUND))

    # Then the drain ends lost, told, and the instance released (its hook not renewed again)
    assert outcome.checked["check-0"][INSTANCE] == "logs_lost"
    record = world.record()
    assert record.outcome == "logs_lost" and record.reason is not None
    assert record.reason.startswith(
        f"Run Command reported no end of the drain document after {MAX_CHECKS + 1}"
    )
    assert [kind for kind, _, _ in world.alerts.sent] == ["drain.logs_lost"]
    assert world.hooks.completed == [INSTANCE]
    assert world.hooks.heartbeats[renewed_at_send:] == [INSTANCE] * MAX_CHECKS


def test_a_short_check_delay_never_gives_up_on_a_command_run_command_may_still_run() -> None:
    # Given checks due every 5 s, and a scale-in whose document is still flushing
    world = World(check_seconds=5)
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()

    # When its MAX_CHECKS checks, over its first 30 s, each find it in progress
    said = [
        world.check(NOW + timedelta(seconds=5 * n)).checked["check-0"][INSTANCE]
        for n in range(1, MAX_CHECKS + 1)
    ]

    # Then the instance stays in its hook: Run Command may still deliver the document until 270 s
    # after the command, then run it 240 s, and take 10 s more to say so; the checks go on until
    # then, each at most HOOK_RENEW_SECONDS after the last, since each renews the hook
    assert said == ["checked again later"] * MAX_CHECKS
    assert world.record().status is DrainStatus.RUNNING and world.hooks.completed == []
    at = 5 * MAX_CHECKS
    delays = []
    while (check := world.check(NOW + timedelta(seconds=at)).checked["check-0"][INSTANCE]) != "logs_lost":
        assert check == "checked again later"
        delay = world.queue.checks[-1][1]
        delays.append(delay)
        at += delay
    assert delays == [
        HOOK_RENEW_SECONDS,
        HOOK_RENEW_SECONDS,
        RUN_BOUND - 5 * MAX_CHECKS - 2 * HOOK_RENEW_SECONDS,
    ]
    assert at == RUN_BOUND

    # Then, once Run Command must have ended it, the drain ends lost, told, and the instance released
    assert world.record().reason == (
        f"Run Command reported no end of the drain document after {MAX_CHECKS + len(delays) + 1} check(s), "
        f"{RUN_BOUND} s after it was sent (still InProgress)"
    )
    assert world.hooks.completed == [INSTANCE]


def test_a_run_delivered_late_keeps_its_instance_in_its_hook_until_its_logs_are_in() -> None:
    # Given a scale-in sent at once (no heartbeat needed for a run delivered in time), whose
    # instance's agent cannot take the command for minutes: Run Command retries ("Delayed") until
    # the command expires, TimeoutSeconds and the document's ExecutionTimeout after it was sent
    world = World()
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    command = world.dispatch().commands[0]
    sent_with = list(world.hooks.heartbeats)
    for status, at in (("Delayed", 60), ("Pending", 120), ("Delayed", 180), ("InProgress", 240)):
        world.statuses.statuses[(command, INSTANCE)] = status

        # When each check finds it not yet ended
        said = world.check(NOW + timedelta(seconds=at)).checked["check-0"][INSTANCE]

        # Then the hook is renewed each time, the first well before its 300 s from the event
        assert said == "checked again later"
        assert world.hooks.heartbeats == sent_with + [INSTANCE] * (at // CHECK_SECONDS)
        assert world.hooks.completed == []

    # When the run, started at 250 s, has its logs in S3 at 330 s and its status event comes
    world.flush(LOGS)
    ended = world.ended("Success", at=NOW + timedelta(seconds=330))

    # Then the drain is drained and only then is the instance let go
    assert ended.status == "drained" and world.hooks.completed == [INSTANCE]
    assert world.alerts.sent == []


def _a_run_told_timed_out(details: str, started: datetime | None) -> tuple[World, str]:
    """A scale-in's drain whose command Run Command reports TimedOut (``details``), its run started
    at ``started`` (None: never), its logs not yet in S3; the world and the command."""
    world = World()
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    command = world.dispatch().commands[0]
    world.statuses.statuses[(command, INSTANCE)] = "TimedOut"
    world.statuses.runs[(command, INSTANCE)] = InvocationRun("TimedOut", details, started)
    return world, command


def test_a_run_that_outlived_its_command_is_waited_for_and_drained_once_its_logs_are_in() -> None:
    # Given a scale-in whose instance's agent took the command at 250 s, 20 s before the command
    # expired (30 + 240 s after it was sent)
    started = NOW + timedelta(seconds=250)
    world, command = _a_run_told_timed_out("Delivery Timed Out", started)
    sent, heartbeats = len(world.run_command.calls), list(world.hooks.heartbeats)

    # When the expiry tells the run timed out while it still flushes (botocore's ssm model,
    # Command.ExpiresAfter: InProgress invocations change to DeliveryTimedOut)
    waiting = world.ended("TimedOut", at=NOW + timedelta(seconds=270))

    # Then the drain neither runs the document again nor lets the instance go: its hook is
    # renewed, and its run is looked at once it must have ended (its 240 s and 10 s to say so)
    assert waiting.status == "waiting" and "may write its logs until" in (waiting.reason or "")
    assert len(world.run_command.calls) == sent and world.hooks.completed == []
    assert world.hooks.heartbeats == [*heartbeats, INSTANCE]
    check, delay = world.queue.checks[-1]
    assert (check.command_id, check.instance_ids, check.late_run) == (command, (INSTANCE,), True)
    assert 270 + delay == 250 + 240 + 10

    # When the run has its logs in S3, and its look comes due
    world.flush(LOGS)
    outcome = world.check(NOW + timedelta(seconds=270 + delay))

    # Then the drain is drained, and only then is the instance let go
    assert outcome.checked["check-0"][INSTANCE] == "drained"
    assert world.record().outcome == "drained" and world.hooks.completed == [INSTANCE]
    assert world.alerts.sent == []


def test_a_check_of_a_timed_out_run_reads_its_invocation_once() -> None:
    # Given a run that outlived its command, whose status event never came
    world, command = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(seconds=250))
    read_before = len(world.statuses.reads)

    # When its regular check finds it timed out, and then the run's look comes
    assert world.check(NOW + timedelta(seconds=300), which=0).checked["check-0"][INSTANCE] == "waiting"
    read_by_check = len(world.statuses.reads)
    world.flush(LOGS)
    assert world.check(NOW + timedelta(seconds=500)).checked["check-0"][INSTANCE] == "drained"

    # Then each read GetCommandInvocation once: its status and its run's start come in one answer
    assert world.statuses.reads[read_before:] == [(command, INSTANCE)] * 2
    assert read_by_check == read_before + 1


def test_a_late_run_that_wrote_no_manifest_by_its_end_is_tried_again_as_any_failed_run() -> None:
    # Given a run told timed out at its command's expiry while it ran, waited for
    world, command = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(seconds=250))
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=270)).status == "waiting"

    # When its look comes once it must have ended, and there is still no manifest
    outcome = world.check(NOW + timedelta(seconds=500))

    # Then it is tried once more, as a run that failed is
    assert outcome.checked["check-0"][INSTANCE] == "retrying"
    assert world.record().current_command != command and world.hooks.completed == []


@pytest.mark.parametrize(
    ("details", "started_after", "why"),
    [
        ("DeliveryTimedOut", None, "never delivered: nothing runs"),
        ("Execution Timed Out", 20, "stopped by its own execution timeout"),
        ("DeliveryTimedOut", 10, "started so early that it must have ended"),
    ],
)
def test_a_timed_out_run_that_cannot_still_be_going_is_not_waited_for(
    details: str, started_after: int | None, why: str
) -> None:
    # Given a scale-in's command told timed out at 270 s
    started = None if started_after is None else NOW + timedelta(seconds=started_after)
    world, _ = _a_run_told_timed_out(details, started)

    # When its status event comes
    ended = world.ended("TimedOut", at=NOW + timedelta(seconds=270))

    # Then the drain goes on as for any run without its logs: tried once more
    assert ended.status == "retrying", why
    assert not any(check.late_run for check, _ in world.queue.checks)


def test_a_late_run_is_waited_for_whichever_timed_out_status_its_expiry_gave_it() -> None:
    # Given a run started at 250 s that its command's expiry reports "Execution Timed Out" (the
    # model's words do not settle which of the two an expired run gets)
    world, _ = _a_run_told_timed_out("Execution Timed Out", NOW + timedelta(seconds=250))

    # When its status event comes, Then it is waited for all the same
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=270)).status == "waiting"


def test_a_late_runs_start_is_held_within_what_run_command_allows() -> None:
    # Given a run whose start reads hours ahead (an instance's clock gone wrong)
    world, _ = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(hours=5))

    # When its expiry is told, Then it is waited for no later than Run Command's own bound on the
    # command (sent at 0 s: 30 + 240 s of delivery, 240 s of run, 10 s to say so)
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=270)).status == "waiting"
    looks, at = [], 270
    while world.queue.checks[-1][0].late_run and at < RUN_BOUND + 60:
        _, delay = world.queue.checks[-1]
        at += delay
        looks.append((at, world.check(NOW + timedelta(seconds=at)).checked["check-0"][INSTANCE]))
    # (looks at most 240 s apart, the hook's renewal)
    assert looks == [(510, "waiting"), (RUN_BOUND, "retrying")]


def test_a_regular_check_of_a_drain_waiting_for_its_run_counts_no_lost_event() -> None:
    # Given a drain waiting for a run that outlived its command (its expiry was told at 270 s)
    metrics.clear_metrics()
    world, _ = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(seconds=250))
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=270)).status == "waiting"

    looks = len(world.queue.checks)

    # When the command's regular check comes before the run must have ended
    outcome = world.check(NOW + timedelta(seconds=300), which=0)

    # Then it waits too, on the look already queued, and says no status event was lost: one came
    assert outcome.checked["check-0"][INSTANCE] == "waiting"
    assert len(world.queue.checks) == looks
    assert "DrainEventsLost" not in metrics.metric_set
    assert world.hooks.completed == []


def test_a_duplicate_status_event_of_a_drain_waiting_for_its_run_queues_no_second_look() -> None:
    # Given a drain waiting for a run that outlived its command (its expiry was told at 270 s)
    world, _ = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(seconds=250))
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=270)).status == "waiting"
    looks, heartbeats = list(world.queue.checks), list(world.hooks.heartbeats)

    # When EventBridge delivers the status event again
    again = world.ended("TimedOut", at=NOW + timedelta(seconds=275))

    # Then it waits on the look already due, and queues and renews nothing more
    assert again.status == "waiting"
    assert (again.reason or "").endswith(
        f"a look at it is already due at {(NOW + timedelta(seconds=500)).isoformat()}"
    )
    assert world.queue.checks == looks and world.hooks.heartbeats == heartbeats

    # When the run's logs are in and that look comes, Then the drain is drained
    world.flush(LOGS)
    assert world.check(NOW + timedelta(seconds=500)).checked["check-0"][INSTANCE] == "drained"
    assert world.hooks.completed == [INSTANCE]


def test_a_regular_check_that_finds_the_status_event_lost_counts_it_once_and_waits() -> None:
    # Given a run that outlived its command, whose status event never came
    metrics.clear_metrics()
    world, command = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(seconds=250))

    # When the command's regular check finds it timed out at 300 s
    outcome = world.check(NOW + timedelta(seconds=300), which=0)

    # Then the drain waits for the run, with a look of its own, and the lost event is counted
    assert outcome.checked["check-0"][INSTANCE] == "waiting"
    check, delay = world.queue.checks[-1]
    assert (check.command_id, check.late_run, 300 + delay) == (command, True, 500)
    assert metrics.metric_set["DrainEventsLost"]["Value"] == [1.0]

    # When the event comes after all, late, Then it joins the wait and nothing is counted again
    looks = len(world.queue.checks)
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=310)).status == "waiting"
    assert len(world.queue.checks) == looks
    assert metrics.metric_set["DrainEventsLost"]["Value"] == [1.0]


def test_a_regular_check_after_a_told_wait_has_ended_counts_no_lost_event() -> None:
    # Given a drain that waited for its run from its status event at 270 s until 500 s
    metrics.clear_metrics()
    world, _ = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(seconds=250))
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=270)).status == "waiting"

    # When the command's regular check comes after the wait, before the run's look
    outcome = world.check(NOW + timedelta(seconds=505), which=0)

    # Then the drain goes on as the look would (no manifest: tried once more), and no status event
    # is said to be lost: it came
    assert outcome.checked["check-0"][INSTANCE] == "retrying"
    assert "DrainEventsLost" not in metrics.metric_set


def test_a_late_runs_look_read_on_a_clock_behind_still_queues_the_next() -> None:
    # Given a run waited for until Run Command's bound (520 s), its first look due at 510 s
    world, _ = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(hours=5))
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=270)).status == "waiting"
    looks = len(world.queue.checks)

    # When that look comes on a host whose clock reads a second before it was due
    said = world.check(NOW + timedelta(seconds=509)).checked["check-0"][INSTANCE]

    # Then it queues the next look itself: the look it would wait on is its own
    assert said == "waiting" and len(world.queue.checks) == looks + 1
    check, delay = world.queue.checks[-1]
    assert check.late_run and 509 + delay == RUN_BOUND


def test_late_run_looks_read_on_a_clock_behind_keep_looking_until_the_run_has_ended() -> None:
    # Given a run waited for until Run Command's bound (520 s), told at 280.5 s: its look is due at
    # 520.5 s
    world, _ = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(hours=5))
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=280.5)).status == "waiting"
    end = NOW + timedelta(seconds=RUN_BOUND)

    # When every look is read on a host whose clock is 2.3 s behind, close to the run's end
    said = []
    for _ in range(6):
        check, _ = world.queue.checks[-1]
        assert check.due is not None
        looks = len(world.queue.checks)
        read_at = check.due - timedelta(seconds=2.3)
        said.append(world.check(read_at).checked["check-0"][INSTANCE])
        if read_at >= end:
            break
        # Then each look that still waits queues the next, due after its own time
        assert len(world.queue.checks) == looks + 1, said
        assert world.queue.checks[-1][0].due > check.due  # type: ignore[operator]

    # Then the looks go on until one is read after the run's end, which ends the wait
    assert said[-1] == "retrying" and set(said[:-1]) == {"waiting"}, said


def test_a_late_runs_look_not_taken_a_minute_after_its_time_is_queued_again_by_the_next_event() -> None:
    # Given a run waited for until Run Command's bound (520 s), told at 30 s: its look is due at 270 s
    world, _ = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(hours=5))
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=30)).status == "waiting"
    looks = len(world.queue.checks)

    # When the status event comes again within the minute a look may take to be delivered
    within = world.ended("TimedOut", at=NOW + timedelta(seconds=270 + LOOK_DELIVERY_SECONDS - 1))

    # Then it waits on that look
    assert within.status == "waiting" and len(world.queue.checks) == looks

    # When it comes again after that minute (the look was lost), Then a new look is queued for the
    # run's end: the drain is not left without one
    after = world.ended("TimedOut", at=NOW + timedelta(seconds=270 + LOOK_DELIVERY_SECONDS))
    assert after.status == "waiting" and len(world.queue.checks) == looks + 1
    check, delay = world.queue.checks[-1]
    assert check.late_run and 270 + LOOK_DELIVERY_SECONDS + delay == RUN_BOUND


def test_a_late_runs_look_delivered_twice_queues_the_next_look_once() -> None:
    # Given a run waited for until Run Command's bound (520 s), its first look due at 510 s
    world, _ = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(hours=5))
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=270)).status == "waiting"
    first = len(world.queue.checks) - 1
    assert world.queue.checks[first][0].due == NOW + timedelta(seconds=510)

    # When the drain queue delivers that look, and then delivers it again (at least once)
    said = world.check(NOW + timedelta(seconds=510), which=first).checked["check-0"][INSTANCE]
    again = world.check(NOW + timedelta(seconds=511), which=first).checked["check-0"][INSTANCE]

    # Then both wait, and only the first queues the next look
    assert (said, again) == ("waiting", "waiting")
    assert len(world.queue.checks) == first + 2
    check, delay = world.queue.checks[-1]
    assert check.due == NOW + timedelta(seconds=RUN_BOUND) and 510 + delay == RUN_BOUND


def test_a_timed_out_run_whose_invocation_cannot_be_read_is_waited_for_until_run_commands_bound() -> None:
    # Given a run told timed out at 270 s, and Run Command throttling the read of its invocation
    world = World()
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()
    sent = len(world.run_command.calls)
    world.statuses = _Throttled()

    # When its status event comes
    waiting = world.ended("TimedOut", at=NOW + timedelta(seconds=270))

    # Then, as the run may still write, nothing is decided: no second run, no hook let go; it is
    # looked at again, at the latest when Run Command's bound on the command has passed
    assert waiting.status == "waiting" and "could not be read" in (waiting.reason or "")
    assert len(world.run_command.calls) == sent and world.hooks.completed == []
    check, delay = world.queue.checks[-1]
    assert check.late_run and delay == min(240, RUN_BOUND - 270)


def test_a_late_runs_look_that_cannot_be_queued_is_raised_with_nothing_changed() -> None:
    # Given a run that outlived its command, and the drain queue refusing its look
    world, _ = _a_run_told_timed_out("DeliveryTimedOut", NOW + timedelta(seconds=250))
    heartbeats, world.queue.fail = list(world.hooks.heartbeats), True

    # When its status event comes, Then the completion fails (Lambda delivers the event again),
    # no run sent, no hook renewed or let go, the drain still running
    with pytest.raises(ClientError):
        world.ended("TimedOut", at=NOW + timedelta(seconds=270))
    assert world.hooks.heartbeats == heartbeats and world.hooks.completed == []
    assert world.record().status is DrainStatus.RUNNING and world.record().attempts == 1


def test_a_late_runs_start_read_before_its_command_was_sent_counts_from_the_sending() -> None:
    # Given a run whose start reads 100 s before its command was sent (an instance's clock behind)
    world, _ = _a_run_told_timed_out("DeliveryTimedOut", NOW - timedelta(seconds=100))

    # When its expiry is told at 200 s, Then it is waited for as a run started no earlier than
    # its command: until 240 s and 10 s after the sending
    assert world.ended("TimedOut", at=NOW + timedelta(seconds=200)).status == "waiting"
    assert world.queue.checks[-1][1] == 250 - 200


class _Throttled(FakeStatuses):
    def run(self, command_id: str, instance_id: str) -> InvocationRun | None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetCommandInvocation"
        )


def test_a_check_renews_no_hook_for_a_spot_drain_which_has_none() -> None:
    # Given a Spot drain (no hook) whose command is still running at its check
    world = World()
    world.member("live")
    world.leave(DrainTrigger.SPOT)
    world.dispatch()

    # When its check finds it in progress
    said = world.check(NOW + timedelta(seconds=CHECK_SECONDS)).checked["check-0"][INSTANCE]

    # Then nothing is renewed
    assert said == "checked again later" and world.hooks.heartbeats == []


def test_a_spot_drain_is_given_up_once_its_instance_is_gone_not_when_a_late_run_would_end() -> None:
    # Given checks due every 5 s, and a Spot drain whose command never reports an end
    world = World(check_seconds=5)
    world.member("live")
    world.leave(DrainTrigger.SPOT)
    world.dispatch()
    for n in range(1, MAX_CHECKS + 1):
        world.check(NOW + timedelta(seconds=5 * n))

    # Then the next check is due when the notice's two minutes are over (and 10 s to say so), not
    # when a run delivered as late as Run Command allows would end: the instance runs nothing then
    check, delay = world.queue.checks[-1]
    assert (check.checks, 5 * MAX_CHECKS + delay) == (MAX_CHECKS + 1, 120 + 10)
    outcome = world.check(NOW + timedelta(seconds=130))
    assert outcome.checked["check-0"][INSTANCE] == "logs_lost"


def test_a_short_check_delay_drains_a_document_that_ends_after_the_regular_checks() -> None:
    # Given checks due every 5 s, and a scale-in whose document outlasts them
    world = World(check_seconds=5)
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    command = world.dispatch().commands[0]
    for n in range(1, MAX_CHECKS + 1):
        world.check(NOW + timedelta(seconds=5 * n))

    # When it flushes its logs at 200 s, and its status event is lost
    world.flush(LOGS)
    world.statuses.statuses[(command, INSTANCE)] = "Success"
    outcome = world.check(NOW + timedelta(seconds=280))

    # Then the last check drains it
    assert outcome.checked["check-0"][INSTANCE] == "drained" and world.alerts.sent == []


def test_a_check_gives_up_at_its_limit_whatever_the_clock_says(world: World) -> None:
    # Given a running drain whose check has come back CHECKS_LIMIT times (a clock gone wrong)
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    command = world.dispatch().commands[0]
    world.queue.checks.append(
        (DrainCheck(command_id=command, instance_ids=(INSTANCE,), checks=CHECKS_LIMIT), 1)
    )

    # When it finds the command in progress long before Run Command's bound
    outcome = world.check(NOW + timedelta(seconds=10))

    # Then it is not checked again: the drain ends lost
    assert outcome.checked["check-0"][INSTANCE] == "logs_lost"
    assert len(world.queue.checks) == 2


def test_the_check_of_a_first_run_leaves_the_retrys_command_alone(world: World) -> None:
    # Given a first run that failed and was tried again (a new command, with its own check)
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    first = world.dispatch().commands[0]
    world.ended("Failed", at=NOW + timedelta(seconds=20))
    assert world.record().current_command != first and len(world.queue.checks) == 2

    # When the first command's check comes due
    outcome = world.check(NOW + timedelta(seconds=CHECK_SECONDS), which=0)

    # Then it does nothing: the retry's own check follows its command
    assert outcome.checked == {"check-0": {INSTANCE: "ended"}}
    assert world.record().status is DrainStatus.RUNNING and world.statuses.reads == []


def test_a_check_that_cannot_be_queued_leaves_the_command_sent(world: World) -> None:
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.queue.fail = True

    outcome = world.dispatch()

    assert outcome.commands and outcome.failed == {}
    assert world.queue.checks == [] and world.record().status is DrainStatus.RUNNING


def test_the_hook_is_completed_only_once_the_manifest_checks(world: World) -> None:
    # Given a scale-in whose drain document is running, and a first run that wrote no manifest
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()

    # When its status says Success without the logs in S3
    first = world.ended("Success", at=NOW + timedelta(seconds=20))

    # Then the instance stays in its hook and the document runs once more
    assert first.status == "retrying" and (first.reason or "").startswith("no manifest at s3://")
    assert world.hooks.completed == [] and len(world.run_command.calls) == 2

    # When the second run's logs and manifest are in S3 and its status says Success
    world.flush(LOGS)
    second = world.ended("Success", at=NOW + timedelta(seconds=40))

    # Then the drain is drained and the instance released, once
    assert second.status == "drained"
    final = world.record()
    assert (final.outcome, final.bytes, final.file_count) == ("drained", 1100, 2)
    assert world.hooks.completed == [INSTANCE] and world.alerts.sent == []
    assert world.ended("Success", at=NOW + timedelta(seconds=41)).status == "duplicate"
    assert world.hooks.completed == [INSTANCE]


def test_a_manifest_that_names_a_file_s3_lacks_is_not_verified(world: World) -> None:
    # Given a running drain whose manifest names a file that never reached S3
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()
    world.flush(LOGS)
    world.logs.objects.pop((BUCKET, world.run_prefix() + "app.log"))

    # When its status says Success
    result = world.ended("Success")

    # Then nothing is completed: the drain tries once more
    assert result.status == "retrying" and "app.log is in the manifest" in (result.reason or "")
    assert world.hooks.completed == []


@pytest.mark.parametrize("status", ["TimedOut", "Failed"])
def test_a_spot_drain_whose_stop_failed_after_its_logs_were_in_s3_is_drained(
    world: World, status: str
) -> None:
    # Given a Spot drain whose document flushed its logs and manifest first
    world.member("live")
    world.leave(DrainTrigger.SPOT)
    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()
    world.flush(LOGS)

    # When the stop that follows outlasts the document's timeout (or fails)
    result = world.ended(status, at=NOW + timedelta(seconds=95))

    # Then the drain is drained, saying how the document ended; no loss is told, no retry sent
    assert result.status == "drained"
    assert result.reason == f"the drain document ended {status} after its logs and manifest were in S3"
    assert (world.record().outcome, world.record().file_count) == ("drained", 2)
    assert world.record().reason == result.reason  # kept for `canaryfleet drains`
    assert world.alerts.sent == [] and len(world.run_command.calls) == 1
    assert world.hooks.completed == [INSTANCE]


def test_a_manifest_naming_a_file_the_instance_could_not_snapshot_is_tried_again_then_lost(
    world: World,
) -> None:
    # Given a scale-in whose document could not snapshot app.log (its disk full), and said so
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()
    no_room = "[Errno 28] No space left on device: '/var/lib/canaryfleet/flush-x/snapshot'"
    world.flush({"archive/app.1.log": LOGS["archive/app.1.log"]}, skipped={"app.log": no_room})

    # When its run ends Failed
    first = world.ended("Failed", at=NOW + timedelta(seconds=30))

    # Then the document runs once more, the instance kept in its hook
    assert first.status == "retrying" and world.hooks.completed == []

    # When the second run could not snapshot it either
    world.flush({"archive/app.1.log": LOGS["archive/app.1.log"]}, skipped={"app.log": no_room})
    second = world.ended("Failed", at=NOW + timedelta(seconds=60))

    # Then the drain ends lost, naming the file and why, and where the others are
    assert second.status == "logs_lost"
    assert world.record().reason == (
        f"the instance could not snapshot 1 file(s), app.log ({no_room}); the manifest's 1 other "
        f"file(s) are in s3://{BUCKET}/{world.run_prefix()} (attempt 2 of 2)"
    )
    assert [kind for kind, _, _ in world.alerts.sent] == ["drain.logs_lost"]
    assert world.hooks.completed == [INSTANCE]


def test_a_lost_log_is_recorded_told_and_the_hook_still_completed(world: World) -> None:
    # Given a scale-in whose drain document fails on both attempts
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()
    world.ended("Failed", at=NOW + timedelta(seconds=30))

    # When the second attempt fails too
    result = world.ended("Failed", at=NOW + timedelta(seconds=60))

    # Then the drain ends with its logs lost, the platform says so, and the instance goes
    assert result.status == "logs_lost"
    assert world.record().reason == "the drain document ended Failed (attempt 2 of 2)"
    ((kind, application, message),) = world.alerts.sent
    assert (kind, application) == ("drain.logs_lost", APP)
    assert (message["instance_id"], message["attempts"], message["termination_hook"]) == (
        INSTANCE,
        2,
        "completed",
    )
    assert world.hooks.completed == [INSTANCE]


def test_a_spot_drain_with_no_time_left_is_lost_at_once_and_told(world: World) -> None:
    # Given a Spot warning's drain, running
    world.member("live")
    world.leave(DrainTrigger.SPOT)
    world.dispatch()

    # When its document fails 100 s into the two-minute notice
    result = world.ended("Failed", at=NOW + timedelta(seconds=100))

    # Then there is no retry: the loss is recorded and told at once
    assert result.status == "logs_lost" and "no time left to try again (20 s" in (result.reason or "")
    assert len(world.run_command.calls) == 1
    assert [kind for kind, _, _ in world.alerts.sent] == ["drain.logs_lost"]


# --- AWS refuses a call midway: the drain is not left stuck, nor are others held up ------------
THROTTLED = ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "AutoScaling")


class ThrottledHeartbeats(FakeHooks):
    def heartbeat(self, hook: LifecycleHookRef, instance_id: str) -> bool:
        raise THROTTLED


class ThrottledCompletions(FakeHooks):
    throttled = True

    def complete(self, hook: LifecycleHookRef, instance_id: str) -> bool:
        if self.throttled:
            raise THROTTLED
        return super().complete(hook, instance_id)


class RefusedAlerts(RecordedAlerts):
    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "Publish")


def test_a_retry_whose_heartbeat_is_throttled_is_still_sent(world: World) -> None:
    # Given a scale-in whose first run failed, while Auto Scaling throttles the account's calls
    world.hooks = ThrottledHeartbeats()
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()

    # When its status event comes
    result = world.ended("Failed", at=NOW + timedelta(seconds=30))

    # Then the document is sent again all the same (the hook keeps the time it had)
    assert result.status == "retrying" and len(world.run_command.calls) == 2
    assert (world.record().status, world.record().attempts) == (DrainStatus.RUNNING, 2)


def test_a_retry_whose_function_died_before_sending_is_taken_again_once_its_claim_is_stale(
    world: World,
) -> None:
    # Given a failed run whose retry was claimed by an invocation that then timed out, unsent
    world.member("live")
    world.leave(DrainTrigger.LIFECYCLE)
    world.dispatch()
    died_at = NOW + timedelta(seconds=30)
    assert world.store.claim_retry(APP, INSTANCE, 1, died_at, died_at - timedelta(seconds=60))

    # When Lambda retries the status event 20 s later, then once the claim is over a minute old
    early = world.ended("Failed", at=died_at + timedelta(seconds=20))
    late = world.ended("Failed", at=died_at + timedelta(seconds=61))

    # Then the first finds the claim live and leaves it; the second sends the retry
    assert (early.status, late.status) == ("duplicate", "retrying")
    assert len(world.run_command.calls) == 2 and world.record().status is DrainStatus.RUNNING


# --- instances that are not a fleet's ------------------------------------------------------------
@pytest.mark.parametrize("trigger", [DrainTrigger.SPOT, DrainTrigger.REBALANCE], ids=lambda t: t.value)
def test_a_spot_instance_of_another_team_tagged_only_application_is_not_drained(
    world: World, trigger: DrainTrigger
) -> None:
    # Given another team's Spot worker in the account, tagged application=orders-api by its own
    # convention but launched by no fleet stack (the Spot rules match every instance)
    world.directory.instances[OTHER] = {"application": APP, "aws:autoscaling:groupName": "batch-workers"}

    result = world.leave(trigger, OTHER)

    assert (result.status, result.reason) == (
        "ignored",
        "no canaryfleet:application tag: not an instance of a canaryfleet fleet",
    )
    assert world.queue.orders == [] and world.store.get(APP, OTHER) is None


def test_an_instance_tagged_for_the_application_in_a_group_not_its_own_is_not_drained(world: World) -> None:
    world.directory.instances[OTHER] = {
        "application": APP,
        "canaryfleet:application": APP,
        "aws:autoscaling:groupName": f"{APP}-workers",
    }

    result = world.leave(DrainTrigger.SPOT, OTHER)

    assert result.status == "ignored"
    assert result.reason == f"not in {APP}'s canary or live group ({APP}-workers)"
    assert world.queue.orders == []


def test_an_instance_the_role_may_not_command_holds_back_no_other_drain_in_its_batch(world: World) -> None:
    # Given two Spot drains in one batch, the role refused SendCommand on one of the instances (its
    # tag removed by hand): IAM denies a call naming it whole
    world.member("live")
    world.member("live", OTHER)
    world.leave(DrainTrigger.SPOT)
    world.leave(DrainTrigger.SPOT, OTHER)
    world.run_command.denied.add(INSTANCE)

    outcome = world.dispatch()

    # Then the other instance gets its command now, and the denied one's order alone comes back
    assert [ids for ids, _ in world.run_command.calls] == [[OTHER]]
    assert len(outcome.commands) == 1 and len(outcome.failed) == 1
    assert "AccessDeniedException" in next(iter(outcome.failed.values()))


def _unreachable_with_a_spot_drain(world: World, trigger: DrainTrigger) -> None:
    """One batch: INSTANCE, leaving by ``trigger``, which Run Command cannot reach, and OTHER's
    Spot warning."""
    world.member("live")
    world.member("live", OTHER)
    world.leave(trigger)
    world.leave(DrainTrigger.SPOT, OTHER)
    world.run_command.unreachable.add(INSTANCE)


def test_an_unreachable_instance_whose_loss_notice_is_refused_holds_up_no_other_drain(world: World) -> None:
    # Given two Spot drains in one batch: Run Command cannot reach one, and SNS refuses the notice
    world.alerts = RefusedAlerts()
    _unreachable_with_a_spot_drain(world, DrainTrigger.SPOT)

    # When the dispatcher takes the batch
    outcome = world.dispatch()

    # Then the other instance gets its command now, and the unreachable one's loss is recorded
    assert outcome.failed == {} and outcome.lost == [INSTANCE] and len(outcome.commands) == 1
    assert world.run_command.calls[0][0] == [OTHER]
    assert world.record().status is DrainStatus.LOGS_LOST


def test_an_unreachable_instance_whose_hook_completion_is_throttled_comes_back_alone(world: World) -> None:
    # Given a scale-in Run Command cannot reach, in one batch with a Spot drain, while Auto
    # Scaling throttles CompleteLifecycleAction
    hooks = ThrottledCompletions()
    world.hooks = hooks
    _unreachable_with_a_spot_drain(world, DrainTrigger.LIFECYCLE)

    # When the dispatcher takes the batch, and the failed order comes back once the throttling ended
    first = world.dispatch()
    hooks.throttled = False
    world.queue.orders = [o for o in world.queue.orders if o.instance_id == INSTANCE]
    again = world.dispatch(NOW + timedelta(seconds=5))

    # Then the Spot drain was sent at once; the scale-in's order alone failed, its claim given
    # back, and its redelivery records the loss and lets the instance go
    assert list(first.failed) == ["m-0"] and len(first.commands) == 1
    assert (again.failed, again.lost) == ({}, [INSTANCE])
    assert world.record().status is DrainStatus.LOGS_LOST and hooks.completed == [INSTANCE]
