"""The canary stages: health, traffic, bake and analysis."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from canaryfleet.errors import Aborted, AnalysisFailed, CanaryNotHealthyYet, TrafficNotShifted
from canaryfleet.logic.alarms import firing_alarm
from canaryfleet.logic.analysis.collect import collect
from canaryfleet.logic.analysis.failfast import critical_alarms
from canaryfleet.logic.analysis.judge import judge
from canaryfleet.logic.record_stage import record_stage
from canaryfleet.models.analysis import AnalysisSamples
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.chart import BakeSamples
from canaryfleet.models.fail_fast import alarm_prefix, metric_of
from canaryfleet.models.policy import LONGEST_FINE_BAKE_SECONDS, AnalysisSpec
from canaryfleet.models.rollout import RecordStageRequest, RolloutRef, Stage, Verdict
from canaryfleet.models.rollout_record import AbortRequest, AuditEntry, RolloutRecord, Wait
from canaryfleet.models.tasks import AlarmCheckTask, AnalyseTask, BakeTask, ShiftTask
from canaryfleet.observability import logger, tracer
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.fleet import AppRegistry, FleetMetrics, TrafficWeights
from canaryfleet.ports.notifier import Notifier
from canaryfleet.ports.rollouts import RolloutRecords, RolloutStore
from canaryfleet.ports.workflow import Callbacks, EndedApprovals

# How far apart CloudWatch's clock and the functions' may be taken to be (both AWS's, kept in
# step by its time service): an alarm change this close before the canary's traffic counts.
_CLOCK_MARGIN = timedelta(seconds=5)


def verify_canary(app: AppConfig, traffic: TrafficWeights) -> dict[str, int]:
    """Every canary target healthy, or CanaryNotHealthyYet (the state machine retries, then rolls back)."""
    health = traffic.target_health(app.canary)
    unhealthy = sorted(target for target, state in health.items() if state != "healthy")
    if health and not unhealthy:
        return {"healthy": len(health)}
    if not health:
        message = f"no instance is registered in the canary target group of {app.application}"
    else:
        message = f"canary targets not healthy: {', '.join(f'{t} ({health[t]})' for t in unhealthy)}"
    raise CanaryNotHealthyYet(message)


@tracer.capture_method
def shift_traffic(
    task: ShiftTask,
    traffic: TrafficWeights,
    store: RolloutRecords,
    notifier: Notifier | None,
    clock: Clock,
) -> dict[str, int]:
    """Set canary to the task's weight (live the rest), read it back, log it, and notify it if asked.

    A shift that gives the build traffic (a canary step's, blue/green's move of all traffic to
    the release color) raises Aborted once an abort is recorded: one asked for while no wait was
    open would otherwise be read by no wait before the build took the traffic. A shift back to
    live (weight 0: the rollback's, the final one) always goes through.
    """
    app, ref, weight, seq = task.app, task.ref, task.weight, task.seq
    if weight > 0:
        refuse_if_aborted(ref, store)
    weights = traffic.set_canary_weight(app, weight)
    expected = {app.live.target_group_arn: 100 - weight, app.canary.target_group_arn: weight}
    if weights != expected:
        raise TrafficNotShifted(f"weights read back {weights} differ from {expected}")
    now = clock.now()
    store.log_weight(ref.application, ref.rollout_id, seq, weight, now)
    logger.info("traffic shifted", extra={"canary_weight": weight, "seq": seq})
    result = {"canary": weight, "live": 100 - weight}
    if notifier is not None:
        colors = {"live_color": app.live_color, "release_color": app.release_color} if app.live_color else {}
        detail = {**result, "seq": seq, **colors}
        _stage(store, notifier, ref, Stage.TRAFFIC_SHIFTED, now, detail, task.step)
    return result


def _stage(
    store: RolloutRecords,
    notifier: Notifier,
    ref: RolloutRef,
    stage: Stage,
    at: datetime,
    detail: dict[str, Any],
    step: int | None,
    extension: int = 0,
) -> None:
    """Record and notify a stage met at each canary step, once per ``step`` (and a verdict once
    per extension of the step's bake)."""
    request = RecordStageRequest(ref=ref, stage=stage, at=at, detail=detail, step=step, extension=extension)
    record_stage(request, store, notifier)


def abort_cause(abort: AbortRequest) -> str:
    """The cause an abort ends the rollout with, at a wait or before a step: who asked, and why."""
    return f"aborted by {abort.by}: {abort.reason}"


def refuse_if_aborted(ref: RolloutRef, store: RolloutRecords) -> None:
    """Aborted, with the abort's cause, if on-call asked to abort the rollout.

    For the steps that take the build further with no wait open to end: an abort that
    ``decide`` answered "recorded" ends the rollout there, as it ends the next wait, and the
    state machine's Catch rolls it back with the same reason.
    """
    abort = store.abort_requested(ref.application, ref.rollout_id)
    if abort is not None:
        logger.warning("aborted before the build went further", extra={"by": abort.by})
        raise Aborted(abort_cause(abort))


def begin_wait(
    wait: Wait,
    ref: RolloutRef,
    store: RolloutRecords,
    callbacks: Callbacks,
    honour_promote: bool = True,
) -> str:
    """Store the token of a wait; honour an abort or promote already asked for.

    Returns what happened: "waiting", "aborted" or "promoted".
    """
    record = store.set_wait(ref.application, ref.rollout_id, wait)
    if record.abort_requested is not None:
        abort = record.abort_requested
        callbacks.fail(wait.token, "Aborted", abort_cause(abort))
        return "aborted"
    if honour_promote and record.promoted_by:
        callbacks.succeed(wait.token, {"promoted": True, "by": record.promoted_by})
        return "promoted"
    return "waiting"


def begin_bake(
    task: BakeTask,
    store: RolloutRecords,
    metrics: FleetMetrics,
    callbacks: Callbacks,
    clock: Clock,
) -> str:
    """Start a bake; an alarm already firing ends it at once (an event may have come before).

    The analysis's critical metrics get their fail-fast alarms first, fresh: a new alarm starts in
    INSUFFICIENT_DATA, where one replaced by PutMetricAlarm would keep an old bake's state.
    """
    app, token = task.app, task.token
    # Before the alarms are put: a state change they make is never older than the bake.
    now = clock.now()
    critical = put_critical_alarms(app, task.analysis, metrics) if task.analysis is not None else {}
    window_start = _window_start(task, store, now)
    wait = Wait(kind="bake", token=token, started_at=now, bake_started_at=window_start)
    outcome = begin_wait(wait, task.ref, store, callbacks)
    if outcome != "waiting":
        return outcome
    # One that fired before the wait was stored found no token to fail: it is in ALARM now.
    firing = firing_alarm(app, critical, metrics)
    if firing is not None:
        callbacks.fail(token, type(firing).__name__, str(firing))
        return "alarm"
    return "waiting"


def _window_start(task: BakeTask, store: RolloutRecords, now: datetime) -> datetime:
    """Where the analysis after this bake starts reading.

    A step's bake starts its own window. An extension, which follows an inconclusive verdict
    (too few requests, too few intervals for a rank test), continues the window of the bake it
    extends, so its analysis judges the whole bake with the data it lacked: a window of the
    extension alone would be as short as the one that was inconclusive. An extension after a
    canary instance was interrupted starts afresh: the data since the bake began include the
    reclaimed instance, which made the verdict inconclusive and would again.
    """
    if task.extension == 0:
        return now
    record = store.get(task.ref.application, task.ref.rollout_id)
    started = record.bake_started_at if record is not None else None
    if record is None or started is None or started > now:
        return now
    if any(i.at >= started for i in record.canary_interruptions):
        return now
    return started


def check_alarms(task: AlarmCheckTask, metrics: FleetMetrics) -> dict[str, str]:
    """A bake's timer ran out, or the build is about to go live: an alarm in ALARM now rolls back,
    as its event would have.

    A bake (or a later wait) ends early when an alarm's state-change event reaches
    ``alarm_event``. That event may come late (EventBridge retries an unreachable target for up
    to 24 hours, "How EventBridge retries delivering events") or, for a service that sends its
    events on a best-effort basis, never ("Delivery level for AWS service events"), and
    ``alarm_event`` itself may be throttled or retried: the event of an alarm that fires near the
    end of a wait can come after it (it then finds the wait over) or not at all. Like every other
    wait's timeout, these read the real state once: after a bake, the canary's alarms and the
    bake's fail-fast alarms (before the analysis, which deletes those); before going live, the
    canary's alarms. Raises CanaryAlarm or CriticalMetricFailed.
    """
    app = task.app
    critical = (
        {alarm.name: alarm.metric for alarm in critical_alarms(app, task.analysis)[0]}
        if task.analysis is not None
        else {}
    )
    firing = firing_alarm(app, critical, metrics)
    if firing is not None:
        logger.warning("alarm in ALARM when the wait ran out", extra={"error": str(firing)})
        raise firing
    return {"alarms": "none in ALARM"}


def put_critical_alarms(app: AppConfig, spec: AnalysisSpec, metrics: FleetMetrics) -> dict[str, str]:
    """Replace the application's fail-fast alarms with one per critical metric of ``spec``.

    Returns each alarm's metric, by alarm name.
    """
    delete_critical_alarms(app.application, metrics)
    alarms, skipped = critical_alarms(app, spec)
    for alarm in alarms:
        metrics.put_alarm(alarm)
    if skipped:
        logger.warning("critical metrics without a fail-fast alarm", extra={"metrics": skipped})
    return {a.name: a.metric for a in alarms}


def delete_critical_alarms(application: str, metrics: FleetMetrics) -> list[str]:
    """Delete the application's fail-fast alarms (none is fine: every caller may be a retry)."""
    deleted = metrics.delete_alarms(alarm_prefix(application))
    if deleted:
        logger.info("fail-fast alarms deleted", extra={"alarms": deleted})
    return deleted


def on_alarm(
    alarm_name: str,
    state: dict[str, str],
    registry: AppRegistry,
    store: RolloutStore,
    callbacks: Callbacks,
    clock: Clock,
    description: str = "",
    ended_approvals: EndedApprovals | None = None,
) -> str:
    """A canary alarm went to ALARM: end the bake, or a later wait, of the running rollout.

    A critical metric's fail-fast alarm (``description``: the metric's name, as the alarm holds
    it) ends the bake with that metric named; one whose state changed before the bake started
    belongs to an earlier bake and is ignored. While the rollout waits for its approval, or for
    the calendar to let it go live, the canary still takes its share of the traffic, so a canary
    alarm then rolls it back rather than leave it serving until someone answers or the window
    opens (an approval closes: a later click is told the rollout no longer waits for it, and
    ``ended_approvals`` settles it at once, its Slack buttons replaced by why it ended).
    """
    reason = state.get("reason", "")
    owner = registry.owner_of_alarm(alarm_name) if state.get("value") == "ALARM" else None
    if owner is None:
        return "ignored: not ALARM" if state.get("value") != "ALARM" else "not a canaryfleet alarm"
    app, side = owner
    lock = store.lock(app.application)
    if lock is None:
        return "no rollout running"
    rollout_id = lock.rollout_id
    record = store.get(app.application, rollout_id)
    metric = metric_of(alarm_name, app.application)
    if app.strategy == "blue_green" and metric is None:
        side = _side_of_color(side, record)
    if side == "canary" and metric is None and _before_the_canary_served(state, record):
        logger.info(
            "canary alarm state from before this rollout's canary took traffic",
            extra={"alarm": alarm_name, "state_changed_at": state.get("timestamp")},
        )
        return "canary alarm from before the canary took traffic"
    store.append_audit(
        app.application,
        rollout_id,
        AuditEntry(kind="alarm", alarm=alarm_name, side=side, at=clock.now()),
    )
    if side != "canary":
        return "live alarm recorded"
    after_the_bake = _wait_after_the_bake(record) if metric is None else None
    if after_the_bake is not None:
        kind, token, doing = after_the_bake
        cause = f"canary alarm {alarm_name} went to ALARM while {doing}: {reason}"
        ended = callbacks.fail(token, "CanaryAlarm", cause)
        if ended:  # a later click on the approval is told the rollout no longer waits for it
            store.clear_wait(app.application, rollout_id, token)
            if kind == "approval" and record is not None and record.approval_id:
                settle_soon(record.approval_id, ended_approvals, "an alarm")
        return f"{kind} ended" if ended else f"{kind} had already ended"
    return _end_bake(alarm_name, metric, description, state, record, callbacks)


def settle_soon(approval_id: str, ended_approvals: EndedApprovals | None, ended_by: str) -> None:
    """Settle an approval the rollout stopped waiting for (``ended_by`` ended the wait) now rather
    than at its expiry (up to its timeout away): its Slack buttons give way to why it ended.

    The rollout already rolls back, so a failure here is only logged: the expiry settles it then.
    """
    if ended_approvals is None:
        return
    try:
        ended_approvals.settle_now(approval_id)
    except (BotoCoreError, ClientError) as exc:
        logger.warning(
            "approval no longer waited for not settled now; its expiry will",
            extra={"approval_id": approval_id, "ended_by": ended_by, "error": str(exc)},
        )


def _before_the_canary_served(state: dict[str, str], record: RolloutRecord | None) -> bool:
    """The alarm's state changed before this rollout's canary took its first share of traffic.

    EventBridge delivers an event at least once, and retries one it could not deliver for up to
    24 hours ("How EventBridge retries delivering events"): an alarm that fired in an earlier
    rollout, or while this one's canary was being deployed, can reach ``alarm_event`` now. It is
    not about this canary: each wait reads the canary's alarms when it begins, after the canary
    took traffic, and would have ended at once on one still in ALARM. A change from the canary's
    own traffic, however late its event comes, still ends the wait it finds. CloudWatch stamps the
    change with its clock and the rollout its stages with the functions': one within
    ``_CLOCK_MARGIN`` before the traffic is taken for the canary's own.
    """
    served = record.stage_at(Stage.TRAFFIC_SHIFTED) if record is not None else None
    return _changed_before(state, served - _CLOCK_MARGIN if served is not None else None)


def _wait_after_the_bake(record: RolloutRecord | None) -> tuple[str, str, str] | None:
    """The wait a canary alarm ends once the bakes are over: (kind, token, what it was doing).

    The approval wait, and the wait for the calendar before going live: the canary keeps its
    share of the traffic through both, for hours if need be. A wait for the calendar before the
    canary is none of these: the canary takes no traffic yet.
    """
    if record is None:
        return None
    approval = record.waits_with("approval")
    if approval is not None:
        return "approval", approval, "awaiting approval"
    window = record.waits_with("window")
    live = record.window_waits.get("live")
    if window is not None and live is not None and not live.ended:
        return "window", window, "waiting for the calendar to go live"
    return None


def _end_bake(
    alarm_name: str,
    metric: str | None,
    description: str,
    state: dict[str, str],
    record: RolloutRecord | None,
    callbacks: Callbacks,
) -> str:
    """A canary alarm ends the bake in progress (``metric``: a fail-fast alarm's, else None)."""
    token = record.waits_with("bake") if record is not None else None
    if token is None:
        # Not in a bake or an approval yet: each checks alarm states when it starts.
        return "recorded; not baking"
    if metric is not None:
        return _fail_fast(alarm_name, description or metric, state, record, token, callbacks)
    reason = state.get("reason", "")
    ended = callbacks.fail(token, "CanaryAlarm", f"canary alarm {alarm_name} went to ALARM: {reason}")
    return "bake ended" if ended else "bake had already ended"


def _side_of_color(registry_side: str, record: RolloutRecord | None) -> str:
    """Blue/green: a color's alarm is the canary's while that color carries the running release.

    The registry names the colors by the stack's groups: blue is its live group, green its canary.
    """
    color = "blue" if registry_side == "live" else "green"
    return "canary" if record is not None and record.release_color == color else "live"


def _fail_fast(
    alarm_name: str,
    metric: str,
    state: dict[str, str],
    record: RolloutRecord | None,
    token: str,
    callbacks: Callbacks,
) -> str:
    """A critical metric's alarm ends the bake, unless its state changed before the bake began.

    The bake's own start (its wait's), not its analysis window's: an extension's window continues
    the bake it extends, whose alarms were deleted by the analysis and put afresh for it.
    """
    if _changed_before(state, record.wait_started_at if record is not None else None):
        return "fail-fast alarm of an earlier bake"
    cause = f"critical metric {metric} failed during the bake: {alarm_name}: {state.get('reason', '')}"
    ended = callbacks.fail(token, "CriticalMetricFailed", cause)
    return "bake ended" if ended else "bake had already ended"


def _changed_before(state: dict[str, str], at: datetime | None) -> bool:
    """The alarm's state changed (its ``timestamp``) before ``at``; False when either is unknown."""
    changed = _parse_time(state.get("timestamp", ""))
    return changed is not None and at is not None and changed < at


def _parse_time(text: str) -> datetime | None:
    """An alarm state's timestamp (ISO 8601; CloudWatch writes ``+0000`` for UTC)."""
    try:
        parsed = datetime.fromisoformat(text.replace("+0000", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def on_alarm_event(
    *,
    event: dict[str, str],
    alarm_name: str,
    state: dict[str, str],
    registry: AppRegistry,
    store: RolloutStore,
    callbacks: Callbacks,
    clock: Clock,
    ended_approvals: EndedApprovals,
    description: str = "",
) -> dict[str, str]:
    """:func:`on_alarm` for one EventBridge event; ``event`` holds its id, what a repeat shares."""
    result = on_alarm(alarm_name, state, registry, store, callbacks, clock, description, ended_approvals)
    return {"result": result}


def analysis_window(
    bake_started_at: datetime | None, now: datetime, metrics_delay_seconds: int, interval_seconds: int = 60
) -> tuple[datetime, datetime]:
    """The span of metrics an analysis judges: from the bake's start to the last complete minute.

    With a delay, the window ends at the last whole minute before ``now - delay``: later minutes
    have not all reached CloudWatch, and counting them would under-count the canary's last
    minute. With no delay (metrics complete at once) it ends now. It never ends before it starts.
    Sampled under a minute, it begins no earlier than CloudWatch still keeps such data (an upload
    whose bake is longer is refused; this is for an analysis that ran late, after retries).
    """
    if metrics_delay_seconds:
        end = (now - timedelta(seconds=metrics_delay_seconds)).replace(second=0, microsecond=0)
    else:
        end = now
    start = bake_started_at or end - timedelta(minutes=10)
    if interval_seconds < 60:
        start = max(start, now - timedelta(seconds=LONGEST_FINE_BAKE_SECONDS))
    return start, max(start, end)


@tracer.capture_method
def analyse(
    task: AnalyseTask,
    store: RolloutRecords,
    metrics: FleetMetrics,
    notifier: Notifier,
    clock: Clock,
) -> Verdict:
    """Judge canary against live over the bake just ended, record and notify the verdict.

    Raises AnalysisFailed on fail (the state machine rolls back).
    """
    app, ref, spec = task.app, task.ref, task.analysis
    # The bake is over: its fail-fast alarms go before the verdict (a failing one must not end
    # the next step's wait).
    delete_critical_alarms(app.application, metrics)
    record = store.get(ref.application, ref.rollout_id)
    now = clock.now()
    started = record.bake_started_at if record is not None else None
    start, end = analysis_window(started, now, spec.metrics_delay_seconds, spec.interval_seconds)
    samples, intervals = collect(app, spec, metrics, start, end)
    judged = judge(samples)
    result, reasons = judged.result, list(judged.reasons)
    if not intervals:
        reasons = [f"no {spec.interval_seconds}-second interval in the window yet", *reasons]
    interrupted = [
        i for i in (record.canary_interruptions if record is not None else []) if start <= i.at <= end
    ]
    if interrupted and result == "fail":
        # A reclaimed Spot instance is not a bad build: ask again rather than fail it.
        result = "inconclusive"
        reasons = [f"{len(interrupted)} canary instance(s) were interrupted during the bake", *reasons]
    canary, live = _load_balancer_totals(samples)
    canary_requests, live_requests = canary["requests"] or 0.0, live["requests"] or 0.0
    verdict = Verdict(
        result=result,
        reasons=reasons,
        canary_requests=canary_requests,
        canary_errors=canary["errors"] or 0.0,
        canary_error_rate=(canary["errors"] or 0.0) / canary_requests if canary_requests else 0.0,
        canary_latency=canary["latency"],
        live_requests=live_requests,
        live_errors=live["errors"] or 0.0,
        live_error_rate=(live["errors"] or 0.0) / live_requests if live_requests else 0.0,
        live_latency=live["latency"],
        window_start=intervals[0] if intervals else start,
        window_end=intervals[-1] + timedelta(seconds=spec.interval_seconds) if intervals else end,
        samples=BakeSamples(
            canary=metrics.samples(app, app.canary, start, end),
            live=metrics.samples(app, app.live, start, end),
        ),
        alarms=metrics.alarm_thresholds(app.canary.alarms),
        score=judged.score,
        alpha=judged.alpha,
        metrics=list(judged.metrics),
    )
    store.record_verdict(ref.application, ref.rollout_id, verdict)
    _stage(
        store, notifier, ref, Stage.VERDICT, now, verdict.model_dump(mode="json"), task.step, task.extension
    )
    logger.info("canary analysed", extra={"verdict": verdict.result, "reasons": verdict.reasons})
    if verdict.result == "fail":
        raise AnalysisFailed("analysis failed: " + "; ".join(verdict.reasons))
    return verdict


def _load_balancer_totals(
    samples: AnalysisSamples,
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """The window's requests, 5xx and mean latency per side, as the verdict has always shown them."""
    by_name = {m.name: m for m in samples.metrics}
    sides: list[dict[str, float | None]] = []
    for index in (0, 1):
        totals: dict[str, float | None] = {"requests": 0.0, "errors": 0.0, "latency": None}
        rate = by_name.get("5xx rate")
        if rate is not None and rate.canary_counts is not None and rate.live_counts is not None:
            values, counts = (
                (rate.canary, rate.canary_counts) if index == 0 else (rate.live, rate.live_counts)
            )
            rows = [(v, c) for v, c in zip(values, counts, strict=True) if v is not None and c is not None]
            totals["requests"] = sum(c for _, c in rows)
            totals["errors"] = sum(v * c for v, c in rows)
        latency = by_name.get("latency")
        if latency is not None:
            present = [v for v in (latency.canary if index == 0 else latency.live) if v is not None]
            totals["latency"] = sum(present) / len(present) if present else None
        sides.append(totals)
    return sides[0], sides[1]
