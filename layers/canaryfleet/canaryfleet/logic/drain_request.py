"""An instance is leaving: take it out of its target groups and queue it for the drain document.

Events for instances that no onboarded application owns are ignored with a log line, but for the
platform's termination hook, which holds the instance until answered: that drain runs by the
defaults (a fleet stack being deleted loses its registry entry before its groups). The
first event for an instance starts its drain; any later one (a duplicate delivery, or the
termination hook of an instance whose Spot interruption already started it) joins it. A
Spot interruption of a canary instance while its application rolls out is recorded on the
rollout, so the canary analysis does not take a reclaimed instance for a bad build.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from aws_lambda_powertools.metrics import MetricUnit

from canaryfleet.errors import ConfigurationError, DrainNotReady, UnknownApplication
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.drain import (
    SPOT_BUDGET,
    DrainBudget,
    DrainEvent,
    DrainOrder,
    DrainRecord,
    DrainRequestResult,
    DrainStatus,
    DrainTrigger,
    log_prefix,
    spot_deadline,
)
from canaryfleet.observability import emit_dimensioned, logger, metrics, tracer
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.drains import (
    DrainQueue,
    DrainRegistry,
    DrainStore,
    InstanceDirectory,
    LifecycleHooks,
    RolloutLock,
    TargetGroups,
)

ASG_TAG = "aws:autoscaling:groupName"
FLEET_TAG = "canaryfleet:application"  # fleet/template.yaml tags its instances so at launch
_DEFAULT_DEREGISTRATION_DELAY = 300


@dataclass(frozen=True)
class DrainRequests:
    """What starting a drain touches (built by ``canaryfleet.wiring.drains``)."""

    directory: InstanceDirectory
    registry: DrainRegistry
    store: DrainStore
    rollouts: RolloutLock
    targets: TargetGroups
    queue: DrainQueue
    hooks: LifecycleHooks
    clock: Clock


def _side(app: AppConfig | None, tags: dict[str, str], group: str | None) -> Literal["canary", "live"] | None:
    role = tags.get("role")
    if role == "canary" or (app is not None and group is not None and group == app.canary.auto_scaling_group):
        return "canary"
    if role == "live" or (app is not None and group is not None and group == app.live.auto_scaling_group):
        return "live"
    return None


def _left_alone(app: AppConfig, trigger: DrainTrigger, group: str | None) -> str | None:
    """Why an onboarded application's instance is not drained, if it is not: a rebalance
    recommendation it does not drain on, or a group not its canary or live one (blue/green:
    its two colors)."""
    if trigger is DrainTrigger.REBALANCE and not app.drain_on_rebalance:
        return f"{app.application} does not drain on rebalance recommendations"
    if group is not None and group not in (app.canary.auto_scaling_group, app.live.auto_scaling_group):
        return f"not in {app.application}'s canary or live group ({group})"
    return None


def _ignored(event: DrainEvent, reason: str, application: str | None = None) -> DrainRequestResult:
    logger.info("event ignored", extra={"instance_id": event.instance_id, "reason": reason})
    emit_dimensioned("DrainEventsIgnored", MetricUnit.Count, 1, "trigger", event.trigger.value)
    return DrainRequestResult(
        status="ignored",
        instance_id=event.instance_id,
        application=application,
        trigger=event.trigger,
        reason=reason,
    )


@tracer.capture_method
def request_drain(event: DrainEvent, requests: DrainRequests) -> DrainRequestResult:
    """Start (or join) the drain of the event's instance; see the module docstring."""
    now = requests.clock.now()
    instance_id, trigger, hook = event.instance_id, event.trigger, event.hook
    logger.append_keys(instance_id=instance_id, trigger=trigger.value)
    tags = requests.directory.tags(instance_id)
    # The Spot and rebalance rules match every instance of the account: only the fleet stacks'
    # own, tagged at launch with canaryfleet:application (the tag the platform's roles require
    # to act on an instance), are drained. Another team's Spot worker tagged just "application"
    # is not: its order could never be sent, and, batched with a fleet instance's, IAM would
    # refuse both.
    application = tags.get(FLEET_TAG)
    if not application:
        return _ignored(event, f"no {FLEET_TAG} tag: not an instance of a canaryfleet fleet")
    app: AppConfig | None
    try:
        app = requests.registry.get(application)
    except (UnknownApplication, ConfigurationError) as exc:
        if hook is None and requests.store.find(instance_id) is None:
            return _ignored(event, f"application {application!r} is not onboarded: {exc}", application)
        # The platform's termination hook holds the instance (or its drain is under way: a Spot
        # warning joins it), so its logs are still saved and the hook answered, by the defaults.
        # Deleting a fleet stack does this: CloudFormation deletes the registry entry, whose value
        # names the groups, before the groups ("Resource A is deleted before resource B" when A
        # refers to B: the DependsOn attribute, CloudFormation User Guide), then empties them
        # through their termination hooks.
        logger.warning("draining an instance of an application not onboarded", extra={"reason": str(exc)})
        app = None
    group = hook.auto_scaling_group if hook else tags.get(ASG_TAG)
    if app is not None and (why := _left_alone(app, trigger, group)):
        return _ignored(event, why, application)
    logger.append_keys(application=application)

    side = _side(app, tags, group)
    deadline = spot_deadline(event.root.time) if trigger is DrainTrigger.SPOT else None
    fresh = DrainRecord(
        instance_id=instance_id,
        application=application,
        trigger=trigger,
        side=side,
        status=DrainStatus.REQUESTED,
        log_prefix=log_prefix(application, app.log_prefix if app is not None else None),
        started_at=now,
        notice_at=event.root.time,
        deadline=deadline,
        budget=DrainBudget.for_trigger(trigger),
        hook_name=hook.name if hook else None,
        hook_auto_scaling_group=hook.auto_scaling_group if hook else None,
        hook_token=hook.token if hook else None,
    )
    record = requests.store.begin(fresh)
    joined = record is None
    if record is None:
        record = requests.store.join(application, instance_id, trigger, hook, deadline)
    if record is None:
        # Claimed, but its record was never written (that attempt died between the two): start it.
        owner = requests.store.owner(instance_id)
        if owner != application:
            return _ignored(event, f"the instance's drain belongs to {owner}", application)
        record = requests.store.create(fresh) or requests.store.join(
            application, instance_id, trigger, hook, deadline
        )
        if record is None:
            raise DrainNotReady(f"the drain record of {instance_id} is neither there nor creatable")
        joined = record.started_at != fresh.started_at
    if (
        app is not None
        and trigger is DrainTrigger.SPOT
        and (record.side == "canary" or app.strategy == "blue_green")
    ):
        _record_canary_interruption(requests, app, record, now)

    # A Spot warning joining a drain: the instance goes within two minutes, so logs first
    # (unless its command is already sent).
    if (
        joined
        and trigger is DrainTrigger.SPOT
        and record.budget != SPOT_BUDGET
        and requests.store.use_budget(application, instance_id, SPOT_BUDGET)
    ):
        record = record.model_copy(update={"budget": SPOT_BUDGET})
    if joined and record.status is not DrainStatus.REQUESTED:
        return _join(requests, record, trigger, now)
    # New, or an earlier attempt stopped before it queued the drain: (re)do both steps.
    groups = _deregister(requests.targets, app, record)
    # Recorded before the order is queued: the dispatcher that takes it reads the record.
    in_flight_until = _in_flight_until(requests.targets, record, groups, now)
    requests.store.mark_deregistered(application, instance_id, groups, now, in_flight_until)
    requests.queue.send(
        DrainOrder(
            instance_id=instance_id,
            application=application,
            log_prefix=record.log_prefix,
            trigger=record.trigger,
            budget=record.budget,
            deadline=record.deadline,
            requested_at=record.started_at,
        )
    )
    requests.store.mark_queued(application, instance_id)
    emit_dimensioned("DrainsRequested", MetricUnit.Count, 1, "trigger", trigger.value)
    logger.info("drain queued", extra={"side": record.side, "deregistered_from": groups})
    return DrainRequestResult(
        status="queued", instance_id=instance_id, application=application, trigger=trigger
    )


