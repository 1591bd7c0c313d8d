"""Figure 6: many applications rolling out at once on one local cloud.

N applications are onboarded the way a scenario onboards one (their fleet stacks from
fleet/template.yaml, a policy in each registry entry) and played by one fleet simulator. The
baseline is one application's rollout alone on the same cloud, just before. Then every
application gets a build at the same moment: every fifth one a build whose canary alarm fires
(it must roll back), the others a good one (released). Measured: right outcomes, lock and queue
items left in the state table once all ended, the wall time from the uploads to the last
end, and the process's peak resident memory (this figure runs in a process of its own).
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.rollout_record import RolloutRecord

from bench.histories import BenchError
from bench.quiet import QUIET_PLATFORM
from bench.results import Measure, below, equals, measure
from bench.rollouts import onboard_with_policy
from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.rollout_job import upload_build
from canaryfleet_local.scenarios import Scenario
from canaryfleet_local.simulator import FleetSimulator

GOOD = "1.0.0"
ALONE = "0.9.0"
FAILING = "1.1.0"
FAILING_EVERY = 5
WALL_GOAL_SECONDS = 60
MEMORY_GOAL_MB = 1024
WAIT_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Wave:
    wall_seconds: float
    outcomes: dict[str, str]  # application -> outcome of its rollout
    reasons: dict[str, str]  # application -> the first line of its rollout's reason
    verdicts: dict[str, int]  # analysis verdicts of the rollouts, by result
    expected: dict[str, str]
    leftovers: list[str]  # lock and queue items left in the state table
    peak_rss_mb: float

    @property
    def right(self) -> int:
        return sum(1 for name, outcome in self.outcomes.items() if self.expected[name] == outcome)

    @property
    def wrong(self) -> dict[str, str]:
        return {
            name: f"{outcome}: {self.reasons[name]}"
            for name, outcome in self.outcomes.items()
            if self.expected[name] != outcome
        }


def scale_scenario() -> Scenario:
    deployment = {"seconds": 0.5}
    return Scenario.model_validate(
        {
            "name": "bench-scale",
            "description": "many applications at once",
            "decide_after_seconds": 0.3,
            "policy": {
                "deployment_timeout_seconds": 30,
                "steps": [
                    {"kind": "set_weight", "weight": 10},
                    {
                        "kind": "bake",
                        # Long enough for the judge to pass a good build (bench/profiles.py).
                        "duration_seconds": 5,
                        "analysis": {
                            "min_requests": 100,
                            "metrics_delay_seconds": 0,
                            "interval_seconds": 1,
                            "min_intervals": 1,
                        },
                    },
                    {"kind": "approval", "timeout_seconds": 120, "on_timeout": "rollback"},
                ],
            },
            "uploads": [
                {"version": ALONE, "canary_deployment": deployment, "live_deployment": deployment},
                {"version": GOOD, "canary_deployment": deployment, "live_deployment": deployment},
                {
                    "version": FAILING,
                    "behaviour": {"error_rate": 0.2, "trips_alarms": True},
                    "canary_deployment": deployment,
                    "expect": "rolled_back",
                },
            ],
        }
    )


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def onboard(cloud: LocalCloud, count: int, scenario: Scenario) -> list[AppConfig]:
    return [onboard_with_policy(cloud, f"app-{index:03d}", scenario) for index in range(count)]


def _latest_records(cloud: LocalCloud, apps: list[AppConfig]) -> dict[str, RolloutRecord | None]:
    store = DynamoRolloutStore(cloud.output("StateTableName"))
    latest: dict[str, RolloutRecord | None] = {}
    for app in apps:
        records = store.list_rollouts(app.application)
        latest[app.application] = max(records, key=lambda r: r.received_at, default=None)
    return latest


def leftovers(cloud: LocalCloud) -> list[str]:
    """Lock and queue items of the state table (none may be left once every rollout ended)."""
    found = []
    for page in (
        cloud.client("dynamodb").get_paginator("scan").paginate(TableName=cloud.output("StateTableName"))
    ):
        for item in page["Items"]:
            sort_key = item["sk"]["S"]
            if sort_key == "LOCK" or sort_key.startswith("QUEUE#"):
                found.append(f"{item['pk']['S']} {sort_key}")
    return found


def _wait_all_ended(cloud: LocalCloud, before: set[str], expected: int, timeout: float) -> float:
    """Until ``expected`` executions not in ``before`` have started and all have stopped; the
    latest of their stop dates (epoch seconds).

    The wave ends when its last execution stops, as Step Functions records it, not when this
    loop sees it: the loop polls once a second with one ListExecutions listing (whatever the
    number of applications), and its polls, in the interpreter the figure measures, neither
    add their interval to the wall time nor take much of the interpreter.
    """
    deadline = time.monotonic() + timeout
    while True:
        listed = cloud.execution_listings("RolloutStateMachine")
        wave = [e for e in listed if e["executionArn"] not in before]
        running = sum(1 for e in wave if e["status"] == "RUNNING")
        if not running and len(wave) >= expected:
            return float(max(e["stopDate"].timestamp() for e in wave))
        if time.monotonic() > deadline:
            raise BenchError(f"{running} rollouts still running after {timeout:.0f} s")
        time.sleep(WAIT_POLL_SECONDS)


def play_wave(cloud: LocalCloud, uploads: dict[AppConfig, str], timeout: float) -> Wave:
    body = bundle()
    before = set(cloud.executions("RolloutStateMachine"))
    started = time.time()
    for app, version in uploads.items():
        upload_build(cloud, app.application, version, body)
    wall = _wait_all_ended(cloud, before, len(uploads), timeout) - started
    cloud.wait_idle(timeout)
    apps = list(uploads)
    expected = {
        app.application: "rolled_back" if version == FAILING else "released"
        for app, version in uploads.items()
    }
    records = _latest_records(cloud, apps)
    return Wave(
        wall_seconds=wall,
        outcomes={name: str(r and (r.outcome or r.status)) for name, r in records.items()},
        reasons={name: ((r and r.reason) or "").split("\n", 1)[0] for name, r in records.items()},
        verdicts=dict(Counter(str(r.verdict.result if r and r.verdict else None) for r in records.values())),
        expected=expected,
        leftovers=leftovers(cloud),
        peak_rss_mb=peak_rss_mb(),
    )


def _spread(samples: list[float]) -> dict[str, float]:
    """Median and slowest of the simulator's passes over all applications (seconds)."""
    samples = samples or [0.0]
    return {"median": round(statistics.median(samples), 3), "max": round(max(samples), 3)}


