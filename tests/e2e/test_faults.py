"""Rollouts and drains under injected faults reach the outcome they reach without them, and leave nothing.

The faults are configuration (``CANARYFLEET_LOCAL_FAULTS``, see
``src/canaryfleet_local/faults.py``): a tenth of the functions' AWS API call attempts are
throttled or fail with a server error, one invocation in twenty is refused by the Lambda
service, and one in twenty times out after it ran. The short runs are part of every test
run; the long ones (20 rollouts, 200 drains) are marked ``long`` (``make test-long``, which
CI runs after ``make test``). Every other long rollout story plays the stricter reading of
what AWS leaves undocumented, Step Functions refusing a failed attempt's task token until its
Retry (``refuse_failed_attempt_tokens``): an approval given in that gap must still count.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.rollout_record import RolloutRecord
from canaryfleet.observability import metrics

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.drain_job import run_drain_scenario
from canaryfleet_local.faults import ENVIRONMENT_VARIABLE, AwsFault, FaultPlan, LambdaFaults
from canaryfleet_local.rollout_job import (
    APPLICATION,
    played_scenario,
    run_scenario,
    scenario_cloud,
    upload_build,
)
from canaryfleet_local.scenarios import Scenario, load_scenario
from canaryfleet_local.template import REPO_ROOT
from tests.e2e.test_blue_green import BLUE, desired, wait_for
from tests.e2e.test_blue_green_stops import _released
from tests.e2e.test_rollout_scenarios import DEADLINE, QUIET

TEN_PERCENT = FaultPlan(
    seed=11,
    aws=(AwsFault(rate=0.1),),
    lambda_=LambdaFaults(fail_rate=0.05, timeout_rate=0.05),
)
STRETCH = 4
NOTHING_LEFT = {
    "approvals open": 0,
    "dead letters": 0,
    "executions running": 0,
    "hooks pending": 0,
    "locks held": 0,
    "rollouts queued": 0,
}
# Scenarios whose uploads end by themselves (no person needed beyond the simulated approver):
# 20 rollouts in all.
LONG_ROLLOUTS = [
    "healthy",
    "failing-canary",
    "slow-canary",
    "canary-deployment-fails",
    "rejected",
    "approval-timeout",
    "too-little-traffic",
    "two-uploads",
    "lost-deployment-event",
    "aborted-during-bake",
    "promoted-during-bake",
    "live-deployment-fails",
    "approval-timeout-promotes",
    "inconclusive-without-approval",
    "demo",
    "healthy",
]


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> FaultPlan:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, TEN_PERCENT.model_dump_json(by_alias=True))
    return TEN_PERCENT


def _with_time_for_retries(scenario: Scenario) -> Scenario:
    """The scenario with its deployment and approval timeouts four times longer.

    Scenarios compress minutes of policy into seconds, but botocore and Step Functions wait
    real seconds between retries: without this, a 4-second approval wait could expire while
    a throttled request for approval backs off, which is time compression, not a fault.
    """
    policy = scenario.policy
    steps = tuple(
        step.model_copy(update={"timeout_seconds": step.timeout_seconds * STRETCH})
        if hasattr(step, "timeout_seconds")
        else step
        for step in policy.steps
    )
    stretched = policy.model_copy(
        update={"steps": steps, "deployment_timeout_seconds": policy.deployment_timeout_seconds * STRETCH}
    )
    return scenario.model_copy(update={"policy": stretched})


def _assert_nothing_left(report: dict[str, Any]) -> None:
    left = dict(report["leftovers"])
    # An event a function failed on three times (each try a 1-in-20 timeout, say) is given
    # up on, as on AWS: the outcome must not depend on it, and it is kept for the on-call.
    assert left.pop("events dead-lettered") == len(report["failed_deliveries"])
    assert left == NOTHING_LEFT


def _rollouts_hold_up(
    scenario: str, seed: int, monkeypatch: pytest.MonkeyPatch, strict_tokens: bool = False
) -> dict[str, Any]:
    plan = TEN_PERCENT.model_copy(update={"seed": seed, "refuse_failed_attempt_tokens": strict_tokens})
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, plan.model_dump_json(by_alias=True))
    story = _with_time_for_retries(load_scenario(scenario))
    report = run_scenario(story, parameters={"LogLevel": "ERROR"}, timeout=600)
    outcomes = [r["outcome"] for r in report["rollouts"]]
    tokens = "failed attempts' tokens refused" if strict_tokens else "tokens open between attempts"
    print(f"{scenario} ({tokens}): {outcomes}, faults {report['faults']}, leftovers {report['leftovers']}")

    assert outcomes == report["expected"], [r["reason"] for r in report["rollouts"]]
    _assert_nothing_left(report)
    return report


def test_a_rollout_under_faults_reaches_its_outcome_and_leaves_nothing(
    faults: FaultPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = _rollouts_hold_up("healthy", faults.seed, monkeypatch)

    assert sum(report["faults"].values()) > 0  # faults were injected, and survived


def _drains_hold_up(scenario: str, instances: int) -> dict[str, Any]:
    report = run_drain_scenario(scenario, instances=instances, parameters={"LogLevel": "ERROR"}, timeout=600)
    print(
        f"{scenario} x{instances}: drained {report['drained']}, lost {report['logs_lost']}, "
        f"in {report['seconds']} s, faults {report['faults']}, leftovers {report['leftovers']}"
    )

    assert report["drained"] + report["logs_lost"] == instances
    assert report["manifests_verified"] == report["drained"]
    assert len(report["alerts"]) == report["logs_lost"]  # every loss is recorded and told
    assert report["lifecycle_completed"] == report["lifecycle_actions"] == instances
    assert report["drains_not_final"] == []
    _assert_nothing_left(report)
    return report


def test_drains_under_faults_verify_every_manifest_or_record_the_loss(faults: FaultPlan) -> None:
    report = _drains_hold_up("scale-in", 12)

    assert sum(report["faults"].values()) > 0


@pytest.mark.long
def test_twenty_rollouts_under_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    rollouts = 0
    for seed, scenario in enumerate(LONG_ROLLOUTS, start=100):
        rollouts += len(
            _rollouts_hold_up(scenario, seed, monkeypatch, strict_tokens=seed % 2 == 1)["rollouts"]
        )
    print(f"{rollouts} rollouts under faults reached their outcome")

    assert rollouts >= 20


@pytest.mark.long
def test_two_hundred_drains_under_faults(faults: FaultPlan) -> None:
    scaled_in = _drains_hold_up("scale-in", 100)
    reclaimed = _drains_hold_up("spot-storm", 100)

    assert (
        scaled_in["drained"] + reclaimed["drained"] + scaled_in["logs_lost"] + reclaimed["logs_lost"] == 200
    )


def test_throttling_that_outlasts_botocores_retries_is_waited_out_and_the_build_released(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A burst of bakes empties a CloudWatch quota's bucket for longer than botocore's six
    # attempts (about 30 s of backoff): the analysis's invocation fails with the throttle, and
    # its state's Retry, not a rollback, waits it out (TransientAwsError, statemachines/
    # rollout.asl.yaml). Six attempts throttled: every attempt of the first invocation.
    burst = AwsFault(service="cloudwatch", operation="GetMetricData", rate=1.0, error="throttle", first=6)
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, FaultPlan(aws=(burst,)).model_dump_json(by_alias=True))

    report = run_scenario(load_scenario("healthy"), parameters={"LogLevel": "ERROR"}, timeout=600)

    reasons = [r["reason"] for r in report["rollouts"]]
    assert [r["outcome"] for r in report["rollouts"]] == ["released"], reasons
    assert report["faults"] == {"aws throttle": 6}
    _assert_nothing_left(report)


def _platform_with_unretried(tmp_path: Path, *names: str) -> Path:
    """template.yaml beside the real code, whose rollout definition is the real one but for the
    Retry of the states ``names`` (top level, or in "Run canary steps"), taken out: their retries
    would take a minute or more of real backoff before the Catch a story is about."""
    for folder in ("functions", "layers"):
        (tmp_path / folder).symlink_to(REPO_ROOT / folder)
    machines = tmp_path / "statemachines"
    machines.mkdir()
    for source in (REPO_ROOT / "statemachines").glob("*.asl.json"):
        definition = json.loads(source.read_text())
        if source.name == "rollout.asl.json":
            steps = definition["States"]["Run canary steps"]["ItemProcessor"]["States"]
            for name in names:
                del (definition["States"] if name in definition["States"] else steps)[name]["Retry"]
        (machines / source.name).write_text(json.dumps(definition))
    (tmp_path / "template.yaml").write_text((REPO_ROOT / "template.yaml").read_text())
    return tmp_path / "template.yaml"


def _refused_every_time(monkeypatch: pytest.MonkeyPatch, function: str) -> None:
    """Lambda refuses every invocation of ``function``; the functions' embedded metrics are printed
    (the suite's default is off), as Lambda's log takes them."""
    refused = FaultPlan(lambda_=LambdaFaults(fail_rate=1.0, functions=function))
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, refused.model_dump_json(by_alias=True))
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


def _counted(capsys: pytest.CaptureFixture[str], metric: str) -> list[Any]:
    """The values of ``metric`` in the embedded metrics printed so far (EMF: a list each)."""
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return [m[metric] for m in emitted if metric in m]


@pytest.fixture
def fresh_metrics(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    """capsys, with the embedded metrics buffer emptied first: the local cloud runs every function
    in this process, and one a story left unfinished (its invocation abandoned at its timeout)
    leaves its metrics in Powertools' shared buffer for the next flush to print."""
    metrics.clear_metrics()
    capsys.readouterr()
    return capsys


def test_a_release_whose_record_fails_still_says_released_and_why_and_ends_release_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_metrics: pytest.CaptureFixture[str]
) -> None:
    # Given FinalizeFunction refused by Lambda every time: "Record release" fails once the build
    # serves all traffic
    _refused_every_time(monkeypatch, "FinalizeFunction")
    template = _platform_with_unretried(tmp_path, "Record release")

    # When a good build is rolled out
    with played_scenario("healthy", parameters={"LogLevel": "ERROR"}, template_path=template) as run:
        report = run.report

    # Then it is live and its rollout says released, with why it was not recorded
    [rollout] = report["rollouts"]
    assert report["live_revision"] == "1.0.0"
    assert rollout["outcome"] == "released"
    assert rollout["reason"].startswith("serves all traffic, but recording the release failed ("), rollout
    assert "may still be the one released before it" in rollout["reason"]
    assert report["faults"] == {"lambda refused": 1}  # FinalizeFunction, its one invocation
    # And the execution ends on its own Fail state, so nothing recovers (rolls back) the build
    assert [(e["status"], e["error"]) for e in report["executions"]] == [("FAILED", "ReleaseNotRecorded")]
    transitions = rollout["state_transitions"]
    assert transitions[transitions.index("Record release") :] == [
        "Record release",
        "Release not recorded",
        "Record rollout released",
        "Release rollout lock",
        "Is an old color left warm",
        "Was the release recorded",
        "Rollout released but not recorded",
    ]
    # And the lock is free for the next rollout, with nothing left waiting
    assert not report["lock_held"]
    _assert_nothing_left(report)
    # And on-call is paged: the functions' embedded metrics (printed, as Lambda's log) count
    # the metric ReleasesNotRecordedAlarm sums, once
    assert _counted(fresh_metrics, "ReleasesNotRecorded") == [[1.0]]


