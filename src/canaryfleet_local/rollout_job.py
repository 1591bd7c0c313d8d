"""`canaryfleet local rollout`: one scenario played end to end on a fresh local cloud.

The job returns what happened (the report and each rollout's record); writing pages from them
is the caller's (the CLI's).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from canaryfleet.adapters.approval_store import DynamoApprovalStore
from canaryfleet.adapters.freeze_store import DynamoFreezeCalendar
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.logic.freezes import declare_freeze
from canaryfleet.models.app_config import AppConfig, registry_parameter
from canaryfleet.models.rollout import Stage
from canaryfleet.models.rollout_record import RolloutRecord
from canaryfleet.ports.clock import FixedClock

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import ExecutionRecord, LocalCloud, LocalCloudError
from canaryfleet_local.faults import leftovers
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.instances import SimulatedInstances
from canaryfleet_local.scenarios import Scenario, load_scenario
from canaryfleet_local.simulator import FleetSimulator
from canaryfleet_local.standins.lambda_ import Invocation
from canaryfleet_local.template import DEFAULT_TEMPLATE

APPLICATION = "hello-app"
COMMIT = "9fceb02d0ae598e95dc970b74767f19372d61af8"
# How long a report waits, after the last rollout ended, for deployments still stopping.
STOP_MARGIN_SECONDS = 30.0
# Longest wait for an upload to be received before the story's next one is made.
RECEIVED_WITHIN_SECONDS = 30.0


def _weight_history(record: RolloutRecord) -> list[dict[str, Any]]:
    return [
        {"seq": seq, "weight": entry.weight, "at": entry.at.isoformat()}
        for seq, entry in record.weight_history()
    ]


def _approval(cloud: LocalCloud, record: RolloutRecord) -> dict[str, str] | None:
    """The rollout's latest approval as it stands: its status, and why it closed if it did."""
    store = DynamoApprovalStore(cloud.output("StateTableName"))
    approval = store.get(record.approval_id) if record.approval_id else None
    if approval is None:
        return None
    return {"status": approval.status.value, "closed_reason": approval.closed_reason}


def _rollout_records(cloud: LocalCloud, application: str) -> dict[str, RolloutRecord]:
    store = DynamoRolloutStore(cloud.output("StateTableName"))
    return {r.rollout_id: r for r in store.list_rollouts(application)}


@dataclass
class ScenarioRun:
    """What one played scenario left: the report, and what a timeline page is drawn from."""

    report: dict[str, Any]  # see `canaryfleet local rollout --json`
    records: list[RolloutRecord]  # each rollout's stored record, in the order they were received
    app: AppConfig  # the application as onboarded for the scenario
    invocations: list[Invocation]  # every function invocation, in the order they started


def run_scenario(
    scenario: Scenario | str,
    artifact: Path | None = None,
    decision: str | None = None,
    application: str = APPLICATION,
    timeout: float = 600.0,
    parameters: dict[str, str] | None = None,
    strategy: str | None = None,
) -> dict[str, Any]:
    """Play ``scenario`` and report what the platform did (see `canaryfleet local rollout`)."""
    with played_scenario(scenario, artifact, decision, application, timeout, parameters, strategy) as run:
        pass
    return run.report