def _join(
    requests: DrainRequests, record: DrainRecord, trigger: DrainTrigger, now: datetime
) -> DrainRequestResult:
    """A drain is under way (or over): a duplicate changes nothing; a hook rides along."""
    result = DrainRequestResult(
        status="duplicate" if trigger is record.trigger else "joined",
        instance_id=record.instance_id,
        application=record.application,
        trigger=trigger,
    )
    if record.status.final and record.hook is not None and record.hook_completed_at is None:
        # The drain ended before the hook came: the logs are where they will ever be.
        completed = requests.hooks.complete(record.hook, record.instance_id)
        requests.store.mark_hook_completed(record.application, record.instance_id, now)
        if completed:
            metrics.add_metric(name="LifecycleHooksCompleted", unit=MetricUnit.Count, value=1)
        return result.model_copy(update={"reason": f"drain had ended ({record.outcome}); hook completed"})
    logger.info("drain already under way", extra={"status": record.status.value, "result": result.status})
    metrics.add_metric(name="DuplicateDrainEvents", unit=MetricUnit.Count, value=1)
    return result.model_copy(update={"reason": f"drain is {record.status.value}"})


def _deregister(targets: TargetGroups, app: AppConfig | None, record: DrainRecord) -> list[str]:
    """Deregister from the instance's side's target group (both when its side is unknown).

    Without the application's entry its target groups are not known: Auto Scaling deregisters a
    terminating instance from its group's load balancer before the termination hook holds it
    ("How lifecycle hooks work", EC2 Auto Scaling User Guide)."""
    if app is None:
        return []
    if record.side == "canary":
        groups = [app.canary.target_group_arn]
    elif record.side == "live":
        groups = [app.live.target_group_arn]
    else:
        groups = [app.canary.target_group_arn, app.live.target_group_arn]
    return [arn for arn in groups if targets.deregister(arn, record.instance_id)]