def measure_scale(count: int) -> list[Measure]:
    scenario = scale_scenario()
    with LocalCloud(parameters=QUIET_PLATFORM) as cloud:
        onboarding = time.monotonic()
        apps = onboard(cloud, count, scenario)
        onboarding_seconds = time.monotonic() - onboarding
        with FleetSimulator(cloud, scenario) as simulator:
            for app in apps:
                simulator.add_application(app)
            alone = play_wave(cloud, {apps[0]: ALONE}, 120)
            versions = {
                app: FAILING if index % FAILING_EVERY == FAILING_EVERY - 1 else GOOD
                for index, app in enumerate(apps)
            }
            wave = play_wave(cloud, versions, 600)
            notes = {
                "onboarding_seconds": round(onboarding_seconds, 1),
                "approver_decisions": dict(
                    Counter(f"{d['action']}: {d['result'].get('outcome')}" for d in simulator.decisions)
                ),
                "simulator_errors": list(simulator.errors),
                "simulator_pass_seconds": _spread(simulator.pass_seconds),
                "alarms_fired": sum(1 for a in simulator.alarms_fired if a["state"] == "ALARM"),
            }
    return scale_measures(count, alone, wave, notes)


def scale_measures(count: int, alone: Wave, wave: Wave, notes: dict[str, Any]) -> list[Measure]:
    label = "one application alone, same cloud"
    expected = list(wave.expected.values())
    return [
        measure(
            6,
            f"{count} applications at once: share with the right outcome",
            "of apps",
            wave.right / count,
            alone.right,
            label,
            equals(1, " (all)"),
            {
                "right": wave.right,
                "applications": count,
                "expected": {o: expected.count(o) for o in ("released", "rolled_back")},
                "wrong": wave.wrong,
                "verdicts": wave.verdicts,
                **notes,
            },
        ),
        measure(
            6,
            "lock and queue items left",
            "items",
            len(wave.leftovers),
            len(alone.leftovers),
            label,
            equals(0),
            {"left": wave.leftovers[:20]},
        ),
        measure(
            6,
            f"wall time, {count} rollouts at once",
            "s",
            wave.wall_seconds,
            alone.wall_seconds,
            label,
            below(WALL_GOAL_SECONDS, " s"),
        ),
        measure(
            6,
            "peak memory (resident)",
            "MB",
            wave.peak_rss_mb,
            alone.peak_rss_mb,
            "peak after the one-application rollout",
            below(MEMORY_GOAL_MB, " MB"),
        ),
    ]
