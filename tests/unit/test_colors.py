"""Blue/green colors on the in-memory ports: choose, empty, bring up, wait for capacity, scale down."""

from __future__ import annotations

import json

import pytest
from canaryfleet.errors import (
    Aborted,
    CapacityNotHealthyYet,
    CapacityUnavailable,
    ColorNotEmptyYet,
    ColorStillServing,
)
from canaryfleet.logic.canary import shift_traffic
from canaryfleet.logic.colors import capacity_reason, run_color_task
from canaryfleet.logic.decisions import decide
from canaryfleet.models.app_config import AppConfig, GroupCapacity
from canaryfleet.models.decision import Decision
from canaryfleet.models.rollout import Revision, RolloutRef
from canaryfleet.models.rollout_record import QueuedRollout
from canaryfleet.models.tasks import ColorTask, ShiftTask
from canaryfleet.observability import metrics
from canaryfleet.ports.clock import FixedClock
from pydantic import ValidationError
from typer.testing import CliRunner

from canaryfleet_cli.main import app as cli
from tests.unit.fakes import (
    FakeGroups,
    FakeRule,
    InMemoryRolloutStore,
    RecordingCallbacks,
    a_rollout,
    an_app,
    hold_lock,
)

APP = "payments-api"
BLUE, GREEN = f"{APP}-live", f"{APP}-canary"  # blue is the stack's live group, green its canary group
FIRST = "payments-api-2_7_0-5e0c2c7a41d2b7b3b1f04a6d"
REF = RolloutRef(application=APP, rollout_id=FIRST, version="2.7.0")
REVISION = Revision(bucket="artifacts", key=f"{APP}/2.7.0.zip", version="2.7.0")


@pytest.fixture
def store(clock: FixedClock) -> InMemoryRolloutStore:
    store = InMemoryRolloutStore(clock)
    a_rollout(store, APP, rollout_id=FIRST)
    return store


@pytest.fixture
def app() -> AppConfig:
    return an_app(APP).model_copy(update={"strategy": "blue_green"})


def task(action: str, app: AppConfig, rollout_id: str = FIRST, **extra: object) -> ColorTask:
    ref = RolloutRef(application=APP, rollout_id=rollout_id, version="2.7.0")
    return ColorTask.model_validate({"action": action, "ref": ref, "app": app, **extra})


@pytest.fixture
def rule(app: AppConfig) -> FakeRule:
    return FakeRule(app)


def chosen(
    app: AppConfig, store: InMemoryRolloutStore, groups: FakeGroups, clock: FixedClock, rule: FakeRule
) -> AppConfig:
    return AppConfig.model_validate(run_color_task(task("choose", app), store, groups, rule, clock))


def green_went_live(
    app: AppConfig, store: InMemoryRolloutStore, rule: FakeRule, rollout_id: str = "earlier"
) -> None:
    """A release made green live: recorded, and every request on green's target group."""
    store.set_last_good(APP, REVISION, rollout_id, color="green")
    rule.set_canary_weight(app, 100)  # the registry's canary group is green