def _in_flight_until(
    targets: TargetGroups, record: DrainRecord, groups: list[str], now: datetime
) -> datetime | None:
    """Until when the load balancer may still complete requests in flight to the instance.

    A Spot warning or a rebalance recommendation comes while the instance serves: this drain
    deregistered it just now, and the groups' deregistration delay is still to run; an
    application stopped within it cuts those requests ("If a deregistering target terminates the
    connection before the deregistration delay elapses, the client receives a 500-level error
    response": "Deregistration delay", Application Load Balancers User Guide). A termination
    hook's instance has none left: Auto Scaling deregistered it from its group's load balancer
    and waited for its connections to drain before the hook held it ("How lifecycle hooks work",
    EC2 Auto Scaling User Guide). A delay that cannot be read counts as Elastic Load Balancing's
    default, 300 s (the same page); the document's budget cuts the wait anyway.
    """
    if record.trigger is DrainTrigger.LIFECYCLE or not groups:
        return None
    delays = [targets.deregistration_delay(arn) for arn in groups]
    seconds = max(_DEFAULT_DEREGISTRATION_DELAY if delay is None else delay for delay in delays)
    return now + timedelta(seconds=seconds) if seconds > 0 else None


def _record_canary_interruption(
    requests: DrainRequests, app: AppConfig, record: DrainRecord, now: datetime
) -> None:
    """A Spot interruption of an instance that carries the running rollout's build is recorded on
    the rollout, so the analysis does not take a reclaimed instance for a bad build. In place that
    is the canary group; blue/green, the color the release is on (either group: blue is the
    stack's live group, green its canary group), never the color that serves."""
    lock = requests.rollouts.lock(record.application)
    if lock is None:
        return
    rollout_id = lock.rollout_id
    if app.strategy == "blue_green":
        rollout = requests.rollouts.get(record.application, rollout_id)
        color = {"canary": "green", "live": "blue"}.get(record.side or "")
        if rollout is None or color is None or rollout.release_color != color:
            return
    if requests.store.record_canary_interruption(record.application, rollout_id, record.instance_id, now):
        requests.store.mark_canary_interruption(record.application, record.instance_id, rollout_id)
        metrics.add_metric(name="CanarySpotInterruptions", unit=MetricUnit.Count, value=1)
        logger.warning("canary instance interrupted during a rollout", extra={"rollout_id": rollout_id})
