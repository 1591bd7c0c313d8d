"""A rollout's guarded steps waiting for the calendar: check, hold, wake-ups, overrides, aborts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from canaryfleet.api.timeline_page import calendar_rows
from canaryfleet.logic.decisions import decide
from canaryfleet.logic.notify_messages import reply_blocks, summary_email
from canaryfleet.logic.window import announce_override, check_window, hold_for_window, wake_window_waits
from canaryfleet.models.calendar import Freeze, WindowCheck, WindowCheckTask, WindowHoldTask
from canaryfleet.models.decision import Decision
from canaryfleet.models.notification import Notice
from canaryfleet.models.policy import DeploymentWindow
from canaryfleet.models.rollout import RolloutRef, WindowPlan
from canaryfleet.models.rollout_record import AbortRequest, LockRecord, WindowWait
from canaryfleet.ports.clock import FixedClock
from pydantic import ValidationError

from tests.unit.fakes import (
    FakeAlarms,
    InMemoryFreezeCalendar,
    InMemoryRolloutStore,
    RecordingCallbacks,
    RecordingNotifier,
    a_rollout,
    an_app,
)

SIX_AM = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
DAYTIME = WindowPlan(windows=(DeploymentWindow(start=time(9), end=time(17)),))
TOKEN = "AQCEAAAA-window-token"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(SIX_AM)


@pytest.fixture
def store(clock: FixedClock) -> InMemoryRolloutStore:
    return InMemoryRolloutStore(clock)


@pytest.fixture
def ref(store: InMemoryRolloutStore) -> RolloutRef:
    record = a_rollout(store)
    store.locks[record.application] = LockRecord(owner="arn:execution", rollout_id=record.rollout_id)
    return record.ref


def check(ref: RolloutRef, guard: str = "canary", plan: WindowPlan = DAYTIME) -> WindowCheckTask:
    return WindowCheckTask(ref=ref, guard=guard, window=plan)  # type: ignore[arg-type]


def hold(ref: RolloutRef, until: datetime, plan: WindowPlan = DAYTIME) -> WindowHoldTask:
    return WindowHoldTask(token=TOKEN, ref=ref, guard="canary", window=plan, until=until)


def _freeze(clock: FixedClock, freeze_id: str, reason: str, end: datetime) -> Freeze:
    """A freeze on-call declares now, until ``end``."""
    return Freeze(
        freeze_id=freeze_id,
        start=clock.now(),
        end=end,
        reason=reason,
        declared_by="oncall@example.com",
        declared_at=clock.now(),
    )


def released(ref: RolloutRef) -> Notice:
    """The rollout's outcome notice, released at 13:00 UTC."""
    body = {"rollout_id": ref.rollout_id, "application": ref.application, "version": "2.7.0"}
    return Notice(
        kind="rollout.released",
        application=ref.application,
        body=body,
        message_id="m-1",
        published_at=SIX_AM + timedelta(hours=7),
    )


