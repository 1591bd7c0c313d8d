"""Figures 1 and 2: state transitions of a released rollout, and how fast a rollout reacts.

canaryfleet's rollout and the polling baseline (bench/baselines/polling_rollout.asl.json) run
side by side on one local cloud, each for its own onboarded application, both driven by the
same fleet simulator: the same deployment durations, bake, alarms and approver delay.

- Figure 1: a released rollout at short durations and at durations ``duration_factor`` times
  longer; transitions are the states entered and the Tasks retried, read from each execution's
  history (Step Functions bills both).
- Figure 2: from the simulator's clock reading when a CodeDeploy deployment ended to the next
  state the waiting execution entered (for the baseline: the first state outside its polling
  loop); and from the moment a canary alarm went to ALARM to the end of the task that set the
  canary weight back to 0.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.app_config import AppConfig, registry_parameter

from bench.baselines.polling_rollout import (
    POLL_STATES,
    WEIGHT_TO_ZERO_ON_ROLLBACK,
    PollingApprover,
    PollingRollout,
    PollingTimings,
    install_polling_rollout,
    start_polling_rollout,
)
from bench.histories import BenchError, Execution, wait_until_ended, wall_clock
from bench.profiles import AWS_ROLLOUT_POLL_SECONDS, ROLLOUT_POLL_SECONDS, TIME_SCALE, Profile
from bench.quiet import QUIET_PLATFORM
from bench.results import Goal, Measure, at_most, equals, measure
from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.rollout_job import upload_build
from canaryfleet_local.scenarios import Scenario, Upload
from canaryfleet_local.simulator import DeploymentRecord, FleetSimulator

CANARY_WEIGHT = 10
PLATFORM_WEIGHT_TO_ZERO_ON_ROLLBACK = "Return all traffic to live"
REACTION_GOAL_SECONDS = 0.5
DURATION_SEED = 8  # the same drawn deployment durations in every run
# History timestamps are cut to the millisecond: look that much before a clock reading.
_STAMP_RESOLUTION = 0.001


@dataclass(frozen=True)
class Phase:
    name: str
    release: str  # the version that is released
    failing: tuple[str, ...]  # versions whose canary alarm fires
    deployment_seconds: float
    bake_seconds: int
    decide_seconds: float
    window_seconds: int  # the released build waits this long for its deployment window


@dataclass(frozen=True)
class UploadRun:
    version: str
    expect: str
    platform: Execution
    baseline: Execution


@dataclass
class PhaseRun:
    phase: Phase
    scenario: Scenario
    platform_app: AppConfig
    baseline_app: AppConfig
    uploads: list[UploadRun] = field(default_factory=list)
    deployments: list[DeploymentRecord] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)

    def released(self) -> UploadRun:
        return next(u for u in self.uploads if u.version == self.phase.release)


@dataclass(frozen=True)
class Side:
    """One of the two rollouts compared: canaryfleet's or the polling baseline's."""

    is_platform: bool
    ignoring: frozenset[str]  # states that only repeat while waiting
    weight_to_zero: str  # the state that sets the canary weight back to 0 on a rollback

    def app(self, run: PhaseRun) -> AppConfig:
        return run.platform_app if self.is_platform else run.baseline_app

    def executions(self, run: PhaseRun) -> list[Execution]:
        return [u.platform if self.is_platform else u.baseline for u in run.uploads]


PLATFORM = Side(True, frozenset(), PLATFORM_WEIGHT_TO_ZERO_ON_ROLLBACK)
BASELINE = Side(False, POLL_STATES, WEIGHT_TO_ZERO_ON_ROLLBACK)


# -- the story ----------------------------------------------------------------------------
def phases(profile: Profile) -> tuple[Phase, Phase]:
    short = Phase(
        name="short",
        release="1.0.0",
        failing=tuple(f"1.{n}.0" for n in range(1, profile.failing_builds + 1)),
        deployment_seconds=profile.deployment_seconds,
        bake_seconds=profile.bake_seconds,
        decide_seconds=profile.decide_seconds,
        window_seconds=profile.window_seconds,
    )
    factor = profile.duration_factor
    long = Phase(
        name=f"x{factor}",
        release="2.0.0",
        failing=(),
        deployment_seconds=profile.deployment_seconds * factor,
        bake_seconds=profile.bake_seconds * factor,
        decide_seconds=profile.decide_seconds * factor,
        window_seconds=profile.window_seconds * factor,
    )
    return short, long


def approval_timeout(phase: Phase) -> int:
    return int(phase.decide_seconds * 4) + 4


def phase_scenario(phase: Phase, rng: random.Random) -> Scenario:
    """The phase's uploads. The released build's deployments take the phase's nominal time
    (figure 1 compares durations); a failing build's canary deployment 0.5 to 1.5 times it,
    drawn from ``rng``, so that it ends at a random point of the baseline's poll interval."""
    nominal = {"seconds": phase.deployment_seconds}
    uploads: list[dict[str, Any]] = [
        {"version": phase.release, "canary_deployment": nominal, "live_deployment": nominal}
    ]
    uploads += [
        {
            "version": version,
            "behaviour": {"error_rate": 0.2, "trips_alarms": True},
            "canary_deployment": {"seconds": round(phase.deployment_seconds * rng.uniform(0.5, 1.5), 3)},
            "expect": "rolled_back",
        }
        for version in phase.failing
    ]
    return Scenario.model_validate(
        {
            "name": f"bench-{phase.name}",
            "description": "canaryfleet and the polling baseline, side by side",
            "decide_after_seconds": phase.decide_seconds,
            # The released build arrives outside its deployment window: canaryfleet's rollout waits
            # for it to open (the baseline has no window). Open for an hour once open.
            "window": {"opens_after_seconds": phase.window_seconds, "open_seconds": 3600},
            "policy": {
                "deployment_timeout_seconds": int(phase.deployment_seconds * 3) + 5,
                "inconclusive_extensions": 1,
                "steps": [
                    {"kind": "set_weight", "weight": CANARY_WEIGHT},
                    {
                        "kind": "bake",
                        "duration_seconds": phase.bake_seconds,
                        "analysis": {
                            "min_requests": 100,
                            "metrics_delay_seconds": 0,
                            "interval_seconds": 1,
                            "min_intervals": 1,
                        },
                    },
                    {
                        "kind": "approval",
                        "timeout_seconds": approval_timeout(phase),
                        "on_timeout": "rollback",
                    },
                ],
            },
            "uploads": uploads,
        }
    )


