"""Figure 8: blue/green against in place, in one run on the local cloud.

- 8a: from the canary alarm (its audit entry on the rollout) to all traffic on the last good
  revision (the rollback's weight change), and to the fleet being as it was before the release
  (in place: the canary group redeployed with the last good revision; blue/green: nothing to
  redeploy). The same failing build, the same deployment duration, under each strategy.
- 8b: the extra instance-hours one blue/green release costs for a given scale-down delay: the
  instances the two colors run beyond the serving fleet, sampled every 0.1 s from the idle
  color's bring-up until the old color has drained to zero, against what in place keeps running
  beside its live fleet over its own release (the canary group, always on).

Local seconds stand for AWS seconds divided by ``TIME_SCALE`` (bench/profiles.py).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.rollout_record import RolloutRecord

from bench.profiles import TIME_SCALE, Profile
from bench.quiet import QUIET_PLATFORM
from bench.results import Measure, at_most, measure
from canaryfleet_local.bundles import bundle
from canaryfleet_local.rollout_job import APPLICATION, played_scenario, scenario_cloud, upload_build
from canaryfleet_local.scenarios import DeploymentScript, Scenario, load_scenario

FAILING = "1.1.0"  # the failing-canary scenarios' failing build
SAMPLE_SECONDS = 0.1
DEADLINE_SECONDS = 300.0


def _with_deployments(scenario: Scenario, seconds: float) -> Scenario:
    """Every deployment of the story takes ``seconds`` (the profile's CodeDeploy duration)."""
    script = DeploymentScript(seconds=seconds)
    uploads = tuple(
        u.model_copy(update={"canary_deployment": script, "live_deployment": script})
        for u in scenario.uploads
    )
    return scenario.model_copy(update={"uploads": uploads})


def _rollback_times(strategy: str, profile: Profile) -> dict[str, float]:
    """Seconds from the failing build's alarm to the traffic back, and to the fleet restored."""
    name = "failing-canary" if strategy == "in_place" else "blue-green-failing-canary"
    scenario = _with_deployments(load_scenario(name), profile.deployment_seconds)
    with played_scenario(scenario, parameters=QUIET_PLATFORM, timeout=DEADLINE_SECONDS) as run:
        report = run.report
        record = next(r for r in run.records if r.version == FAILING)
    if record.outcome != "rolled_back":
        raise RuntimeError(f"{name}: the failing build was {record.outcome}, not rolled back")
    alarm = next(entry.at for entry in record.audit if entry.kind == "alarm")
    traffic = record.weight_log["rollback"].at
    # The fleet is as before the release once the last deployment of the failing rollout ended.
    restores = [
        datetime.fromisoformat(d["completed"])
        for d in report["deployments"]
        if d["revision"] != FAILING and datetime.fromisoformat(d["created"]) > alarm and d["completed"]
    ]
    restored = max([traffic, *restores])
    return {
        "traffic_seconds": (traffic - alarm).total_seconds(),
        "restored_seconds": (restored - alarm).total_seconds(),
        "restore_deployments": len(restores),
    }


class _InstanceSampler:
    """Counts each group's instances every SAMPLE_SECONDS on a thread of its own."""

    def __init__(self, client: Any, groups: list[str]) -> None:
        self.client, self.groups = client, groups
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="instance-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            found = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=self.groups)
            counts = {
                g["AutoScalingGroupName"]: len(g.get("Instances", [])) for g in found["AutoScalingGroups"]
            }
            self.samples.append((time.monotonic(), counts))

    def __enter__(self) -> _InstanceSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def instance_seconds(self, above: int) -> float:
        """Instance-seconds beyond ``above`` instances, summed over the samples."""
        return sum(max(0, sum(counts.values()) - above) * SAMPLE_SECONDS for _, counts in self.samples)


def _release_cost(strategy: str, delay_seconds: int) -> dict[str, float]:
    """Instance-seconds one healthy release runs beyond its serving fleet, and how long it took."""
    scenario = load_scenario("blue-green").model_copy(
        update={"strategy": strategy, "scale_down_delay_seconds": delay_seconds}
    )
    with scenario_cloud(scenario, APPLICATION, QUIET_PLATFORM) as (cloud, simulator):
        app = next(iter(simulator.apps.values())).app
        groups = [app.canary.auto_scaling_group, app.live.auto_scaling_group]
        serving = app.color_capacity  # the live fleet: LiveMinSize under both strategies
        store = DynamoRolloutStore(cloud.output("StateTableName"))
        started = time.monotonic()
        with _InstanceSampler(cloud.client("autoscaling"), groups) as sampler:
            upload_build(cloud, APPLICATION, "1.0.0", bundle())
            record = _wait_for_end(cloud, store)
        took = time.monotonic() - started
    if record.outcome != "released":
        raise RuntimeError(f"{strategy}: the release ended {record.outcome}: {record.reason}")
    return {"instance_seconds": sampler.instance_seconds(serving), "seconds": took, "serving": serving}


def _wait_for_end(cloud: Any, store: DynamoRolloutStore) -> RolloutRecord:
    """The rollout's record once its execution (delay and scale-down included) and the drains ended."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    sfn = cloud.client("stepfunctions")
    while True:
        arns = cloud.executions("RolloutStateMachine")
        running = [a for a in arns if sfn.describe_execution(executionArn=a)["status"] == "RUNNING"]
        if arns and not running and not cloud.fleet_operations.lifecycle.pending:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the release did not end in time")
        time.sleep(0.1)
    [record] = store.list_rollouts(APPLICATION)
    return record


def measure_blue_green(profile: Profile) -> list[Measure]:
    in_place = _rollback_times("in_place", profile)
    blue_green = _rollback_times("blue_green", profile)
    delay = profile.blue_green_delay_seconds
    cost = _release_cost("blue_green", delay)
    canary = _release_cost("in_place", delay)
    aws_hours = TIME_SCALE / 3_600
    return [
        measure(
            8,
            "alarm to all traffic on the last good revision, blue/green",
            "s",
            blue_green["traffic_seconds"],
            in_place["traffic_seconds"],
            "in place, the same failing build",
            at_most(2 * max(in_place["traffic_seconds"], 0.5), " s"),
            {"blue_green": blue_green, "in_place": in_place},
        ),
        measure(
            8,
            "alarm to the fleet as before the release, blue/green",
            "s",
            blue_green["restored_seconds"],
            in_place["restored_seconds"],
            "in place (its canary group redeployed with the last good revision)",
            at_most(in_place["restored_seconds"], " s"),
            {
                "blue_green_restore_deployments": blue_green["restore_deployments"],
                "in_place_restore_deployments": in_place["restore_deployments"],
                "deployment_seconds": profile.deployment_seconds,
            },
        ),
        measure(
            8,
            f"extra instance-hours of one blue/green release, scale-down delay {delay * TIME_SCALE} s on AWS",
            "instance-hours",
            cost["instance_seconds"] * aws_hours,
            canary["instance_seconds"] * aws_hours,
            "in place: its canary group over its own release",
            # What the design says a release costs: about the serving fleet for the release and the
            # delay (N x (release + delay)); a measure above that is a leak (a color left running).
            at_most(cost["serving"] * (cost["seconds"] + 1) * aws_hours, " instance-hours"),
            {
                "serving_instances": cost["serving"],
                "release_seconds_local": round(cost["seconds"], 2),
                "in_place_release_seconds_local": round(canary["seconds"], 2),
                "delay_seconds_local": delay,
                "time_scale": TIME_SCALE,
                "formula": "about serving x (bring-up + deployment + canary steps + approval + delay)",
            },
        ),
    ]
