"""An extended bake: its analysis judges the whole bake, not the extension alone.

An inconclusive verdict (too few requests, too few intervals for the rank test) extends the
bake; a window of the extension alone would be as short as the one that was inconclusive.
"""

from __future__ import annotations

from datetime import timedelta

from canaryfleet.logic.canary import analyse, begin_bake, on_alarm
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.policy import AnalysisSpec
from canaryfleet.models.rollout import RolloutRef
from canaryfleet.models.rollout_record import CanaryInterruption
from canaryfleet.models.tasks import AnalyseTask, BakeTask
from canaryfleet.ports.clock import FixedClock

from tests.unit.fakes import (
    T0,
    AppsRegistry,
    FakeAlarms,
    InMemoryRolloutStore,
    RecordingCallbacks,
    RecordingNotifier,
    a_rollout,
    an_app,
    hold_lock,
)

APP = "payments-api"
ROLLOUT_ID = "payments-api-2_7_0-5e0c2c7a41d2b7b3b1f04a6d"
REF = RolloutRef(application=APP, rollout_id=ROLLOUT_ID, version="2.7.0")
SPEC = AnalysisSpec(metrics_delay_seconds=0)


def _app() -> AppConfig:
    return an_app(APP)


def _bake(store: InMemoryRolloutStore, clock: FixedClock, extension: int = 0, token: str = "t") -> None:
    task = BakeTask(token=token, app=_app(), ref=REF, analysis=SPEC, extension=extension)
    begin_bake(task, store, FakeAlarms(), RecordingCallbacks(), clock)


def _store(clock: FixedClock) -> InMemoryRolloutStore:
    store = InMemoryRolloutStore(clock)
    a_rollout(store)
    hold_lock(store, REF)
    return store


def test_an_extension_continues_the_window_of_the_bake_it_extends(clock: FixedClock) -> None:
    store = _store(clock)
    _bake(store, clock)
    clock.advance(300)

    _bake(store, clock, extension=1, token="t2")

    record = store.get(APP, ROLLOUT_ID)
    assert record is not None
    assert record.bake_started_at == T0  # the analysis reads the whole bake
    assert record.wait_started_at == T0 + timedelta(seconds=300)  # the extension's own wait


def test_the_analysis_after_an_extension_reads_from_the_bakes_start(clock: FixedClock) -> None:
    store = _store(clock)
    _bake(store, clock)
    clock.advance(300)
    _bake(store, clock, extension=1, token="t2")
    clock.advance(300)

    task = AnalyseTask(app=_app(), ref=REF, analysis=SPEC, step=1)
    verdict = analyse(task, store, FakeAlarms(), RecordingNotifier(), clock)

    assert verdict.window_start == T0
    assert verdict.window_end == T0 + timedelta(seconds=600)


def test_a_steps_own_bake_starts_a_window_of_its_own(clock: FixedClock) -> None:
    store = _store(clock)
    _bake(store, clock)
    clock.advance(300)

    _bake(store, clock, token="t2")  # the next canary step's bake, at another weight

    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.bake_started_at == T0 + timedelta(seconds=300)


def test_an_extension_after_a_canary_instance_was_reclaimed_starts_afresh(clock: FixedClock) -> None:
    # Given a bake during which EC2 reclaimed the canary's Spot instance (the drain records it)
    store = _store(clock)
    _bake(store, clock)
    reclaimed = CanaryInterruption(instance="i-0123456789abcdef0", at=T0 + timedelta(seconds=100))
    store._change(APP, ROLLOUT_ID, canary_interruptions=[reclaimed])
    clock.advance(300)

    # When the inconclusive verdict extends the bake
    _bake(store, clock, extension=1, token="t2")

    # Then the extension's window leaves out the data of the reclaimed instance's bake
    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.bake_started_at == T0 + timedelta(seconds=300)


def test_an_interruption_before_the_bake_does_not_restart_its_extension(clock: FixedClock) -> None:
    store = _store(clock)
    earlier = CanaryInterruption(instance="i-0123456789abcdef0", at=T0 - timedelta(seconds=100))
    store._change(APP, ROLLOUT_ID, canary_interruptions=[earlier])
    _bake(store, clock)
    clock.advance(300)

    _bake(store, clock, extension=1, token="t2")

    record = store.get(APP, ROLLOUT_ID)
    assert record is not None and record.bake_started_at == T0


def test_a_fail_fast_alarm_of_the_bake_before_its_extension_does_not_end_the_extension(
    clock: FixedClock,
) -> None:
    # Given an extension whose window began with the bake it extends: that bake's alarms were
    # deleted by the analysis and put afresh for the extension
    store = _store(clock)
    _bake(store, clock)
    clock.advance(300)
    _bake(store, clock, extension=1, token="t2")
    callbacks = RecordingCallbacks()
    stale = {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "2026-11-26T10:02:00.000+0000"}

    # When the deleted alarm's late event arrives (its state changed during the first bake)
    result = on_alarm(
        "canaryfleet-payments-api.payment-success",
        stale,
        AppsRegistry(_app()),
        store,
        callbacks,
        clock,
        "payment success",
    )

    # Then it is an earlier bake's: the extension goes on
    assert result == "fail-fast alarm of an earlier bake" and callbacks.failed == {}


def test_the_verdict_after_an_extension_is_told_besides_the_bakes(clock: FixedClock) -> None:
    store, notifier = _store(clock), RecordingNotifier()
    _bake(store, clock)
    clock.advance(300)
    analyse(AnalyseTask(app=_app(), ref=REF, analysis=SPEC, step=1), store, FakeAlarms(), notifier, clock)
    _bake(store, clock, extension=1, token="t2")
    clock.advance(300)

    task = AnalyseTask(app=_app(), ref=REF, analysis=SPEC, step=1, extension=1)
    analyse(task, store, FakeAlarms(), notifier, clock)

    told = [(m["step"], m.get("extension")) for kind, _, m in notifier.sent if kind == "rollout.verdict"]
    assert told == [(1, None), (1, 1)]