def onboard_with_policy(cloud: LocalCloud, application: str, scenario: Scenario) -> AppConfig:
    """A fleet for ``application`` whose registry entry carries the scenario's policy (its window,
    if it has one, placed from now)."""
    policy = scenario.policy_at(datetime.now(UTC))
    app = deploy_fleet(cloud, application).model_copy(update={"policy": policy})
    cloud.client("ssm").put_parameter(
        Name=registry_parameter(app.application),
        Value=app.model_dump_json(),
        Type="String",
        Overwrite=True,
    )
    return app


def _onboard(cloud: LocalCloud, phase: Phase, scenario: Scenario) -> tuple[AppConfig, AppConfig]:
    """The phase's two applications, canaryfleet's with the phase's policy in its registry entry.

    Each phase has applications of its own: the functions keep a registry entry they read for a
    while (as on AWS), so a policy changed in place would not be seen at once.
    """
    platform = onboard_with_policy(cloud, f"hello-{phase.name}", scenario)
    return platform, deploy_fleet(cloud, f"polling-{phase.name}")


def _new_platform_execution(cloud: LocalCloud, known: set[str], deadline: float) -> str:
    while True:
        new = set(cloud.executions("RolloutStateMachine")) - known
        if new:
            return new.pop()
        if time.monotonic() > deadline:
            raise BenchError("the upload started no canaryfleet rollout")
        time.sleep(0.05)


def _platform_outcome(cloud: LocalCloud, app: AppConfig, execution: Execution) -> tuple[str, str]:
    """The outcome and reason canaryfleet recorded for the rollout the execution ran."""
    name = execution.arn.rsplit(":", 1)[-1]
    records = DynamoRolloutStore(cloud.output("StateTableName")).list_rollouts(app.application)
    record = next((r for r in records if r.rollout_id == name), None)
    return str(record and (record.outcome or record.status)), (record and record.reason) or ""