@contextlib.contextmanager
def played_scenario(
    scenario: Scenario | str,
    artifact: Path | None = None,
    decision: str | None = None,
    application: str = APPLICATION,
    timeout: float = 600.0,
    parameters: dict[str, str] | None = None,
    strategy: str | None = None,
    template_path: Path | None = None,
) -> Iterator[ScenarioRun]:
    """Play ``scenario``; inside the block its local cloud is still up (metrics can be read).

    ``strategy`` plays it under that strategy instead of its own; ``template_path`` on a
    platform template other than template.yaml. The report's ``seconds`` is set when the block
    ends, the cloud's teardown included.
    """
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    if strategy is not None:
        scenario = scenario.model_copy(update={"strategy": strategy})
    if decision is not None:
        uploads = tuple(u.model_copy(update={"decision": decision}) for u in scenario.uploads)
        scenario = scenario.model_copy(update={"uploads": uploads})
    started = time.monotonic()
    body = artifact.read_bytes() if artifact else bundle()
    with scenario_cloud(scenario, application, parameters, template_path) as (cloud, simulator):
        for index, upload in enumerate(scenario.uploads):
            if index:
                _wait_until_received(cloud, application, index, time.monotonic() + RECEIVED_WITHIN_SECONDS)
            time.sleep(upload.after_seconds)
            upload_build(cloud, application, upload.version, body)
        executions = _wait_for_all(cloud, len(scenario.uploads), started + timeout)
        _wait_for_deployments(cloud, time.monotonic() + STOP_MARGIN_SECONDS)
        _wait_for_drains(cloud, time.monotonic() + STOP_MARGIN_SECONDS)
        cloud.wait_idle()
        records = _rollout_records(cloud, application)
        lock = cloud.client("dynamodb").get_item(
            TableName=cloud.output("StateTableName"),
            Key={"pk": {"S": f"APP#{application}"}, "sk": {"S": "LOCK"}},
        )
        report = _report(scenario, simulator, executions, records, _deployments(cloud, simulator))
        report["lock_held"] = "Item" in lock
        report["strategy"] = scenario.strategy
        if scenario.strategy == "blue_green":
            report.update(_colors(cloud, simulator, records))
            if simulator.apps:
                live = report["colors"][report["live_color"] or "blue"]
                report["live_revision"] = live["revision"]
        calendar = DynamoFreezeCalendar(cloud.output("StateTableName"))
        report["freezes"] = [f.stored() for f in sorted(calendar.freezes(), key=lambda f: f.start)]
        report["failed_deliveries"] = [f.target for f in cloud.queue.failed]
        report["simulator_errors"] = list(simulator.errors)
        report["leftovers"] = leftovers(cloud)
        report["faults"] = cloud.faults.summary() if cloud.faults else {}
        ordered = sorted(records.values(), key=lambda r: r.received_at)
        for entry, record in zip(report["rollouts"], ordered, strict=True):
            entry["approval"] = _approval(cloud, record)
        app = next(iter(simulator.apps.values())).app
        yield ScenarioRun(report, ordered, app, list(cloud.runtime.invocations))
    report["seconds"] = round(time.monotonic() - started, 2)


@contextlib.contextmanager
def scenario_cloud(
    scenario: Scenario | str,
    application: str = APPLICATION,
    parameters: dict[str, str] | None = None,
    template_path: Path | None = None,
) -> Iterator[tuple[LocalCloud, FleetSimulator]]:
    """A fresh local cloud with the application onboarded (its fleet stack, the scenario's
    policy in its registry entry) and the fleet simulator playing the scenario."""
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    with LocalCloud(parameters=parameters, template_path=template_path or DEFAULT_TEMPLATE) as cloud:
        now = datetime.now(UTC)  # the local cloud's clock: moto and the handlers read the real time
        fleet = deploy_fleet(cloud, application, scenario.fleet_parameters() or None)
        app = fleet.model_copy(update={"policy": scenario.policy_at(now)})
        if scenario.strategy == "blue_green":
            # The story starts from a fleet whose blue color serves, as after a first release or a
            # switch from in place (a new blue/green stack has both colors empty: fleet/README.md).
            cloud.client("autoscaling").set_desired_capacity(
                AutoScalingGroupName=app.live.auto_scaling_group, DesiredCapacity=app.color_capacity
            )
        if scenario.spot_capacity is not None:  # the registry's canary group is the green color
            cloud.fleet_operations.launches.spot_available[app.canary.auto_scaling_group] = (
                scenario.spot_capacity
            )
        _declare_freezes(cloud, scenario, now)
        cloud.client("ssm").put_parameter(
            Name=registry_parameter(application), Value=app.model_dump_json(), Type="String", Overwrite=True
        )
        # Blue/green scales colors to zero through the termination hook: the instances' SSM agent
        # runs the drain document, as it does in the drain scenarios.
        agent = SimulatedInstances(cloud) if scenario.strategy == "blue_green" else contextlib.nullcontext()
        with agent, FleetSimulator(cloud, scenario) as simulator:
            simulator.add_application(app)
            yield cloud, simulator


def _declare_freezes(cloud: LocalCloud, scenario: Scenario, now: datetime) -> None:
    """What on-call does with `canaryfleet freeze add`, before the story's first upload."""
    calendar = DynamoFreezeCalendar(cloud.output("StateTableName"))
    for index, freeze in enumerate(scenario.freezes):
        start = now + timedelta(seconds=freeze.starts_after_seconds)
        declare_freeze(
            calendar,
            start=start,
            end=start + timedelta(seconds=freeze.lasts_seconds),
            reason=freeze.reason,
            by=freeze.by,
            clock=FixedClock(now),
            freeze_id=f"scenario-{index}",
        )