def test_a_rollback_that_could_not_return_the_traffic_to_live_says_so_and_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_metrics: pytest.CaptureFixture[str]
) -> None:
    # Given ShiftTrafficFunction refused by Lambda every time: the canary's first shift fails,
    # and so does the rollback's "Return all traffic to live"
    _refused_every_time(monkeypatch, "ShiftTrafficFunction")
    template = _platform_with_unretried(tmp_path, "Shift canary traffic", "Return all traffic to live")

    # When a build is rolled out
    with played_scenario("healthy", parameters={"LogLevel": "ERROR"}, template_path=template) as run:
        report = run.report

    # Then it is rolled back, and its reason says the traffic may not be back on live
    [rollout] = report["rollouts"]
    assert rollout["outcome"] == "rolled_back"
    assert (
        "; the traffic was not returned to live: requests may still reach this build (" in rollout["reason"]
    )
    assert report["faults"] == {"lambda refused": 2}  # the shift, then the rollback's
    transitions = rollout["state_transitions"]
    assert transitions.index("Return all traffic to live") < transitions.index("Record rollout rolled back")
    assert not report["lock_held"]
    _assert_nothing_left(report)
    # And on-call is paged: the metric RestoresFailedAlarm sums is counted once
    assert _counted(fresh_metrics, "RestoresFailed") == [[1.0]]