def _check_outcomes(cloud: LocalCloud, app: AppConfig, upload: Upload, run: UploadRun) -> None:
    platform, reason = _platform_outcome(cloud, app, run.platform)
    baseline_expected = ("SUCCEEDED", None) if upload.expect == "released" else ("FAILED", "RolledBack")
    if platform != upload.expect:
        raise BenchError(
            f"canaryfleet's rollout of {upload.version} ended {platform}, not {upload.expect}: {reason}"
        )
    if (run.baseline.status, run.baseline.error) != baseline_expected:
        raise BenchError(
            f"the baseline's rollout of {upload.version} ended {run.baseline.status} {run.baseline.error}"
        )


def _play_upload(
    cloud: LocalCloud,
    baseline: PollingRollout,
    apps: tuple[AppConfig, AppConfig],
    phase: Phase,
    upload: Upload,
) -> UploadRun:
    platform_app, baseline_app = apps
    sfn = cloud.client("stepfunctions")
    body = bundle()
    timeout = 4 * (2 * phase.deployment_seconds + phase.bake_seconds + phase.decide_seconds) + 30
    timeout += phase.window_seconds
    timings = PollingTimings(ROLLOUT_POLL_SECONDS, phase.bake_seconds, approval_timeout(phase), CANARY_WEIGHT)
    known = set(cloud.executions("RolloutStateMachine"))
    upload_build(cloud, platform_app.application, upload.version, body)
    baseline_arn = start_polling_rollout(cloud, baseline, baseline_app, upload.version, body, timings)
    platform_arn = _new_platform_execution(cloud, known, time.monotonic() + 30)
    run = UploadRun(
        version=upload.version,
        expect=upload.expect,
        platform=wait_until_ended(sfn, platform_arn, timeout),
        baseline=wait_until_ended(sfn, baseline_arn, timeout),
    )
    cloud.wait_idle()  # the lock's release and the notifications, before the next upload
    _check_outcomes(cloud, platform_app, upload, run)
    return run


def play_phase(cloud: LocalCloud, baseline: PollingRollout, phase: Phase, rng: random.Random) -> PhaseRun:
    scenario = phase_scenario(phase, rng)
    apps = _onboard(cloud, phase, scenario)
    run = PhaseRun(phase, scenario, *apps)
    with (
        FleetSimulator(cloud, scenario) as simulator,
        PollingApprover(cloud, baseline, phase.decide_seconds),
    ):
        for app in apps:
            simulator.add_application(app)
        for upload in scenario.uploads:
            run.uploads.append(_play_upload(cloud, baseline, apps, phase, upload))
        if simulator.errors:
            raise BenchError(f"fleet simulator: {simulator.errors[0]}")
        run.deployments = list(simulator.deployments)
        run.alarms = list(simulator.alarms_fired)
    return run


# -- reading the runs ---------------------------------------------------------------------
def _covering(executions: list[Execution], at: float) -> Execution | None:
    return next((e for e in executions if e.started <= at <= e.ended), None)


def deployment_reactions(run: PhaseRun, side: Side) -> list[float]:
    """Seconds from each ended deployment of the side's application to its execution's next state."""
    executions = side.executions(run)
    app = side.app(run)
    groups = {app.canary.deployment_group, app.live.deployment_group}
    samples = []
    for deployment in run.deployments:
        if deployment.group not in groups or deployment.ended is None or deployment.status == "Stopped":
            continue
        ended = wall_clock(deployment.ended)
        execution = _covering(executions, ended)
        reaction = (
            execution.first_entered_after(ended - _STAMP_RESOLUTION, side.ignoring) if execution else None
        )
        if reaction is None:
            raise BenchError(f"no state followed deployment {deployment.deployment_id} of {app.application}")
        samples.append(max(0.0, reaction.at - ended))
    return samples


def alarm_reactions(run: PhaseRun, side: Side) -> list[float]:
    """Seconds from a canary alarm going to ALARM to the end of the task that set the weight to 0."""
    executions = side.executions(run)
    app = side.app(run)
    samples: dict[str, float] = {}
    for alarm in run.alarms:
        if alarm["state"] != "ALARM" or alarm["alarm"] not in app.canary.alarms:
            continue
        fired = wall_clock(alarm["at"])
        execution = _covering(executions, fired)
        if execution is None or execution.arn in samples:
            continue
        reset = execution.first_exit_of(side.weight_to_zero, fired - _STAMP_RESOLUTION)
        if reset is None:
            raise BenchError(f"{app.application}: no '{side.weight_to_zero}' after its canary alarm")
        samples[execution.arn] = max(0.0, reset.at - fired)
    return list(samples.values())