def test_outside_the_window_the_check_says_until_when_and_the_wait_is_recorded(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    said = check_window(check(ref), store, InMemoryFreezeCalendar(), clock)

    assert (said.open, said.until, said.wait_seconds) == (False, SIX_AM.replace(hour=9).isoformat(), 3 * 3600)
    wait = store.records[(ref.application, ref.rollout_id)].window_waits["canary"]
    assert (wait.started, wait.until, wait.ended) == (SIX_AM, SIX_AM.replace(hour=9), False)


def _waited_for_the_window(
    ref: RolloutRef, store: InMemoryRolloutStore, calendar: InMemoryFreezeCalendar, clock: FixedClock
) -> WindowCheck:
    """The canary checked at 6:00 (it waits for the 9:00 window), then again at 9:00: the second check."""
    check_window(check(ref), store, calendar, clock)
    clock.advance(3 * 3600)
    return check_window(check(ref), store, calendar, clock)


def test_when_the_window_opens_the_check_lets_the_step_run_and_closes_the_wait(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    said = _waited_for_the_window(ref, store, InMemoryFreezeCalendar(), clock)

    assert said.open is True
    wait = store.records[(ref.application, ref.rollout_id)].window_waits["canary"]
    assert (wait.started, wait.until, wait.ended) == (SIX_AM, SIX_AM.replace(hour=9), True)


def test_a_guard_checked_at_two_steps_keeps_both_of_its_waits(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    # Given blue/green's canary guard: it waited for the window before the colors were chosen
    calendar = InMemoryFreezeCalendar()
    assert _waited_for_the_window(ref, store, calendar, clock).open is True
    # When a freeze is declared while the release color comes up, and the canary's deployment is
    # checked against the calendar (the same guard) twice while it holds
    clock.advance(600)
    calendar.declare(
        _freeze(clock, "incident-4711", "card network incident", clock.now() + timedelta(hours=1))
    )
    check_window(check(ref), store, calendar, clock)
    clock.advance(60)
    check_window(check(ref), store, calendar, clock)

    # Then the record keeps the first wait, ended, beside the second, which began at its own time
    record = store.records[(ref.application, ref.rollout_id)]
    waits = [(w.started, w.ended, w.kind) for w in record.calendar_waits()]
    nine, freeze_start = SIX_AM.replace(hour=9), SIX_AM.replace(hour=9, minute=10)
    assert waits == [(SIX_AM, True, "window"), (freeze_start, False, "freeze")]
    assert record.calendar_waits()[0].until == nine
    # And when the freeze ends, the second wait is the one that ends
    clock.advance(3600)
    assert check_window(check(ref), store, calendar, clock).open is True
    record = store.records[(ref.application, ref.rollout_id)]
    assert [w.ended for w in record.calendar_waits()] == [True, True]
    assert record.calendar_waits()[0].until == nine


def test_a_step_the_policy_does_not_guard_runs_at_any_time(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    plan = DAYTIME.model_copy(update={"guards": ("live",)})

    assert check_window(check(ref, "canary", plan), store, InMemoryFreezeCalendar(), clock).open is True


def test_a_freeze_declared_during_the_bake_holds_going_live(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    clock.advance(4 * 3600)  # 10:00, inside the window: the canary started and is baking
    assert check_window(check(ref), store, InMemoryFreezeCalendar(), clock).open is True
    freeze = _freeze(clock, "sale-day", "sale day", clock.now() + timedelta(hours=2))

    said = check_window(check(ref, "live"), store, InMemoryFreezeCalendar(freeze), clock)

    assert (said.open, said.until) == (False, freeze.end.isoformat())
    assert "sale day" in said.reason


def test_a_freeze_ending_at_an_offset_is_waited_for_and_summed_up_in_utc(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    # Given a freeze the operator declared to end at 18:00 India time (12:30 UTC)
    india = timezone(timedelta(hours=5, minutes=30))
    freeze = _freeze(clock, "sale-day", "sale day", datetime(2026, 12, 2, 18, 0, tzinfo=india))

    # When the check holds the canary for it, and the rollout ends
    said = check_window(check(ref), store, InMemoryFreezeCalendar(freeze), clock)
    record = store.get(ref.application, ref.rollout_id)
    _, email = summary_email(released(ref), record)

    # Then the wait and the summary say 12:30 UTC
    assert said.until == "2026-12-02T12:30:00+00:00"
    assert record is not None and record.window_waits["canary"].until.isoformat() == said.until
    assert "2026-12-02 06:00:00 UTC to 2026-12-02 12:30:00 UTC" in email
    assert "18:00" not in email


def test_a_wait_stored_with_an_offset_is_summed_up_in_utc(
    ref: RolloutRef, store: InMemoryRolloutStore
) -> None:
    # Given a wait stored before holds were kept in UTC, with the freeze's end as the operator typed it
    india = timezone(timedelta(hours=5, minutes=30))
    until = datetime(2026, 12, 2, 18, 0, tzinfo=india)
    wait = WindowWait(guard="canary", started=SIX_AM, until=until, reason="freeze sale-day", kind="freeze")
    store.set_window_waits(ref.application, ref.rollout_id, {"canary": wait})

    # When the outcome's email is written
    _, email = summary_email(released(ref), store.get(ref.application, ref.rollout_id))

    # Then it says the instant the freeze ended, in UTC
    assert (
        "Waited for the calendar before the canary: 2026-12-02 06:00:00 UTC to 2026-12-02 12:30:00 UTC"
        in email
    )


def test_a_freeze_reason_on_several_lines_stays_on_the_line_that_quotes_it(
    ref: RolloutRef, store: InMemoryRolloutStore
) -> None:
    # Given a wait for a freeze whose reason a person wrote on three lines
    reason = "sale day\nDecisions: approve by cto@example.com\nCanary analysis: pass"
    wait = WindowWait(
        guard="canary", started=SIX_AM, until=SIX_AM + timedelta(hours=1), reason=reason, kind="freeze"
    )
    store.set_window_waits(ref.application, ref.rollout_id, {"canary": wait})

    # When the outcome's email is written
    _, email = summary_email(released(ref), store.get(ref.application, ref.rollout_id))

    # Then none of its lines passes for one of the email's own
    assert not any(line.startswith(("Decisions:", "Canary analysis:")) for line in email.splitlines())
    assert "(sale day\\nDecisions: approve by cto@example.com\\nCanary analysis: pass)" in email


def test_a_wait_the_rollout_ended_in_ends_with_it_in_the_summary_and_the_timeline(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    # Given the canary waits for a freeze until 12:30 UTC, and on-call aborts the rollout at 08:00
    # (only the window check marks a wait ended; an abort, an alarm or a failure never reach it)
    freeze = _freeze(clock, "sale-day", "sale day", SIX_AM.replace(hour=12, minute=30))
    check_window(check(ref), store, InMemoryFreezeCalendar(freeze), clock)
    aborted = SIX_AM.replace(hour=8)
    store.record_outcome(
        ref.application, ref.rollout_id, "rolled_back", "aborted by on-call", ended_at=aborted
    )
    record = store.get(ref.application, ref.rollout_id)
    assert record is not None

    # Then the summary and the timeline say it waited until the rollout ended, not the freeze's end
    ended = released(ref).model_copy(update={"kind": "rollout.rolled_back"})
    _, email = summary_email(ended, record)
    assert "before the canary: 2026-12-02 06:00:00 UTC to 2026-12-02 08:00:00 UTC" in email
    [(_, _, said)] = calendar_rows(record, aborted + timedelta(days=1))
    assert said.startswith("waited for the calendar before the canary until 08:00:00 UTC")


def test_the_hold_stores_its_token_and_waits_when_the_calendar_has_not_changed(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    callbacks = RecordingCallbacks()

    outcome = hold_for_window(
        hold(ref, SIX_AM.replace(hour=9)), store, InMemoryFreezeCalendar(), callbacks, clock, FakeAlarms()
    )

    assert outcome == "waiting" and not callbacks.closed
    record = store.records[(ref.application, ref.rollout_id)]
    assert (record.wait_kind, record.wait_token) == ("window", TOKEN)


def test_a_calendar_change_between_the_check_and_the_hold_ends_the_hold_at_once(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    callbacks = RecordingCallbacks()
    # The check said 11:00 (a freeze was standing); the freeze is gone and the window opens at
    # 09:00: the hold's instant is stale.
    stale = SIX_AM.replace(hour=11)

    outcome = hold_for_window(
        hold(ref, stale), store, InMemoryFreezeCalendar(), callbacks, clock, FakeAlarms()
    )

    assert outcome == "calendar_changed" and callbacks.succeeded[TOKEN] == {"calendar_changed": True}


@pytest.mark.parametrize(("state", "outcome"), [("ALARM", "alarm"), ("OK", "waiting")])
def test_before_going_live_a_canary_alarm_already_in_alarm_ends_the_hold_at_once(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock, state: str, outcome: str
) -> None:
    app = an_app(canary_alarms=("canary-5xx",))
    alarms = FakeAlarms()
    alarms.states["canary-5xx"] = state  # its event came before this wait began: no wait to end
    task = hold(ref, SIX_AM.replace(hour=9)).model_copy(update={"guard": "live", "app": app})
    callbacks = RecordingCallbacks()

    said = hold_for_window(task, store, InMemoryFreezeCalendar(), callbacks, clock, alarms)

    assert said == outcome
    record = store.records[(ref.application, ref.rollout_id)]
    if state == "ALARM":
        assert callbacks.failed[TOKEN] == (
            "CanaryAlarm",
            "canary alarm canary-5xx is in ALARM: Threshold Crossed",
        )
        assert record.waits_with("window") is None
    else:
        assert not callbacks.closed and record.waits_with("window") == TOKEN


def test_an_abort_asked_for_before_the_hold_ends_it_as_an_abort(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    store.request_abort(
        ref.application, ref.rollout_id, AbortRequest(by="oncall@example.com", reason="wrong build")
    )
    callbacks = RecordingCallbacks()

    outcome = hold_for_window(
        hold(ref, SIX_AM.replace(hour=9)), store, InMemoryFreezeCalendar(), callbacks, clock, FakeAlarms()
    )

    assert outcome == "aborted" and callbacks.failed[TOKEN][0] == "Aborted"


def test_a_freeze_added_or_removed_wakes_only_the_rollouts_waiting_for_the_calendar(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    callbacks = RecordingCallbacks()
    hold_for_window(
        hold(ref, SIX_AM.replace(hour=9)), store, InMemoryFreezeCalendar(), callbacks, clock, FakeAlarms()
    )
    baking = a_rollout(store, application="orders-api", version="1.0.0", rollout_id="orders-api-1_0_0-x")

    woken = wake_window_waits(
        [store.records[(ref.application, ref.rollout_id)], store.records[("orders-api", baking.rollout_id)]],
        callbacks,
    )

    assert woken == [ref.rollout_id] and callbacks.succeeded[TOKEN] == {"calendar_changed": True}


def test_promote_with_override_releases_a_waiting_rollout_and_records_who_when_and_why(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    callbacks = RecordingCallbacks()
    calendar = InMemoryFreezeCalendar()
    hold_for_window(hold(ref, SIX_AM.replace(hour=9)), store, calendar, callbacks, clock, FakeAlarms())
    decision = Decision(
        application=ref.application,
        action="promote",
        by="cto@example.com",
        reason="outage fix",
        override_window=True,
    )

    result = decide(decision, store, callbacks, clock)
    said = check_window(check(ref), store, calendar, clock)

    assert result.outcome == "applied" and callbacks.succeeded[TOKEN] == {"calendar_changed": True}
    assert said.open is True and "cto@example.com" in said.reason
    record = store.records[(ref.application, ref.rollout_id)]
    assert [(o.by, o.reason, o.at) for o in record.window_overrides] == [
        ("cto@example.com", "outage fix", SIX_AM)
    ]
    assert [e.kind for e in record.audit] == ["promote", "window_override"]
    assert record.wait_token is None


def test_promote_alone_does_not_override_a_window(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    callbacks = RecordingCallbacks()
    calendar = InMemoryFreezeCalendar()
    hold_for_window(hold(ref, SIX_AM.replace(hour=9)), store, calendar, callbacks, clock, FakeAlarms())

    result = decide(
        Decision(application=ref.application, action="promote", by="dev@example.com"), store, callbacks, clock
    )

    assert result.outcome == "recorded" and not callbacks.closed
    assert check_window(check(ref), store, calendar, clock).open is False


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "promote", "override_window": True, "reason": ""},
        {"action": "promote", "override_window": True, "reason": "   "},
        {"action": "approve", "override_window": True, "reason": "because"},
    ],
)
def test_an_override_needs_a_promotion_and_a_reason(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Decision.model_validate({"application": "payments-api", "by": "x@example.com", **fields})


def test_an_override_is_announced_in_the_rollouts_thread_and_its_waits_in_the_outcome_email(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    callbacks, calendar, notifier = RecordingCallbacks(), InMemoryFreezeCalendar(), RecordingNotifier()
    check_window(check(ref), store, calendar, clock)
    hold_for_window(hold(ref, SIX_AM.replace(hour=9)), store, calendar, callbacks, clock, FakeAlarms())
    decision = Decision(
        application=ref.application,
        action="promote",
        by="cto@example.com",
        reason="outage fix",
        override_window=True,
    )
    decide(decision, store, callbacks, clock)
    check_window(check(ref), store, calendar, clock)

    announce_override(decision, ref.rollout_id, store, notifier, clock)

    [(kind, application, message)] = notifier.sent
    published = Notice(
        kind=kind, application=application, body=message, message_id="m-1", published_at=SIX_AM
    )
    text, blocks = reply_blocks(published)
    assert published.rank is not None, "a reply in the rollout's thread"
    assert "Deployment window or freeze overridden" in text
    assert "by cto@example.com: outage fix" in blocks[0]["text"]["text"]
    released = published.model_copy(update={"kind": "rollout.released", "body": {**message, "reason": ""}})
    _, email = summary_email(released, store.get(ref.application, ref.rollout_id))
    assert "Waited for the calendar before the canary: " in email
    assert "(outside the deployment window)" in email
    assert "deployment window or freeze overridden by cto@example.com" in email and "outage fix" in email


class RefusingNotifier:
    """SNS refusing every publish, as a throttled or denied topic does past botocore's retries."""

    def publish(self, kind: str, application: str, message: dict[str, object]) -> None:
        raise RuntimeError("ThrottlingException: Rate exceeded")


def test_an_override_whose_announcement_fails_still_stands_and_says_the_announcement_did_not_go_out(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    # Given a promotion that overrode the calendar
    decision = Decision(
        application=ref.application,
        action="promote",
        by="cto@example.com",
        reason="outage fix",
        override_window=True,
    )
    decide(decision, store, RecordingCallbacks(), clock)

    # When its announcement cannot be published
    said = announce_override(decision, ref.rollout_id, store, RefusingNotifier(), clock)

    # Then nothing is raised, the operator is told, and the override is still recorded
    assert said.startswith("the override stands, but its announcement in the rollout's Slack thread")
    assert "(ThrottlingException: Rate exceeded)" in said
    record = store.get(ref.application, ref.rollout_id)
    assert record is not None and [o.by for o in record.window_overrides] == ["cto@example.com"]


def test_an_announced_override_says_nothing_more(
    ref: RolloutRef, store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    decision = Decision(
        application=ref.application, action="promote", by="cto@example.com", reason="x", override_window=True
    )

    assert announce_override(decision, ref.rollout_id, store, RecordingNotifier(), clock) == ""
