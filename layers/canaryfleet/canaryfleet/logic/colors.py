"""Blue/green: the two colors of an application's fleet, brought up, waited for, scaled to zero.

Both colors are the fleet stack's own groups (blue: its live group, green: its canary group).
Which one serves is kept with the last release (the state table's ``RELEASE#CURRENT``), never in
the stack, so nothing drifts from it; and before a color goes to zero, or takes a release, the
listener rule's weights must say it takes no request: a release whose record failed after all
traffic moved, or a rollback whose traffic reset failed, leaves them saying otherwise, and a
color scaled to zero under its share of the requests answers them all 503. Every instance a
color launches gets its CodeDeploy deployment group's last successful revision (the group's
Auto Scaling launch hook), and every instance it loses leaves through the termination hook, so
its logs are drained like any scale-in's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from canaryfleet.errors import (
    CapacityNotHealthyYet,
    CapacityUnavailable,
    ColorNotEmptyYet,
    ColorStillServing,
    parse_cause,
)
from canaryfleet.logic.canary import refuse_if_aborted
from canaryfleet.models.app_config import AppConfig, Color, GroupCapacity, other_color
from canaryfleet.models.tasks import ColorTask
from canaryfleet.observability import logger, metrics, tracer
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.fleet import GroupCapacities, TrafficWeights
from canaryfleet.ports.rollouts import RolloutStore

# The color a blue/green application serves from before its first release: the stack's live group.
FIRST_LIVE_COLOR: Color = "blue"


@tracer.capture_method
def run_color_task(
    task: ColorTask, store: RolloutStore, groups: GroupCapacities, traffic: TrafficWeights, clock: Clock
) -> dict[str, Any]:
    """One step of a blue/green release (see :class:`ColorTask`)."""
    if task.app.strategy != "blue_green":
        raise ValueError(f"{task.app.application} is not a blue_green application")
    if task.action == "choose":
        return choose_colors(task, store, traffic)
    if task.app.live_color is None:
        raise ValueError(f"{task.action}: the app carries no live color (run choose first)")
    if task.action == "empty":
        return empty_idle_color(task.app, groups, traffic)
    if task.action == "bring_up":
        return bring_up(task.app, groups, clock)
    if task.action == "check":
        if task.since is None or task.timeout_seconds is None:
            raise ValueError("check needs since and timeout_seconds")
        # Retried for up to the capacity timeout (an hour) while Spot capacity returns; before all
        # traffic no wait follows it to read an abort, which would be ignored and the aborted
        # build given every request. (Before the canary, an abort ends the rollout here too,
        # rather than at the canary's deployment.)
        refuse_if_aborted(task.ref, store)
        return check_capacity(task.app, groups, task.since, task.timeout_seconds, clock)
    if task.action in ("scale_down_release", "scale_down_old"):
        scale_down = scale_down_release if task.action == "scale_down_release" else scale_down_old
        return scale_down(task, store, groups, traffic)
    return old_color_left_up(task, store)


def _shares(app: AppConfig, weights: Mapping[str, int]) -> dict[Color, int]:
    """Each color's share of the rule's requests, in percent."""
    total = sum(weights.values())
    return {
        color: round(100 * weights.get(group.target_group_arn, 0) / total) if total else 0
        for color, group in app.colors().items()
    }


def _serving(app: AppConfig, traffic: TrafficWeights, color: Color) -> int:
    """``color``'s share of the rule's requests now, in percent (0: it takes none)."""
    weights = traffic.weights(app)
    share = _shares(app, weights)[color]
    if share == 0 and weights.get(app.colors()[color].target_group_arn, 0) > 0:
        return 1  # a weight too small to round to a percent is still requests
    return share


def _sole_server(shares: Mapping[Color, int]) -> Color | None:
    """The one color that takes requests; None when both do, or neither."""
    serving = [color for color, share in shares.items() if share > 0]
    return serving[0] if len(serving) == 1 else None


def serving_color(app: AppConfig, traffic: TrafficWeights, stored: Color | None) -> Color:
    """The color the listener rule sends every request to; ``stored`` (the last release's, else
    blue) when it sends them to both or to none, which only a person can settle."""
    return _sole_server(_shares(app, traffic.weights(app))) or stored or FIRST_LIVE_COLOR


def choose_colors(task: ColorTask, store: RolloutStore, traffic: TrafficWeights) -> dict[str, Any]:
    """The app as this rollout drives it: ``live`` the serving color, ``canary`` the idle one.

    Read once the rollout holds its application's lock, so a release that ended while this one
    queued has already said which color it left live. The listener rule's weights have the last
    word: a release whose record failed after all traffic moved left the stored color behind
    them. ColorStillServing when both colors take requests (a shift left midway): which one is
    live is then a person's call.
    """
    stored = store.live_color(task.app.application) or FIRST_LIVE_COLOR
    shares = _shares(task.app, traffic.weights(task.app))
    live = _sole_server(shares)
    if live is None:
        said = ", ".join(f"{color} {share}%" for color, share in shares.items())
        raise ColorStillServing(
            f"the listener rule sends requests to both colors ({said}), or to none: a traffic shift "
            "was left midway. Set the rule's weights to one color before releasing"
        )
    if live != stored:
        logger.warning(
            "the listener rule serves another color than the last release recorded: going by the rule",
            extra={"serving": live, "recorded": stored},
        )
    app = task.app.for_release(live)
    release = app.release_color
    assert release is not None  # for_release sets the live color
    store.set_colors(task.app.application, task.ref.rollout_id, "blue_green", live, release)
    logger.info("colors chosen", extra={"live_color": live, "release_color": release})
    return app.model_dump(mode="json")


def empty_idle_color(app: AppConfig, groups: GroupCapacities, traffic: TrafficWeights) -> dict[str, Any]:
    """The idle color at zero: a warm old color (from the release before) is scaled in through the
    drain first, so the release lands on fresh instances only. ColorNotEmptyYet while it drains;
    ColorStillServing if it takes requests."""
    group = app.canary.auto_scaling_group
    release = app.release_color
    assert release is not None  # run_color_task checked the live color
    share = _serving(app, traffic, release)
    if share:
        raise ColorStillServing(
            f"{release} ({group}) takes {share}% of the requests: it is not emptied for the release"
        )
    capacity = groups.capacity(group)
    if capacity.desired > 0:
        groups.set_desired(group, 0)
        logger.info("idle color scaled to zero", extra={"group": group, "instances": capacity.instances})
    if capacity.instances > 0:
        raise ColorNotEmptyYet(
            f"{app.release_color} ({group}) still has {capacity.instances} instance(s) draining"
        )
    return {"group": group, "instances": 0}


def bring_up(app: AppConfig, groups: GroupCapacities, clock: Clock) -> dict[str, Any]:
    """Size the idle color like the live one (at least the application's ``color_capacity``); when
    it began (the capacity timeout counts from it). Setting the same capacity again is harmless:
    a retry may."""
    live = groups.capacity(app.live.auto_scaling_group)
    desired = max(live.desired, app.color_capacity)
    # Auto Scaling refuses a desired capacity above the group's MaxSize (ValidationError): say
    # why in the release's reason instead. Both colors take LiveMaxSize, which a stack may set
    # below LiveMinSize, and the serving color may have been grown by hand.
    idle = groups.capacity(app.canary.auto_scaling_group)
    if idle.max_size is not None and desired > idle.max_size:
        raise CapacityUnavailable(
            f"{app.release_color} ({app.canary.auto_scaling_group}) can hold at most {idle.max_size} "
            f"instance(s), its MaxSize, and the release needs {desired} to serve like "
            f"{app.live_color or 'the serving color'}: raise the fleet's LiveMaxSize"
        )
    since = clock.now()  # before asking: the scaling activities it starts are later
    groups.set_desired(app.canary.auto_scaling_group, desired)
    logger.info("release color brought up", extra={"color": app.release_color, "desired": desired})
    return {"desired": desired, "since": since.isoformat()}


def check_capacity(
    app: AppConfig, groups: GroupCapacities, since: datetime, timeout_seconds: int, clock: Clock
) -> dict[str, int]:
    """Healthy capacity reached, or CapacityNotHealthyYet (retried) until the timeout, then
    CapacityUnavailable with how many were healthy and why the rest were not."""
    capacity = groups.capacity(app.canary.auto_scaling_group, since)
    if capacity.desired > 0 and capacity.healthy >= capacity.desired:
        return {"healthy": capacity.healthy, "desired": capacity.desired}
    waited = (clock.now() - since).total_seconds()
    summary = f"{capacity.healthy} of {capacity.desired} instances healthy after {_duration(waited)}"
    if waited < timeout_seconds:
        raise CapacityNotHealthyYet(f"{app.release_color}: {summary}")
    raise CapacityUnavailable(f"{summary}: {capacity_reason(capacity)}")


def capacity_reason(capacity: GroupCapacity) -> str:
    """Why a color is short of healthy instances, in a few words, from its failed launches."""
    failures = " ".join(capacity.launch_failures).lower()
    if "spot" in failures:
        return "Spot capacity"
    if "insufficientinstancecapacity" in failures or "insufficient capacity" in failures:
        return "On-Demand capacity"
    if capacity.launch_failures:
        return capacity.launch_failures[0][:200]
    if capacity.instances > capacity.healthy:
        return "instances launched but not healthy"
    if capacity.instances:
        return f"only {capacity.instances} of {capacity.desired} instance(s) launched, no failure recorded"
    return "no instance launched"


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds)} s"


def scale_down_release(
    task: ColorTask, store: RolloutStore, groups: GroupCapacities, traffic: TrafficWeights
) -> dict[str, Any]:
    """After a rollback (traffic already back on the live color by weights): the color that
    carried the failed release goes to zero, through the drain. Never the live color, and never
    while it takes requests: ColorStillServing when the traffic could not be returned (the
    rollback then says the release color may still run the build)."""
    app = task.app
    # The color this rollout chose as live, by the rule's weights (choose_colors): the stored one
    # may lag them (a release whose record failed), and would name the release color itself.
    live = app.live_color
    if app.release_color == live:  # for_release makes them differ; never risk it
        logger.warning("release color is live: left as it is", extra={"color": live})
        return {"scaled_down": False, "reason": f"{live} is live"}
    release = app.release_color
    assert release is not None
    share = _serving(app, traffic, release)
    if share:
        raise ColorStillServing(
            f"{release} still takes {share}% of the requests (the traffic was not returned to "
            f"{other_color(release)}): it keeps its instances"
        )
    groups.set_desired(app.canary.auto_scaling_group, 0)
    return {"scaled_down": True, "color": app.release_color}


def scale_down_old(
    task: ColorTask, store: RolloutStore, groups: GroupCapacities, traffic: TrafficWeights
) -> dict[str, Any]:
    """After the scale-down delay: the old color goes to zero, unless it takes requests again (a
    newer release onto it) or a newer rollout (which holds the lock now) is bringing its own
    release up on it. The rule's weights say which color serves, not the stored live color: a
    release whose record failed after all traffic moved left that one on the old color."""
    app = task.app
    old = app.live_color
    assert old is not None  # run_color_task checked it
    application = app.application
    lock = store.lock(application)
    if lock is not None and lock.rollout_id != task.ref.rollout_id:
        # A newer rollout's release goes to the idle color, this one: it empties the color itself
        # (its own drain) before it brings it up; one that has not chosen yet will.
        newer = store.get(application, lock.rollout_id)
        if newer is None or newer.release_color in (old, None):
            return {"scaled_down": False, "reason": f"rollout {lock.rollout_id} takes {old} over"}
    share = _serving(app, traffic, old)
    if share:
        if store.live_color(application) == old and share == 100:
            return {"scaled_down": False, "reason": f"{old} is live again"}
        return _left_up(task, store, old, f"it still takes {share}% of the requests")
    groups.set_desired(app.live.auto_scaling_group, 0)
    logger.info("old color scaled to zero", extra={"color": old})
    return {"scaled_down": True, "color": old}


def old_color_left_up(task: ColorTask, store: RolloutStore) -> dict[str, Any]:
    """The old color's scale-down ("Scale the old color to zero", or a recovery's) failed after its
    retries, its Catch's error in ``task.error``: the old color keeps its instances. The execution
    still ends as its release did (the build serves all traffic); this pages on-call and says it
    on the rollout's record."""
    assert task.error is not None and task.app.live_color is not None  # ColorTask, run_color_task
    why = parse_cause(task.error.cause) or task.error.error
    return _left_up(task, store, task.app.live_color, f"its scale-down failed ({why})")


def _left_up(task: ColorTask, store: RolloutStore, color: Color, why: str) -> dict[str, Any]:
    """The old color left with its instances after the scale-down delay: counted first (the
    OldColorsLeftUp alarm pages on-call, and the metrics are flushed whatever the record write
    does), then logged and said on the rollout's record, for ``canaryfleet status``."""
    metrics.add_metric(name="OldColorsLeftUp", unit=MetricUnit.Count, value=1)
    group = task.app.live.auto_scaling_group
    reason = (
        f"{color} was not scaled to zero: {why}. Its group {group} keeps its instances until it "
        "is scaled in by hand or the application's next release empties it"
    )
    logger.error("old color left up", extra={"color": color, "group": group, "reason": reason})
    store.record_old_color_left_up(task.ref.application, task.ref.rollout_id, reason)
    return {"scaled_down": False, "color": color, "reason": reason}