def _window_waits(record: RolloutRecord) -> list[dict[str, Any]]:
    """The rollout's waits for the calendar, in time order (ISO 8601 times)."""
    waits = sorted(record.window_waits.values(), key=lambda w: w.started)
    return [
        {"from": w.started.isoformat(), "until": w.until.isoformat(), "reason": w.reason, "guard": w.guard}
        for w in waits
    ]


def _overrides(record: RolloutRecord) -> list[dict[str, Any]]:
    return [{"by": o.by, "reason": o.reason, "at": o.at.isoformat()} for o in record.window_overrides]


def upload_build(cloud: LocalCloud, application: str, version: str, body: bytes) -> None:
    """What CI does: the bundle to s3://<artifact bucket>/<app>/<version>.zip with its metadata."""
    cloud.client("s3").put_object(
        Bucket=cloud.output("ArtifactBucketName"),
        Key=f"{application}/{version}.zip",
        Body=body,
        Metadata={"commit": COMMIT, "build-url": f"https://ci.example.com/{application}/{version}"},
    )


def _wait_for_deployments(cloud: LocalCloud, deadline: float) -> None:
    """Until no deployment is active: a rollout may end while a deployment it stopped is still
    finishing (nothing to restore), and the report tells when each one completed."""
    while cloud.codedeploy.any_active() and time.monotonic() < deadline:
        time.sleep(0.05)


def _wait_for_drains(cloud: LocalCloud, deadline: float) -> None:
    """Until no instance waits in Terminating:Wait: a color scaled to zero drains after its
    rollout's execution ended, and the report tells what each drain did."""
    while cloud.fleet_operations.lifecycle.pending and time.monotonic() < deadline:
        time.sleep(0.05)


def _colors(
    cloud: LocalCloud, simulator: FleetSimulator, records: dict[str, RolloutRecord]
) -> dict[str, Any]:
    """Blue/green: each color's group at the end (its desired capacity, its instances, the
    revision it runs, its listener weight) and every drain its instances went through."""
    state = next(iter(simulator.apps.values()))
    app = state.app
    weights = simulator.current_weights(app)
    autoscaling = cloud.client("autoscaling")
    lifecycle = cloud.fleet_operations.lifecycle
    colors: dict[str, Any] = {}
    for color, side in (("blue", "live"), ("green", "canary")):
        group = app.live if side == "live" else app.canary
        described = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group.auto_scaling_group])
        found = described["AutoScalingGroups"][0]
        actions = [a for a in lifecycle.actions.values() if a.group == group.auto_scaling_group]
        colors[color] = {
            "auto_scaling_group": group.auto_scaling_group,
            "desired": found["DesiredCapacity"],
            "instances": len(found.get("Instances", [])),
            "revision": state.versions[side],
            "weight": weights[side],
            "drained": sorted(a.instance_id for a in actions if a.ended_by == "CompleteLifecycleAction"),
            "drains_pending": sorted(a.instance_id for a in actions if a.ended is None),
        }
    store = DynamoRolloutStore(cloud.output("StateTableName"))
    live = store.live_color(app.application)
    return {"live_color": live, "colors": colors}


def _wait_until_received(cloud: LocalCloud, application: str, uploads: int, deadline: float) -> None:
    """Until the platform has received the story's uploads so far (start_rollout recorded each).

    A story's builds are uploaded one after another, as CI does. S3 and EventBridge give no
    order between the events of two keys, and the platform queues uploads in the order it
    receives them: without this, a second upload's event handled first on a busy machine
    would run the story's rollouts in the other order. Past the deadline the story goes on
    (a stalled start_rollout shows in the report).
    """
    pause = 0.02
    while len(_rollout_records(cloud, application)) < uploads and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 1.5, 0.2)


def _wait_for_all(cloud: LocalCloud, expected: int, deadline: float) -> list[ExecutionRecord]:
    """Every rollout execution, once all have ended (rejected uploads start none)."""
    pause = 0.05  # growing to 0.25 s: a story lasts seconds, and each look costs two API calls
    while True:
        cloud.wait_idle(max(1.0, deadline - time.monotonic()))
        arns = cloud.executions("RolloutStateMachine")
        # One ListExecutions call, not a DescribeExecution per rollout: this loop shares the
        # interpreter with the rollouts it waits for.
        settled = not cloud.executions("RolloutStateMachine", status="RUNNING")
        rejected_uploads = expected - len(arns)
        if settled and (len(arns) == expected or rejected_uploads > 0):
            return sorted((cloud.wait_for_execution(a) for a in arns), key=lambda r: r.start or 0)
        if time.monotonic() > deadline:
            running = cloud.executions("RolloutStateMachine", status="RUNNING")
            raise LocalCloudError(
                f"{len(running)} of {expected} rollouts still running at the deadline: "
                + _where_they_wait(cloud, running)
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 0.25)


