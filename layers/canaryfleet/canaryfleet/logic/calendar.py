"""When a guarded step may run: deployment windows and freezes, as pure time arithmetic.

A step may run at an instant inside one of the policy's windows (any instant, when it has none)
and inside no freeze in force. :func:`next_opening` finds the first such instant from now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from canaryfleet.errors import CalendarUnbounded
from canaryfleet.models.calendar import Freeze, Hold
from canaryfleet.models.policy import WEEKDAYS, DeploymentWindow

# Each pass moves past one freeze or to one window's opening: a calendar that still holds the step
# after this many passes (a year of back-to-back freezes) is refused rather than searched forever.
MAX_PASSES = 400
# The longest a rollout waits for the calendar at one step. A Standard execution lives at most one
# year (Step Functions service quotas) and then ends TIMED_OUT, where no Catch runs: the rollback,
# the lock's release and the canary's traffic reset would never happen. Two steps guarded, an
# approval (at most 7 days) and the bakes fit well within the year at 120 days each.
MAX_HOLD = timedelta(days=120)
# How far ahead a window's opening is looked for: a week to its next day, and a week more when
# the clocks skip that day's opening (a window within the skipped hour does not open that day).
_SEARCH_DAYS = 15


def _in_window(window: DeploymentWindow, at: datetime) -> bool:
    local = at.astimezone(ZoneInfo(window.timezone))
    day, clock = WEEKDAYS[local.weekday()], local.time().replace(tzinfo=None)
    if window.start < window.end:
        return day in window.days and window.start <= clock < window.end
    # Across midnight: the evening of a window day, or the morning after one.
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    return (day in window.days and clock >= window.start) or (yesterday in window.days and clock < window.end)


def _clock_changes(zone: ZoneInfo, since: datetime, until: datetime) -> list[datetime]:
    """The instants from ``since`` to ``until`` at which ``zone``'s clocks change (to the second)."""
    changes = []
    left = math.floor(since.timestamp())
    while left < until.timestamp():
        right = left + 86_400
        offset = datetime.fromtimestamp(left, zone).utcoffset()
        if datetime.fromtimestamp(right, zone).utcoffset() != offset:
            # tz database changes fall on whole seconds: the first second on the new offset.
            low, high = left, right
            while high - low > 1:
                middle = (low + high) // 2
                if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            changes.append(datetime.fromtimestamp(high, UTC))
        left = right
    return changes


def _next_start(window: DeploymentWindow, after: datetime) -> datetime:
    """The first instant later than ``after`` at which ``window`` is open, ``after`` being outside it.

    Where the wall clock reaches ``start`` on one of its days the window opens: once a day, twice
    where the clocks go back through ``start`` (the window may close and open again), never where
    they skip it. It also opens where the clocks jump into it (spring forward past ``start``, or
    back into its hours). The earliest of those instants that :func:`_in_window` accepts is the
    first open one, so the step never waits past an instant the window counts as open.
    """
    zone = ZoneInfo(window.timezone)
    after = after.astimezone(UTC)
    today = after.astimezone(zone).date()
    candidates = _clock_changes(zone, after, after + timedelta(days=_SEARCH_DAYS))
    # From the day before: a clock going back at midnight shows yesterday's hours again.
    for days in range(-1, _SEARCH_DAYS + 1):
        date = today + timedelta(days=days)
        if WEEKDAYS[date.weekday()] in window.days:
            wall = datetime.combine(date, window.start, tzinfo=zone)
            candidates += [wall.astimezone(UTC), wall.replace(fold=1).astimezone(UTC)]
    opens = [at for at in candidates if at > after and _in_window(window, at)]
    if not opens:  # pragma: no cover
        raise AssertionError(f"a window with at least one day opens within {_SEARCH_DAYS} days")
    return min(opens)


def in_windows(windows: Sequence[DeploymentWindow], at: datetime) -> bool:
    """Whether ``at`` is inside one of ``windows`` (always, when there are none)."""
    return not windows or any(_in_window(w, at) for w in windows)


def next_opening(
    windows: Sequence[DeploymentWindow], freezes: Sequence[Freeze], now: datetime
) -> Hold | None:
    """None if a guarded step may run at ``now``; else the first instant it may, and what holds it.

    CalendarUnbounded if no instant is found within :data:`MAX_PASSES` passes, or the first is
    more than :data:`MAX_HOLD` away.
    """
    # In UTC from here: a freeze's end keeps the offset the operator typed, and a hold's ``until``
    # is stored and shown as UTC.
    at = now.astimezone(UTC)
    first: Hold | None = None
    home = windows[0].timezone if windows else "UTC"  # where a freeze's end is shown
    last: tuple[str, str] = ("window", home)  # what opens at ``at``: its kind and where to show it
    for _ in range(MAX_PASSES):
        holding = [f for f in freezes if f.in_force(at)]
        if holding:
            freeze = max(holding, key=lambda f: f.end)
            at = freeze.end.astimezone(UTC)
            last = ("freeze", home)
            first = first or Hold(
                until=at,
                kind="freeze",
                reason=f"freeze {freeze.freeze_id}: {freeze.reason} (declared by {freeze.declared_by})",
                timezone=home,
            )
            continue
        if not in_windows(windows, at):
            # The first window to open; of two opening at once, the first listed.
            at, zone = min(((_next_start(w, at), w.timezone) for w in windows), key=lambda o: o[0])
            last = ("window", zone)
            first = first or Hold(
                until=at, kind="window", reason="outside the deployment window", timezone=zone
            )
            continue
        if first is None:
            return None
        if at - now > MAX_HOLD:
            raise CalendarUnbounded(
                f"the calendar holds the step until {at.isoformat()}, more than {MAX_HOLD.days} days"
                f" away ({first.reason}); a rollout waits at most {MAX_HOLD.days} days at a step:"
                " upload the build again nearer the time"
            )
        return first.model_copy(update={"until": at, "kind": last[0], "timezone": last[1]})
    raise CalendarUnbounded(
        f"the deployment windows and freezes leave no time to release after {now.isoformat()}"
    )


def _duration(seconds: float) -> str:
    minutes = max(0, int(seconds + 59) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if seconds < 60:
        return f"{max(0, int(seconds))}s"
    return f"{minutes}m"


def describe_wait(until: datetime, kind: str, timezone: str, now: datetime) -> str:
    """How a person reads a wait: "the window that opens at 06:00 IST (in 9h 12m)"."""
    local = until.astimezone(ZoneInfo(timezone))
    shown = local.strftime("%H:%M" if local.second == 0 else "%H:%M:%S")
    if until - now >= timedelta(days=1):
        shown = f"{local:%a %d %b} {shown}"
    zone = local.tzname() or timezone
    left = _duration((until - now).total_seconds())
    if kind == "freeze":
        return f"the end of a freeze at {shown} {zone} (in {left})"
    return f"the window that opens at {shown} {zone} (in {left})"