# -- the figures --------------------------------------------------------------------------
def transition_measures(short: PhaseRun, long: PhaseRun, factor: int) -> list[Measure]:
    p_short, b_short = short.released().platform, short.released().baseline
    p_long, b_long = long.released().platform, long.released().baseline

    def durations(run: PhaseRun) -> dict[str, Any]:
        released = run.scenario.uploads[0]
        return {
            "deployment_seconds": [released.canary_deployment.seconds, released.live_deployment.seconds],
            "bake_seconds": run.phase.bake_seconds,
            "approver_seconds": run.phase.decide_seconds,
            "window_wait_seconds": run.phase.window_seconds,
        }

    def polls(execution: Execution) -> int:
        return sum(1 for s in execution.states_entered if s.startswith("Get "))

    return [
        measure(
            1,
            "state transitions, released rollout, short durations",
            "transitions",
            p_short.transitions,
            b_short.transitions,
            "polling baseline, same durations",
            at_most(40),
            {
                **durations(short),
                "states": p_short.states_entered,
                "baseline_polls": polls(b_short),
            },
        ),
        measure(
            1,
            f"state transitions, released rollout, durations x{factor}",
            "transitions",
            p_long.transitions,
            b_long.transitions,
            "polling baseline, same durations",
            at_most(40),
            {
                **durations(long),
                "states": p_long.states_entered,
                "baseline_polls": polls(b_long),
            },
        ),
        measure(
            1,
            f"transitions at x{factor} durations / at short durations",
            "times",
            p_long.transitions / p_short.transitions,
            b_long.transitions / b_short.transitions,
            "polling baseline's growth",
            equals(1, " (the same number)"),
        ),
    ]


def _every_sample_below(samples: list[float], limit: float) -> Goal:
    worst = max(samples)
    return Goal(f"every sample < {limit:g} s", lambda _value, _ratio: worst < limit)


def _latency(
    name: str, platform: list[float], baseline: list[float], baseline_label: str, expected: dict[str, Any]
) -> Measure:
    if not platform or not baseline:
        raise BenchError(f"{name}: no samples (canaryfleet {len(platform)}, baseline {len(baseline)})")
    return measure(
        2,
        name,
        "s (mean)",
        statistics.fmean(platform),
        statistics.fmean(baseline),
        baseline_label,
        _every_sample_below(platform, REACTION_GOAL_SECONDS),
        {
            "samples": [round(s, 4) for s in platform],
            "max": round(max(platform), 4),
            "baseline_samples": [round(s, 4) for s in baseline],
            **expected,
        },
    )


def latency_measures(runs: list[PhaseRun], bake_seconds: int) -> list[Measure]:
    def samples(side: Side, read: Callable[[PhaseRun, Side], list[float]]) -> list[float]:
        return [sample for run in runs for sample in read(run, side)]

    poll = ROLLOUT_POLL_SECONDS
    return [
        _latency(
            "deployment finished -> next state entered",
            samples(PLATFORM, deployment_reactions),
            samples(BASELINE, deployment_reactions),
            f"polling baseline, poll every {poll} s (AWS: {AWS_ROLLOUT_POLL_SECONDS} s)",
            {
                "baseline_expected_seconds": poll / 2,
                "baseline_expected": "half the poll interval",
                "aws_baseline_expected_seconds": AWS_ROLLOUT_POLL_SECONDS / 2,
            },
        ),
        _latency(
            "canary alarm -> canary weight back to 0",
            samples(PLATFORM, alarm_reactions),
            samples(BASELINE, alarm_reactions),
            f"polling baseline, alarm checked after a {bake_seconds} s bake",
            {
                "baseline_expected_seconds": bake_seconds / 2,
                "baseline_expected": "what is left of the bake after the alarm",
                "aws_baseline_expected_seconds": bake_seconds * TIME_SCALE / 2,
            },
        ),
    ]


def measure_rollouts(profile: Profile) -> list[Measure]:
    short, long = phases(profile)
    with LocalCloud(parameters=QUIET_PLATFORM) as cloud:
        baseline = install_polling_rollout(cloud)
        rng = random.Random(DURATION_SEED)
        short_run = play_phase(cloud, baseline, short, rng)
        long_run = play_phase(cloud, baseline, long, rng)
    return [
        *transition_measures(short_run, long_run, profile.duration_factor),
        *latency_measures([short_run, long_run], short.bake_seconds),
    ]