@contextlib.contextmanager
def _blue_pinned_while_warm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unretried: str
) -> Iterator[tuple[LocalCloud, DynamoRolloutStore, Any, RolloutRecord]]:
    """A blue/green release onto green whose old color, blue, someone pins while it is kept warm
    (8 s): its group's minimum raised to its two instances, so SetDesiredCapacity to 0 is refused.
    ``unretried``: the scale-down state whose Retry is taken out. The cloud, the rollout store,
    Step Functions, and the rollout's record once its released stage is recorded."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    template = _platform_with_unretried(tmp_path, unretried)
    scenario = load_scenario("blue-green").model_copy(update={"scale_down_delay_seconds": 8})
    with scenario_cloud(scenario, APPLICATION, QUIET, template_path=template) as (cloud, _):
        store = DynamoRolloutStore(cloud.output("StateTableName"))
        upload_build(cloud, APPLICATION, "1.0.0", bundle())
        released = wait_for(lambda: _released(store), time.monotonic() + DEADLINE)
        assert released.outcome == "released" and released.execution_arn is not None
        cloud.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=BLUE, MinSize=2)
        yield cloud, store, cloud.client("stepfunctions"), released


def test_an_old_color_its_release_could_not_scale_to_zero_is_said_on_the_record_and_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_metrics: pytest.CaptureFixture[str]
) -> None:
    # Given a blue/green release whose old color (blue) someone pins while it is kept warm
    with _blue_pinned_while_warm(tmp_path, monkeypatch, "Scale the old color to zero") as pinned:
        cloud, store, sfn, released = pinned
        arn = released.execution_arn

        # When the scale-down delay has passed
        wait_for(
            lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING",
            time.monotonic() + DEADLINE,
        )
        execution = sfn.describe_execution(executionArn=arn)
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        record = store.get(APPLICATION, released.rollout_id)
        blue_desired = desired(cloud, BLUE)

    # Then the release stands (the execution ends as released), blue keeps its instances, and the
    # rollout's record says which color and why
    assert execution["status"] == "SUCCEEDED"
    assert _entered(history)[-4:] == [
        "Scale the old color to zero",
        "Say the old color was left up",
        "Was the release recorded",
        "Rollout released",
    ]
    assert blue_desired == 2
    assert record is not None and (record.outcome, record.reason) == ("released", "")
    assert record.old_color_left_up == (
        "blue was not scaled to zero: its scale-down failed (An error occurred (ValidationError) when"
        " calling the SetDesiredCapacity operation: New SetDesiredCapacity value 0 is below min value"
        f" 2 for the AutoScalingGroup.). Its group {BLUE} keeps its instances until it is scaled in"
        " by hand or the application's next release empties it"
    )
    # And on-call is paged: the metric OldColorsLeftUpAlarm sums is counted once
    assert _counted(fresh_metrics, "OldColorsLeftUp") == [[1.0]]


def test_an_old_color_the_recovery_of_a_stopped_release_could_not_scale_to_zero_pages_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_metrics: pytest.CaptureFixture[str]
) -> None:
    # Given a blue/green release whose old color (blue) someone pins while it is kept warm, and
    # its execution then stopped by hand
    unretried = "Scale the old color of a stopped release to zero"
    with _blue_pinned_while_warm(tmp_path, monkeypatch, unretried) as (cloud, store, sfn, released):
        sfn.stop_execution(executionArn=released.execution_arn, error="Manual", cause="looked finished")

        # When its recovery has waited out the rest of the delay
        machine = cloud.resource("RolloutStateMachine")
        recovery = wait_for(
            lambda: _ended_recovery(sfn, machine, released.rollout_id), time.monotonic() + DEADLINE
        )
        history = sfn.get_execution_history(executionArn=recovery["executionArn"], maxResults=1000)["events"]
        record = store.get(APPLICATION, released.rollout_id)
        blue_desired = desired(cloud, BLUE)

    # Then the recovery ends as it does with nothing left to recover, blue keeps its instances,
    # the rollout's record says so, and on-call is paged once
    assert recovery["status"] == "SUCCEEDED"
    assert _entered(history)[-3:] == [
        "Scale the old color of a stopped release to zero",
        "Say the old color of a stopped release was left up",
        "Nothing left to recover",
    ]
    assert blue_desired == 2
    assert record is not None and (record.outcome, record.reason) == ("released", "")
    assert record.old_color_left_up is not None
    assert record.old_color_left_up.startswith("blue was not scaled to zero: its scale-down failed (")
    assert _counted(fresh_metrics, "OldColorsLeftUp") == [[1.0]]


def _entered(history: list[dict[str, Any]]) -> list[str]:
    """The states an execution entered, in order."""
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def _ended_recovery(sfn: Any, machine: str, rollout_id: str) -> dict[str, Any] | None:
    """The rollout's recovery execution, once it has ended."""
    for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
        if execution["name"].startswith(f"{rollout_id}-recovery-") and execution["status"] != "RUNNING":
            return dict(execution)
    return None