def released_onto_green(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> tuple[FakeGroups, AppConfig]:
    """This rollout chose its colors and released onto green; blue, two instances, is kept warm.
    The groups, and the app copy the rollout carries (blue its live color, green its release's)."""
    groups = FakeGroups(**{BLUE: 2, GREEN: 2})
    copy = chosen(app, store, groups, clock, rule)
    green_went_live(copy, store, rule, FIRST)
    metrics.clear_metrics()
    return groups, copy


def test_given_no_release_yet_when_colors_are_chosen_then_blue_serves_and_green_takes_the_build(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    copy = chosen(app, store, FakeGroups(), clock, rule)

    assert (copy.live_color, copy.release_color) == ("blue", "green")
    assert (copy.live.auto_scaling_group, copy.canary.auto_scaling_group) == (BLUE, GREEN)
    record = store.get(APP, FIRST)
    assert record is not None
    assert (record.strategy, record.live_color, record.release_color) == ("blue_green", "blue", "green")


def test_given_green_went_live_when_colors_are_chosen_then_blue_takes_the_next_build(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    green_went_live(app, store, rule)

    copy = chosen(app, store, FakeGroups(), clock, rule)

    assert (copy.live_color, copy.live.auto_scaling_group, copy.canary.auto_scaling_group) == (
        "green",
        GREEN,
        BLUE,
    )
    assert copy.colors() == app.colors(), "the colors are the same groups, whichever serves"


def test_given_a_warm_idle_color_when_emptied_then_it_scales_to_zero_and_waits_for_its_drains(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    green_went_live(app, store, rule)
    groups = FakeGroups(**{BLUE: 3, GREEN: 3})
    copy = chosen(app, store, groups, clock, rule)

    with pytest.raises(ColorNotEmptyYet, match="3 instance"):
        run_color_task(task("empty", copy), store, groups, rule, clock)
    groups.drained(BLUE)
    run_color_task(task("empty", copy), store, groups, rule, clock)

    assert groups.calls == [(BLUE, 0)], "scaled in once; the retry only waited for the drains"
    assert groups.desired[GREEN] == 3, "the live color is never touched"


def test_given_healthy_capacity_when_checked_then_the_deployment_may_start(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    groups = FakeGroups(**{BLUE: 4})
    copy = chosen(app, store, groups, clock, rule)
    up = run_color_task(task("bring_up", copy), store, groups, rule, clock)

    result = run_color_task(
        task("check", copy, since=up["since"], timeout_seconds=600), store, groups, rule, clock
    )

    assert up["desired"] == 4 and result == {"healthy": 4, "desired": 4}


def test_given_an_idle_color_smaller_than_the_serving_one_then_bring_up_says_so_and_asks_for_nothing(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    # Given blue serving 6 and green's MaxSize 4 (Auto Scaling refuses a desired above it)
    groups = FakeGroups(**{BLUE: 6})
    groups.max_sizes[GREEN] = 4
    copy = chosen(app, store, groups, clock, rule)

    # When the release color is brought up, it fails saying why, and sets no capacity
    with pytest.raises(CapacityUnavailable) as failed:
        run_color_task(task("bring_up", copy), store, groups, rule, clock)

    assert str(failed.value) == (
        f"green ({GREEN}) can hold at most 4 instance(s), its MaxSize, and the release needs 6 to "
        "serve like blue: raise the fleet's LiveMaxSize"
    )
    assert groups.calls == []


def test_given_short_spot_capacity_then_the_check_retries_until_the_timeout_then_says_why(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    groups = FakeGroups(**{BLUE: 6})
    groups.available[GREEN] = 3
    copy = chosen(app, store, groups, clock, rule)
    up = run_color_task(task("bring_up", copy), store, groups, rule, clock)
    check = task("check", copy, since=up["since"], timeout_seconds=600)

    clock.advance(599)
    with pytest.raises(CapacityNotHealthyYet):
        run_color_task(check, store, groups, rule, clock)
    clock.advance(1)
    with pytest.raises(CapacityUnavailable) as failed:
        run_color_task(check, store, groups, rule, clock)

    assert str(failed.value) == "3 of 6 instances healthy after 10 min: Spot capacity"


def aborted_after_the_approval(store: InMemoryRolloutStore) -> str:
    """On-call aborts once the approval has ended, while no wait is open: ``decide``'s answer."""
    hold_lock(store, REF)
    abort = Decision(
        application=APP, action="abort", by="oncall@example.com", reason="bad metrics", channel="cli"
    )
    return decide(abort, store, RecordingCallbacks(), store.clock).outcome


def test_given_an_abort_after_the_approval_then_the_check_before_all_traffic_rolls_back_saying_who_and_why(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    # Given a release color a Spot instance short after its approval (the check retries), and
    # on-call's abort, which found no wait to end
    groups = FakeGroups(**{BLUE: 2, GREEN: 2})
    groups.healthy[GREEN] = 1
    copy = chosen(app, store, groups, clock, rule)
    check = task("check", copy, since=clock.now().isoformat(), timeout_seconds=3600)
    with pytest.raises(CapacityNotHealthyYet):
        run_color_task(check, store, groups, rule, clock)
    answer = aborted_after_the_approval(store)

    # When the check is tried again, the capacity back
    groups.healthy[GREEN] = 2
    with pytest.raises(Aborted) as aborted:
        run_color_task(check, store, groups, rule, clock)

    # Then it ends as an abort at a wait does (error and cause), so the rollback says who and why
    assert answer == "recorded"
    assert str(aborted.value) == "aborted by oncall@example.com: bad metrics"


def test_given_an_abort_after_the_approval_then_no_traffic_moves_to_the_release_color(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    # Given the canary's 10% on green, and on-call's abort once no wait is open
    copy = chosen(app, store, FakeGroups(**{BLUE: 2, GREEN: 2}), clock, rule)
    shift_traffic(ShiftTask(app=copy, ref=REF, weight=10, seq="step-0"), rule, store, None, clock)
    aborted_after_the_approval(store)

    # When the state machine moves all traffic to the release color
    release = ShiftTask(app=copy, ref=REF, weight=100, seq="release")
    with pytest.raises(Aborted, match=r"^aborted by oncall@example\.com: bad metrics$"):
        shift_traffic(release, rule, store, None, clock)

    # Then the weights stay as they were, and the rollback's own shift back to live goes through
    assert rule.by_group[copy.canary.target_group_arn] == 10
    back = ShiftTask(app=copy, ref=REF, weight=0, seq="rollback")
    assert shift_traffic(back, rule, store, None, clock) == {"canary": 0, "live": 100}
    record = store.get(APP, FIRST)
    assert record is not None and [seq for seq, _ in record.weight_history()] == ["step-0", "rollback"]


def test_given_a_rollback_then_the_release_color_scales_to_zero_and_the_live_one_stays(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    groups = FakeGroups(**{BLUE: 2, GREEN: 2})
    copy = chosen(app, store, groups, clock, rule)

    result = run_color_task(task("scale_down_release", copy), store, groups, rule, clock)

    assert result == {"scaled_down": True, "color": "green"}
    assert groups.calls == [(GREEN, 0)]


def test_given_the_delay_passed_then_the_old_color_scales_to_zero_and_nothing_pages(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    groups, copy = released_onto_green(app, store, clock, rule)

    result = run_color_task(task("scale_down_old", copy), store, groups, rule, clock)

    assert result == {"scaled_down": True, "color": "blue"} and groups.calls == [(BLUE, 0)]
    assert "OldColorsLeftUp" not in metrics.metric_set
    record = store.get(APP, FIRST)
    assert record is not None and record.old_color_left_up is None


def test_given_a_newer_rollout_took_the_old_color_over_then_the_scale_down_leaves_it(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    groups = FakeGroups(**{BLUE: 2, GREEN: 2})
    copy = chosen(app, store, groups, clock, rule)
    green_went_live(copy, store, rule, FIRST)
    newer = "payments-api-2_8_0-0123456789abcdef01234567"
    a_rollout(store, APP, version="2.8.0", rollout_id=newer)
    store.queues[APP] = {
        "1#x": QueuedRollout(sk="1#x", rollout_id=newer, execution_arn="arn:newer", token="token-newer")
    }
    assert store.hand_lock_to(APP, store.queues[APP]["1#x"])

    result = run_color_task(task("scale_down_old", copy), store, groups, rule, clock)

    assert result["scaled_down"] is False and groups.calls == []


def test_given_a_release_whose_record_failed_after_all_traffic_moved_then_the_rule_says_which_color_serves(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    # Given green took every request, but "Record release" failed: the table still says blue
    rule.set_canary_weight(app, 100)
    groups = FakeGroups(**{BLUE: 2, GREEN: 2})

    # When the next rollout chooses and empties its idle color
    copy = chosen(app, store, groups, clock, rule)
    with pytest.raises(ColorNotEmptyYet):
        run_color_task(task("empty", copy), store, groups, rule, clock)

    # Then green, which serves, stays; blue (idle, warm with the build before) is emptied
    assert (copy.live_color, copy.release_color) == ("green", "blue")
    assert groups.calls == [(BLUE, 0)]


def test_given_a_release_whose_record_failed_then_the_old_color_still_scales_to_zero_by_the_rule(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    # Given this rollout moved every request to green, but "Record release" failed: the table
    # still says blue is live
    store.set_last_good(APP, REVISION, "earlier", color="blue")
    groups = FakeGroups(**{BLUE: 6, GREEN: 6})
    copy = chosen(app, store, groups, clock, rule)
    rule.set_canary_weight(copy, 100)

    # When the scale-down delay has passed
    result = run_color_task(task("scale_down_old", copy), store, groups, rule, clock)

    # Then blue, which takes no request, goes to zero as after any release
    assert result == {"scaled_down": True, "color": "blue"} and groups.calls == [(BLUE, 0)]


def test_given_a_stale_record_then_a_rollback_still_empties_the_color_that_ran_the_failed_build(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    # Given green serves by the rule but the table still says blue (an unrecorded release), so
    # this rollout released onto blue, and its rollback returned every request to green
    rule.set_canary_weight(app, 100)
    groups = FakeGroups(**{BLUE: 6, GREEN: 6})
    copy = chosen(app, store, groups, clock, rule)
    assert (copy.live_color, copy.release_color) == ("green", "blue")

    # When the release color is scaled down after the rollback
    result = run_color_task(task("scale_down_release", copy), store, groups, rule, clock)

    # Then blue, which ran the failed build and takes no request, goes to zero
    assert result == {"scaled_down": True, "color": "blue"} and groups.calls == [(BLUE, 0)]


def test_given_the_old_color_serves_again_after_a_newer_release_then_it_is_left_live(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    # Given green went live, then a newer rollout released blue again before this delay ended
    groups = FakeGroups(**{BLUE: 6, GREEN: 6})
    copy = chosen(app, store, groups, clock, rule)
    store.set_last_good(APP, REVISION, "newer", color="blue")
    rule.set_canary_weight(copy, 0)

    result = run_color_task(task("scale_down_old", copy), store, groups, rule, clock)

    assert result == {"scaled_down": False, "reason": "blue is live again"} and groups.calls == []


def test_given_the_old_color_still_takes_a_share_after_the_delay_then_it_is_left_up_and_on_call_paged(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    # Given green went live, then someone put 5% of the requests back on blue by hand
    groups, copy = released_onto_green(app, store, clock, rule)
    rule.set_canary_weight(copy, 95)

    # When the scale-down delay has passed
    result = run_color_task(task("scale_down_old", copy), store, groups, rule, clock)

    # Then blue keeps its instances (scaled to zero it would answer its 5% with 503s), and on-call
    # is paged and the rollout's record says why
    assert groups.calls == []
    said = (
        f"blue was not scaled to zero: it still takes 5% of the requests. Its group {BLUE} keeps its"
        " instances until it is scaled in by hand or the application's next release empties it"
    )
    assert result == {"scaled_down": False, "color": "blue", "reason": said}
    assert "OldColorsLeftUp" in metrics.metric_set  # its platform alarm pages on-call
    record = store.get(APP, FIRST)
    assert record is not None and record.old_color_left_up == said


def test_given_the_old_colors_scale_down_failed_then_on_call_is_paged_and_the_record_says_why(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    # Given green went live and "Scale the old color to zero" failed after its retries
    groups, copy = released_onto_green(app, store, clock, rule)
    store.record_outcome(APP, FIRST, "released", "")
    cause = {
        "errorMessage": "New SetDesiredCapacity value 0 is below min value 2 for the AutoScalingGroup.",
        "errorType": "ClientError",
    }
    caught = {"Error": "ClientError", "Cause": json.dumps(cause)}

    # When its Catch says so
    result = run_color_task(task("old_color_left_up", copy, error=caught), store, groups, rule, clock)

    # Then nothing is scaled, on-call is paged, and the record (and `status`) say which color and why
    assert groups.calls == []
    assert result["scaled_down"] is False and result["color"] == "blue"
    assert "OldColorsLeftUp" in metrics.metric_set
    record = store.get(APP, FIRST)
    assert record is not None and record.old_color_left_up is not None
    assert record.old_color_left_up.startswith(
        "blue was not scaled to zero: its scale-down failed (New SetDesiredCapacity value 0 is below"
        " min value 2 for the AutoScalingGroup.). Its group payments-api-live keeps its instances"
    )
    assert record.color_text() == (
        "green carries 2.7.0 and is live now; blue served before it, and " + record.old_color_left_up
    )


@pytest.mark.parametrize(
    ("action", "extra"),
    [("old_color_left_up", {}), ("scale_down_old", {"error": {"Error": "States.TaskFailed"}})],
)
def test_a_caught_error_is_given_to_the_left_up_action_and_only_to_it(
    app: AppConfig, action: str, extra: dict[str, object]
) -> None:
    with pytest.raises(ValidationError, match="error: given for old_color_left_up, and only for it"):
        task(action, app, **extra)


def test_given_both_colors_take_requests_then_no_color_is_chosen(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    rule.set_canary_weight(app, 10)  # a shift left midway

    with pytest.raises(ColorStillServing, match=r"both colors \(blue 90%, green 10%\)"):
        chosen(app, store, FakeGroups(), clock, rule)
    record = store.get(APP, FIRST)
    assert record is not None and record.live_color is None


def test_given_the_traffic_was_not_returned_then_the_release_color_keeps_its_instances(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    # Given the rollback's "Return all traffic to live" failed: green still takes its 10%
    groups = FakeGroups(**{BLUE: 2, GREEN: 2})
    copy = chosen(app, store, groups, clock, rule)
    rule.set_canary_weight(copy, 10)

    # Then scaling it to zero is refused (its requests would find no target: 503), and says why
    with pytest.raises(ColorStillServing, match="green still takes 10% of the requests"):
        run_color_task(task("scale_down_release", copy), store, groups, rule, clock)
    assert groups.calls == []


def test_given_an_idle_color_that_takes_requests_then_it_is_not_emptied(
    app: AppConfig, store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    groups = FakeGroups(**{BLUE: 2, GREEN: 2})
    copy = chosen(app, store, groups, clock, rule)
    rule.set_canary_weight(copy, 1)  # changed by hand since the choice

    with pytest.raises(ColorStillServing, match=r"green .* takes 1% of the requests"):
        run_color_task(task("empty", copy), store, groups, rule, clock)
    assert groups.calls == []


def test_given_an_in_place_application_then_the_color_task_refuses_it(
    store: InMemoryRolloutStore, clock: FixedClock, rule: FakeRule
) -> None:
    with pytest.raises(ValueError, match="not a blue_green application"):
        run_color_task(task("choose", an_app(APP)), store, FakeGroups(), rule, clock)


def test_a_live_color_on_an_in_place_application_is_refused() -> None:
    with pytest.raises(ValidationError, match="live_color"):
        AppConfig.model_validate({**an_app(APP).model_dump(), "live_color": "blue"})


@pytest.mark.parametrize(
    ("failures", "instances", "healthy", "reason"),
    [
        (("Could not launch Spot Instances. InsufficientInstanceCapacity",), 3, 3, "Spot capacity"),
        (
            ("InsufficientInstanceCapacity: We currently do not have sufficient m5.large capacity",),
            3,
            3,
            "On-Demand capacity",
        ),
        ((), 6, 0, "instances launched but not healthy"),
        ((), 0, 0, "no instance launched"),
        ((), 4, 4, "only 4 of 6 instance(s) launched, no failure recorded"),
    ],
)
def test_the_capacity_reason_reads_the_failed_launches(
    failures: tuple[str, ...], instances: int, healthy: int, reason: str
) -> None:
    capacity = GroupCapacity(desired=6, instances=instances, healthy=healthy, launch_failures=failures)

    assert capacity_reason(capacity) == reason


def test_the_local_rollout_refuses_a_strategy_it_does_not_know_before_starting_anything() -> None:
    result = CliRunner().invoke(cli, ["local", "rollout", "--scenario", "healthy", "--strategy", "purple"])

    assert result.exit_code == 2 and "in_place or blue_green" in result.output
