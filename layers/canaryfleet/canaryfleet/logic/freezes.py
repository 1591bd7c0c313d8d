"""Operators declaring and removing platform-wide freezes (``canaryfleet freeze``).

A freeze takes effect at the next check of every rollout; :func:`canaryfleet.logic.window.
wake_window_waits` makes the rollouts already waiting for the calendar check again at once.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from pydantic import ValidationError

from canaryfleet.errors import InvalidFreeze
from canaryfleet.models.calendar import Freeze
from canaryfleet.models.problems import problems
from canaryfleet.ports.calendar import FreezeCalendar
from canaryfleet.ports.clock import Clock


def declare_freeze(
    calendar: FreezeCalendar,
    *,
    end: datetime,
    reason: str,
    by: str,
    clock: Clock,
    start: datetime | None = None,
    freeze_id: str | None = None,
) -> Freeze:
    """Store a freeze from ``start`` (default now) to ``end``; InvalidFreeze for one that is over."""
    now = clock.now()
    start = start or now
    if end.tzinfo is None or start.tzinfo is None:
        raise InvalidFreeze("give freeze times with a time zone offset (e.g. 2026-11-27T18:00:00+05:30)")
    if end <= now:
        raise InvalidFreeze(f"the freeze would have ended already ({end.isoformat()} is not after now)")
    try:
        freeze = Freeze(
            freeze_id=freeze_id or f"{start:%Y%m%d}-{secrets.token_hex(3)}",
            start=start,
            end=end,
            reason=reason,
            declared_by=by,
            declared_at=now,
        )
    except ValidationError as exc:
        raise InvalidFreeze(problems(exc)) from None
    calendar.declare(freeze)
    return freeze


def standing_freezes(calendar: FreezeCalendar, now: datetime, include_past: bool = False) -> list[Freeze]:
    """Freezes not removed and not over (all of them with ``include_past``), by start."""
    found = calendar.freezes()
    if not include_past:
        found = [f for f in found if f.removed_at is None and f.end > now]
    return sorted(found, key=lambda f: (f.start, f.freeze_id))
