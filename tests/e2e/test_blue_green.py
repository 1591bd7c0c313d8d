"""Blue/green end to end on the local cloud: the three blue/green scenarios, and the rollout
scenarios that apply to both strategies played under blue/green."""

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from canaryfleet.adapters.freeze_store import DynamoFreezeCalendar
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.logic.freezes import declare_freeze
from canaryfleet.models.policy import RolloutPolicy
from canaryfleet.models.rollout import Stage
from canaryfleet.models.rollout_record import RolloutRecord
from canaryfleet.ports.clock import FixedClock

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.rollout_job import APPLICATION, scenario_cloud, upload_build
from canaryfleet_local.scenarios import Behaviour, load_scenario
from tests.e2e.test_rollout_scenarios import DEADLINE, QUIET, deployments, play
from tests.integration.helpers import invoke

T = TypeVar("T")

GREEN, BLUE = "hello-app-canary", "hello-app-live"  # the stack's groups: green is its canary group


def colors(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(report["colors"])


def test_a_release_reaches_all_the_traffic_on_fresh_instances_and_the_old_color_drains_to_zero() -> None:
    report = play("blue-green")

    assert (report["outcome"], report["reason"], report["strategy"]) == ("released", "", "blue_green")
    assert report["live_color"] == "green"
    green, blue = colors(report)["green"], colors(report)["blue"]
    assert (green["weight"], green["revision"], green["desired"], green["instances"]) == (100, "1.0.0", 2, 2)
    # The old color stayed warm for the delay, then left through the termination hook: every
    # instance drained, its logs verified before CompleteLifecycleAction.
    assert (blue["weight"], blue["desired"], blue["instances"]) == (0, 0, 0)
    assert len(blue["drained"]) == 2 and blue["drains_pending"] == []
    assert deployments(report) == [("canary", "1.0.0", "Succeeded")], "one deployment: to the idle color"
    assert report["canary_weight_history"] == [10, 100]
    [rollout] = report["rollouts"]
    assert (rollout["live_color"], rollout["release_color"]) == ("blue", "green")
    transitions = report["state_transitions"]
    assert transitions.index("Wait for healthy capacity") < transitions.index("Deploy canary")
    assert "Deploy live" not in transitions
    assert transitions[-4:] == [
        "Keep the old color warm",
        "Scale the old color to zero",
        "Was the release recorded",
        "Rollout released",
    ]


def test_a_failing_canary_goes_back_to_the_old_color_by_weights_alone_and_its_color_scales_to_zero() -> None:
    report = play("blue-green-failing-canary")

    first, second = report["rollouts"]
    assert (first["outcome"], first["release_color"]) == ("released", "green")
    assert (second["outcome"], second["live_color"], second["release_color"]) == (
        "rolled_back",
        "green",
        "blue",
    )
    # Its event ends the bake, or the bake's own check finds it in ALARM (a slow machine's order).
    assert re.match(r"canary alarm hello-app-blue-5xx-rate (went to|is in) ALARM: ", report["reason"])
    # No deployment restores anything: 1.0.0 to green, 1.1.0 to blue, and that is all.
    assert deployments(report) == [("canary", "1.0.0", "Succeeded"), ("live", "1.1.0", "Succeeded")]
    assert second["canary_weight_history"] == [10, 0]
    assert not any(s.startswith("Redeploy") for s in second["state_transitions"])
    assert "Scale the release color to zero" in second["state_transitions"]
    green, blue = colors(report)["green"], colors(report)["blue"]
    assert (report["live_color"], report["live_revision"], green["weight"]) == ("green", "1.0.0", 100)
    assert (blue["desired"], blue["instances"], blue["drains_pending"]) == (0, 0, [])
    # Blue drained twice: warm after 1.0.0 (emptied for 1.1.0), then 1.1.0's fresh instances.
    assert len(blue["drained"]) == 4


def test_without_healthy_capacity_the_release_ends_with_the_reason_and_no_traffic_moved() -> None:
    report = play("blue-green-no-capacity")

    assert report["outcome"] == "rolled_back"
    assert report["reason"].startswith("no healthy capacity: 1 of 2 instances healthy after ")
    assert report["reason"].endswith(
        ": Spot capacity; nothing was deployed, so version 1.0.0 may be uploaded again"
    )
    assert report["deployments"] == [], "nothing deployed"
    assert report["canary_weight_history"] == [0], "only the rollback's own reset"
    assert "Shift canary traffic" not in report["state_transitions"]
    green, blue = colors(report)["green"], colors(report)["blue"]
    assert (blue["weight"], blue["desired"]) == (100, 2)
    assert (green["desired"], green["instances"], len(green["drained"])) == (0, 0, 1)
    assert report["live_color"] is None, "no release yet: blue serves as before"


def test_a_build_arriving_while_the_old_color_is_warm_takes_that_color_over() -> None:
    report = play("two-uploads", strategy="blue_green")

    assert [r["outcome"] for r in report["rollouts"]] == ["released", "released"]
    assert [(r["live_color"], r["release_color"]) for r in report["rollouts"]] == [
        ("blue", "green"),
        ("green", "blue"),
    ]
    assert deployments(report) == [("canary", "1.0.0", "Succeeded"), ("live", "1.0.1", "Succeeded")]
    assert (report["live_color"], report["live_revision"]) == ("blue", "1.0.1")
    green, blue = colors(report)["green"], colors(report)["blue"]
    # The first release's scale-down found its old color taken over and left it; the second's
    # emptied it through the drain and brought it up fresh; green went to zero after the delay.
    assert (blue["weight"], blue["desired"], green["desired"], green["instances"]) == (100, 2, 0, 0)
    assert len(blue["drained"]) == 2 and len(green["drained"]) == 2


def test_a_failed_deployment_of_the_release_color_rolls_back_by_weights_whichever_group_it_is() -> None:
    # The second build's release goes to blue, the stack's live group: its deployment is still the
    # release's, the scenario's canary deployment, and its failure costs no redeploy.
    report = play("canary-deployment-fails", strategy="blue_green")

    assert [r["outcome"] for r in report["rollouts"]] == ["released", "rolled_back"]
    assert report["rollouts"][1]["reason"].startswith("deployment failed: ")
    assert deployments(report) == [("canary", "1.0.0", "Succeeded"), ("live", "1.1.0", "Failed")]
    assert (report["live_color"], report["live_revision"]) == ("green", "1.0.0")
    green, blue = colors(report)["green"], colors(report)["blue"]
    assert (green["weight"], blue["weight"], blue["desired"]) == (100, 0, 0)


@pytest.mark.parametrize(
    ("scenario", "outcome", "reason"),
    [
        ("healthy", "released", ""),
        ("rejected", "rejected", "rejected by approver@example.com: error budget is spent this week"),
        ("approval-timeout", "rolled_back", "nobody approved before the approval timeout"),
    ],
)
def test_rollout_scenarios_end_the_same_under_blue_green(scenario: str, outcome: str, reason: str) -> None:
    report = play(scenario, strategy="blue_green")

    assert (report["outcome"], report["reason"], report["strategy"]) == (outcome, reason, "blue_green")
    released = outcome == "released"
    assert report["live_color"] == ("green" if released else None)
    green = colors(report)["green"]
    assert (green["weight"], green["desired"]) == ((100, 2) if released else (0, 0))
    assert deployments(report) == [("canary", "1.0.0", "Succeeded")]


def test_spot_interruptions_during_the_bake_count_against_the_release_only_on_its_own_color() -> None:
    # The bake is 15 s, as in the drain scenario canary-spot-during-bake: the warnings must be
    # recorded before its analysis runs (src/canaryfleet_local/scenarios/README.md).
    policy = RolloutPolicy.model_validate(
        {
            "deployment_timeout_seconds": 120,
            "inconclusive_extensions": 0,
            "steps": [
                {"kind": "set_weight", "weight": 10},
                {
                    "kind": "bake",
                    "duration_seconds": 15,
                    "analysis": {"min_requests": 100, "metrics_delay_seconds": 0, "interval_seconds": 1},
                },
                {"kind": "approval", "timeout_seconds": 120, "on_timeout": "rollback"},
            ],
        }
    )
    # A build four times slower than live: the analysis would fail it, but for the interruption.
    story = load_scenario("blue-green")
    slow = story.uploads[0].model_copy(update={"behaviour": Behaviour(latency_seconds=0.32)})
    scenario = story.model_copy(update={"policy": policy, "uploads": (slow,)})
    deadline = time.monotonic() + DEADLINE
    with scenario_cloud(scenario, APPLICATION, QUIET) as (cloud, _):
        store = DynamoRolloutStore(cloud.output("StateTableName"))
        upload_build(cloud, APPLICATION, "1.0.0", bundle())
        baking = wait_for(
            lambda: _waiting(store, "bake"),
            deadline,
        )
        green, blue = (instances(cloud, group) for group in (GREEN, BLUE))
        # Either color loses an instance: green carries the release, blue serves.
        cloud.fleet_operations.spot.interrupt([green[0], blue[0]])
        wait_for(lambda: (r := store.get(APPLICATION, baking.rollout_id)) is not None and r.outcome, deadline)
        record = store.get(APPLICATION, baking.rollout_id)

    assert record is not None and record.outcome == "released"
    assert [i.instance for i in record.canary_interruptions] == [green[0]]
    assert record.verdict is not None and record.verdict.result == "inconclusive", (
        "the analysis did not blame the build"
    )


def _green_a_spot_instance_short_while_awaiting_approval(
    cloud: LocalCloud, store: DynamoRolloutStore, deadline: float
) -> RolloutRecord:
    """Upload a build; once it awaits approval, one of green's two instances is reclaimed (a Spot
    interruption) and no Spot capacity replaces it: the rollout's record as it waited."""
    upload_build(cloud, APPLICATION, "1.0.0", bundle())
    waiting = wait_for(lambda: _waiting(store, "approval"), deadline)
    green = instances(cloud, GREEN)
    cloud.fleet_operations.launches.spot_available[GREEN] = 0
    cloud.fleet_operations.spot.interrupt([green[0]], notice_seconds=1)
    wait_for(lambda: green[0] not in instances(cloud, GREEN), deadline)
    return waiting


def test_a_release_color_that_lost_capacity_while_awaiting_approval_takes_no_more_traffic() -> None:
    # Given a blue/green release baked and approved only 8 s into its approval, during which one of
    # green's two instances is reclaimed (a Spot interruption) and no Spot capacity replaces it
    story = load_scenario("blue-green")
    scenario = story.model_copy(update={"decide_after_seconds": 8.0, "capacity_timeout_seconds": 3})
    deadline = time.monotonic() + DEADLINE
    with scenario_cloud(scenario, APPLICATION, QUIET) as (cloud, _):
        store = DynamoRolloutStore(cloud.output("StateTableName"))
        waiting = _green_a_spot_instance_short_while_awaiting_approval(cloud, store, deadline)
        wait_for(
            lambda: (r := store.get(APPLICATION, waiting.rollout_id)) is not None and r.outcome, deadline
        )
        record = store.get(APPLICATION, waiting.rollout_id)
        released = store.live_color(APPLICATION)

    # Then, approved, it moves no more traffic onto half a color: it rolls back by weights, saying why
    assert record is not None and record.outcome == "rolled_back"
    assert record.reason is not None and record.reason.startswith(
        "no healthy capacity: 1 of 2 instances healthy"
    )
    assert max(entry.weight for _, entry in record.weight_history()) == 10, "the canary's share at most"
    assert released is None, "no release: blue serves as before"


def test_an_abort_while_the_release_color_waits_for_capacity_before_all_traffic_rolls_back_by_weights() -> (
    None
):
    # Given a blue/green release approved while green is a Spot instance short, so that the check
    # before all traffic retries for its capacity timeout, and on-call's abort then, which finds
    # no wait open
    story = load_scenario("blue-green")
    scenario = story.model_copy(update={"decide_after_seconds": 8.0, "capacity_timeout_seconds": 600})
    deadline = time.monotonic() + DEADLINE
    with scenario_cloud(scenario, APPLICATION, QUIET) as (cloud, _):
        store = DynamoRolloutStore(cloud.output("StateTableName"))
        waiting = _green_a_spot_instance_short_while_awaiting_approval(cloud, store, deadline)
        wait_for(
            lambda: (r := store.get(APPLICATION, waiting.rollout_id)) and r.decision and not r.wait_kind,
            deadline,
        )
        abort = {"action": "abort", "by": "oncall@example.com", "reason": "card network incident"}
        answer, error = invoke(
            cloud, "DecideFunction", {"application": APPLICATION, "channel": "local", **abort}
        )
        # When Spot capacity comes back and green reaches its healthy capacity
        cloud.fleet_operations.launches.spot_available[GREEN] = 5
        cloud.client("autoscaling").set_desired_capacity(AutoScalingGroupName=GREEN, DesiredCapacity=2)
        record = wait_for(lambda: _ended(store), deadline)
        released = store.live_color(APPLICATION)

    # Then the abort, recorded, rolls the release back by weights as an abort at a wait does
    assert (error, answer["outcome"]) == (None, "recorded")
    assert (record.outcome, record.error) == ("rolled_back", "Aborted")
    assert record.reason == "aborted by oncall@example.com: card network incident"
    assert max(entry.weight for _, entry in record.weight_history()) == 10, "green never took all traffic"
    assert released is None, "no release: blue serves as before"


def test_a_freeze_declared_while_the_release_color_comes_up_holds_the_canary_deployment() -> None:
    # Given a blue/green release whose color is still short of Spot capacity when on-call
    # declares a freeze (the canary's window was checked, open, before the color was asked for)
    scenario = load_scenario("blue-green").model_copy(
        update={"spot_capacity": 0, "capacity_timeout_seconds": 120}
    )
    deadline = time.monotonic() + DEADLINE
    with scenario_cloud(scenario, APPLICATION, QUIET) as (cloud, _):
        store = DynamoRolloutStore(cloud.output("StateTableName"))
        autoscaling = cloud.client("autoscaling")
        upload_build(cloud, APPLICATION, "1.0.0", bundle())
        wait_for(lambda: desired(cloud, GREEN) == 2 and len(instances(cloud, GREEN)) == 1, deadline)
        start = datetime.now(UTC)
        freeze_end = start + timedelta(seconds=8)
        declare_freeze(
            DynamoFreezeCalendar(cloud.output("StateTableName")),
            start=start,
            end=freeze_end,
            reason="card network incident",
            by="oncall@example.com",
            clock=FixedClock(start),
            freeze_id="incident-4711",
        )
        # When Spot capacity comes back and the color reaches its healthy capacity
        cloud.fleet_operations.launches.spot_available[GREEN] = 5
        autoscaling.set_desired_capacity(AutoScalingGroupName=GREEN, DesiredCapacity=2)
        record = wait_for(lambda: _ended(store), deadline)

    # Then the canary is deployed only once the freeze is over, the wait said on the rollout
    assert record.outcome == "released"
    deployed = record.stage_at(Stage.CANARY_DEPLOYED)
    assert deployed is not None and deployed >= freeze_end
    assert record.window_waits["canary"].reason.startswith("freeze incident-4711")


def _waiting(store: DynamoRolloutStore, kind: str) -> RolloutRecord | None:
    """The application's rollout waiting for ``kind`` (a bake, an approval), if one is."""
    return next((r for r in store.list_rollouts(APPLICATION) if r.wait_kind == kind), None)


def _ended(store: DynamoRolloutStore) -> RolloutRecord | None:
    """The application's one rollout, once it has an outcome."""
    records = store.list_rollouts(APPLICATION)
    return records[-1] if records and records[-1].outcome else None


def desired(cloud: LocalCloud, group: str) -> int:
    found = cloud.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return int(found["AutoScalingGroups"][0]["DesiredCapacity"])


def test_a_release_refused_for_a_listener_split_between_the_colors_says_why_and_changes_nothing() -> None:
    # Given a blue/green application whose listener rule was left sending half the requests to
    # each color (a shift stopped midway by hand): which color is live is a person's call.
    # Once a person has set the weights, the same version uploaded again rolls out: the refusal
    # said nothing about the build, which never ran.
    deadline = time.monotonic() + DEADLINE
    with scenario_cloud("blue-green", APPLICATION, QUIET) as (cloud, simulator):
        app = simulator.apps[APPLICATION].app
        elbv2 = cloud.client("elbv2")
        split = [{"TargetGroupArn": group.target_group_arn, "Weight": 50} for group in (app.live, app.canary)]
        elbv2.modify_rule(
            RuleArn=app.listener_rule_arn,
            Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": split}}],
        )
        store = DynamoRolloutStore(cloud.output("StateTableName"))

        # When a build is uploaded
        upload_build(cloud, APPLICATION, "1.0.0", bundle())
        [arn] = wait_for(lambda: cloud.executions("RolloutStateMachine") or None, deadline)
        execution = cloud.wait_for_execution(arn, timeout=max(1.0, deadline - time.monotonic()))
        cloud.wait_idle()
        [record] = store.list_rollouts(APPLICATION)
        rule = elbv2.describe_rules(RuleArns=[app.listener_rule_arn])["Rules"][0]
        weights = {g["Weight"] for g in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]}
        lock = store.lock(APPLICATION)
        created = list(cloud.codedeploy.created)
        undecided = store.version_status(APPLICATION, "1.0.0")

        # And when a person sends every request to blue, and the same version is uploaded again
        live = [
            {"TargetGroupArn": app.live.target_group_arn, "Weight": 100},
            {"TargetGroupArn": app.canary.target_group_arn, "Weight": 0},
        ]
        elbv2.modify_rule(
            RuleArn=app.listener_rule_arn,
            Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": live}}],
        )
        upload_build(cloud, APPLICATION, "1.0.0", bundle())
        again = wait_for(
            lambda: next(iter(_started_or_refused(store, besides=record.rollout_id)), None), deadline
        )
        if again.outcome is None:  # it rolls out: to the idle color (green), where the first deployed nothing
            wait_for(lambda: cloud.codedeploy.created or None, deadline)
        redeployed = list(cloud.codedeploy.created)

    # Then the rollout ends with the reason in its record and its thread, not silently queued
    assert record.outcome == "rolled_back"
    assert record.reason is not None and record.reason.startswith(
        "failed: the listener rule sends requests to both colors (blue 50%, green 50%)"
    ), record.reason
    assert record.reason.endswith("; nothing was deployed, so version 1.0.0 may be uploaded again")
    assert record.stage_at(Stage.ROLLED_BACK) is not None
    assert (execution.status, execution.error) == ("FAILED", "RolloutFailed")
    assert execution.states_entered[-4:] == [
        "Record why it failed",
        "Record rollout failed",
        "Release rollout lock after failure",
        "Rollout failed",
    ]
    # And nothing was deployed, nor any weight moved, and the turn is free
    assert created == []
    assert weights == {50}
    assert lock is None
    # And the build, which never ran, is not rejected: uploaded again, it rolls out
    assert undecided is None
    assert (again.version, again.outcome) == ("1.0.0", None), again.reason
    assert [(d.deployment_group_name, d.description) for d in redeployed] == [
        (GREEN, f"canaryfleet canary {again.rollout_id}")
    ]


def _started_or_refused(store: DynamoRolloutStore, besides: str) -> list[RolloutRecord]:
    """The application's rollouts other than ``besides`` whose upload was taken or refused."""
    return [
        r
        for r in store.list_rollouts(APPLICATION)
        if r.rollout_id != besides and (r.outcome is not None or r.status != "received")
    ]


def instances(cloud: LocalCloud, group: str) -> list[str]:
    found = cloud.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return sorted(i["InstanceId"] for g in found["AutoScalingGroups"] for i in g["Instances"])


def wait_for(condition: Callable[[], T | None], deadline: float) -> T:
    while (value := condition()) is None or value is False:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value
