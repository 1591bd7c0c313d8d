"""Every scenario keeps the timing rule of src/canaryfleet_local/scenarios/README.md.

A wait that something in the story ends has a margin that holds on a busy machine; a wait
whose point is its timeout has nothing in the story that could end it first.
"""

import pytest
from canaryfleet.logic.analysis.stats import mann_whitney_needs
from canaryfleet.models.policy import Approval, Bake

from canaryfleet_local.drain_job import drain_scenario_names, load_drain_scenario
from canaryfleet_local.scenarios import Scenario, load_scenario, scenario_names

MARGIN_SECONDS = 120
ALARM_BAKE_SECONDS = 10
# The waits these stories are about: each must expire, on every run.
TIMED_OUT = {
    "approval-timeout": "approval",
    "approval-timeout-promotes": "approval",
    "lost-deployment-event": "deployment",
    "lost-alarm-event": "bake",
}
# A bake whose alarm's event is lost runs to its timeout, which reads the alarm: the simulator
# puts it in ALARM 1 s into the bake, and this leaves a busy machine 5 s more to do so.
LOST_ALARM_BAKE_SECONDS = 6
# A deployment whose events are lost must still be running when the deploy function stores its
# token and reads its status once (else that read ends the wait), and have ended well before the
# deployment timeout reads it again: at least 5 s for the one, at least 10 s for the other.
LOST_DEPLOYMENT_SECONDS = 5
# Stories whose point is too little data to judge: their bakes are meant to be inconclusive.
TOO_LITTLE_DATA = {"too-little-traffic", "inconclusive-without-approval"}


def every_story() -> list[Scenario]:
    stories = [load_scenario(name) for name in scenario_names()]
    drains = (load_drain_scenario(name).rollout for name in drain_scenario_names())
    return stories + [story for story in drains if story is not None]


@pytest.mark.parametrize("story", every_story(), ids=lambda s: s.name)
def test_a_wait_something_ends_has_a_margin_and_a_wait_that_must_expire_cannot_be_ended(
    story: Scenario,
) -> None:
    approvals = [s for s in story.policy.steps if isinstance(s, Approval)]
    bakes = [s for s in story.policy.steps if isinstance(s, Bake)]
    timed_out = TIMED_OUT.get(story.name)

    if timed_out == "approval":
        assert all(u.decision == "none" for u in story.uploads)
        assert not any(a.during == "approval" for a in story.actions)
    else:
        assert all(a.timeout_seconds >= MARGIN_SECONDS for a in approvals)
    if timed_out == "deployment":
        assert all(u.canary_deployment.lose_event and u.live_deployment.lose_event for u in story.uploads)
        lost = [d for u in story.uploads for d in (u.canary_deployment, u.live_deployment)]
        assert all(d.seconds >= LOST_DEPLOYMENT_SECONDS for d in lost)
        assert all(story.policy.deployment_timeout_seconds - d.seconds >= 10 for d in lost)
    else:
        assert story.policy.deployment_timeout_seconds >= MARGIN_SECONDS
    tripping = [u for u in story.uploads if u.behaviour.trips_alarms]
    if timed_out == "bake":
        assert tripping and all(u.behaviour.lose_alarm_event for u in tripping)
        assert not any(a.during == "bake" for a in story.actions)
        assert all(b.duration_seconds >= LOST_ALARM_BAKE_SECONDS for b in bakes)
    elif tripping:
        assert not any(u.behaviour.lose_alarm_event for u in story.uploads)
        # One that trips during the approval or the calendar wait ends a wait whose margin is that
        # wait's own (the approval's above; a freeze's hour), not the bake's.
        if any(u.behaviour.trips_alarms_in == "bake" for u in tripping):
            assert all(b.duration_seconds >= ALARM_BAKE_SECONDS for b in bakes)
    if any(a.during == "bake" for a in story.actions):
        assert all(b.duration_seconds >= MARGIN_SECONDS for b in bakes)


@pytest.mark.parametrize("story", every_story(), ids=lambda s: s.name)
def test_a_window_stays_open_and_a_freeze_someone_overrides_stands_with_a_margin(story: Scenario) -> None:
    overridden = any(a.during == "window" and a.override_window for a in story.actions)

    # Once open, the window must still be open when the rollout reaches its live step.
    if story.window is not None:
        assert story.window.open_seconds >= MARGIN_SECONDS
    # A freeze the story overrides must not end on its own first.
    if overridden:
        assert all(f.lasts_seconds >= MARGIN_SECONDS for f in story.freezes)


@pytest.mark.parametrize("story", every_story(), ids=lambda s: s.name)
def test_a_bake_sampled_every_second_is_long_enough_for_the_judge_to_fail_a_build(story: Scenario) -> None:
    # A rank test with too few intervals cannot fail, however slow the canary, so the judge calls
    # it inconclusive (canaryfleet.logic.analysis.judge): a story's judged bake lasts the
    # intervals its metrics need at the policy's alpha, and one more for a partly filled interval.
    # Stories sampled at the load balancer's minute (the calendar ones) are not judged: their
    # bakes last seconds, so their analysis is inconclusive and a person decides.
    if story.name in TOO_LITTLE_DATA:
        return
    for bake in (s for s in story.policy.steps if isinstance(s, Bake)):
        spec = bake.analysis
        if spec is None or spec.interval_seconds >= 60:
            continue
        family = len(spec.alb_metrics) + len(spec.metrics)
        either = any(m.direction == "either" for m in spec.metrics)
        sides = "two-sided" if either else "greater"
        need = mann_whitney_needs(spec.alpha / family, sides)
        assert bake.duration_seconds // spec.interval_seconds >= need + 1, (story.name, need)