def _where_they_wait(cloud: LocalCloud, running: list[str]) -> str:
    """Each running rollout's current state, and its application's lock and queue: what a
    rollout stuck at the deadline waits for."""
    sfn = cloud.client("stepfunctions")
    said: list[str] = []
    applications: set[str] = set()
    for arn in running:
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
        entered = [
            e["stateEnteredEventDetails"]["name"]
            for p in pages
            for e in p["events"]
            if "stateEnteredEventDetails" in e
        ]
        state = entered[-1] if entered else "?"
        said.append(f"{arn.rsplit(':', 1)[-1]} in {state!r}")
        ref = json.loads(sfn.describe_execution(executionArn=arn).get("input") or "{}").get("ref") or {}
        applications.add(str(ref.get("application", "")))
    store = DynamoRolloutStore(cloud.output("StateTableName"))
    for application in sorted(a for a in applications if a):
        lock = store.lock(application)
        places = [
            f"{q.rollout_id} ({'waiting' if q.token else 'no token'})" for q in store.queued(application)
        ]
        holder = f"{lock.rollout_id}{' (turn not delivered)' if lock.token else ''}" if lock else "free"
        said.append(f"{application}'s lock: {holder}; its queue: {', '.join(places) or 'empty'}")
    return "; ".join(said)


def _deployments(cloud: LocalCloud, simulator: FleetSimulator) -> list[dict[str, Any]]:
    """Each deployment of the application's groups, in creation order, as CodeDeploy reports it:
    who created it (``user``, or ``codeDeployRollback`` for CodeDeploy's own rollbacks) and when
    it was created and completed (ISO 8601; ``completed`` None while it is active)."""
    codedeploy = cloud.client("codedeploy")
    entries = []
    for d in simulator.deployments:
        info = codedeploy.get_deployment(deploymentId=d.deployment_id)["deploymentInfo"]
        completed = info.get("completeTime")
        entries.append(
            {
                "group": d.group,
                "side": d.side,
                "revision": d.version,
                "status": d.status,
                "id": d.deployment_id,
                "creator": info["creator"],
                "created": info["createTime"].isoformat(),
                "completed": completed.isoformat() if completed else None,
            }
        )
    return entries


def _report(
    scenario: Scenario,
    simulator: FleetSimulator,
    executions: list[ExecutionRecord],
    records: dict[str, RolloutRecord],
    deployments: list[dict[str, Any]],
) -> dict[str, Any]:
    rollouts = []
    for record in sorted(records.values(), key=lambda r: r.received_at):
        execution = next((e for e in executions if e.name == record.rollout_id), None)
        rollouts.append(
            {
                "rollout_id": record.rollout_id,
                "version": record.version,
                "outcome": record.outcome or record.status,
                "reason": record.reason or "",
                "verdict": record.verdict.model_dump(mode="json") if record.verdict else None,
                "decision": record.decision.stored() if record.decision else None,
                "canary_weight_history": [e["weight"] for e in _weight_history(record)],
                "weights": _weight_history(record),
                "audit": [entry.stored() for entry in record.audit],
                "window_waits": _window_waits(record),
                "overrides": _overrides(record),
                "stages": [
                    {"stage": stage.value, "seconds": round((at - record.received_at).total_seconds(), 1)}
                    for stage in Stage
                    if (at := record.stage_at(stage)) is not None
                ],
                "strategy": record.strategy or "in_place",
                "live_color": record.live_color,
                "release_color": record.release_color,
                "execution_status": execution.status if execution else None,
                "state_transitions": execution.states_entered if execution else [],
            }
        )
    last = rollouts[-1] if rollouts else {}
    state = next(iter(simulator.apps.values()))
    return {
        "scenario": scenario.name,
        "policy": scenario.policy.model_dump(mode="json"),
        "outcome": last.get("outcome"),
        "reason": last.get("reason", ""),
        "live_revision": state.versions["live"],
        "canary_revision": state.versions["canary"],
        "canary_weight_history": last.get("canary_weight_history", []),
        "window_waits": last.get("window_waits", []),
        "overrides": last.get("overrides", []),
        "deployments": deployments,
        "state_transitions": last.get("state_transitions", []),
        "executions": [
            {"name": e.name, "status": e.status, "error": e.error, "cause": e.cause} for e in executions
        ],
        "rollouts": rollouts,
        "alarms": simulator.alarms_fired,
        "decisions": simulator.decisions,
        "expected": [u.expect for u in scenario.uploads],
    }
