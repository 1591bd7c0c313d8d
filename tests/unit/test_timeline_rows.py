"""The timeline page's rows: alarms past the ones a record lists are still said."""

from datetime import UTC, datetime, timedelta, timezone

from canaryfleet.api.timeline_page import stage_rows
from canaryfleet.models.rollout_record import MAX_LISTED_ALARMS, AuditEntry, WindowWait
from canaryfleet.ports.clock import FixedClock

from tests.unit.fakes import InMemoryRolloutStore, a_rollout

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def test_alarms_the_record_only_counted_get_one_row_after_the_last_listed() -> None:
    # Given a rollout whose live alarm went to ALARM more often than its record lists
    store = InMemoryRolloutStore(FixedClock(NOW))
    record = a_rollout(store, received_at=NOW)
    for minute in range(MAX_LISTED_ALARMS + 4):
        entry = AuditEntry(
            kind="alarm", alarm="pay-live-5xx-rate", side="live", at=NOW + timedelta(minutes=minute)
        )
        store.append_audit(record.application, record.rollout_id, entry)
    record = store.get(record.application, record.rollout_id)

    # When its timeline is laid out
    rows = [row for row in stage_rows(record, NOW, NOW + timedelta(days=1)) if row["label"] == "alarm"]

    # Then the listed alarms have a row each, and the rest one row that says how many
    assert len(rows) == MAX_LISTED_ALARMS + 1
    assert rows[-1]["detail"] == (
        f"4 later alarm change(s) to ALARM, not listed: a rollout lists its first {MAX_LISTED_ALARMS}"
    )


def test_a_calendar_wait_stored_with_an_offset_is_shown_in_utc() -> None:
    # Given a rollout whose ended wait kept a freeze's end as the operator typed it (18:00 India time)
    store = InMemoryRolloutStore(FixedClock(NOW))
    record = a_rollout(store, received_at=NOW)
    india = timezone(timedelta(hours=5, minutes=30))
    until = datetime(2026, 12, 5, 18, 0, tzinfo=india)
    wait = WindowWait(guard="live", started=NOW, until=until, reason="freeze", kind="freeze", ended=True)
    store.set_window_waits(record.application, record.rollout_id, {"live": wait})
    stored = store.get(record.application, record.rollout_id)
    assert stored is not None

    # When its timeline is laid out
    [row] = [row for row in stage_rows(stored, NOW, NOW + timedelta(days=1)) if row["label"] == "window wait"]

    # Then the page, which says UTC, shows 12:30 UTC
    assert row["detail"] == "waited for the calendar before going live until 12:30:00 UTC: freeze"
