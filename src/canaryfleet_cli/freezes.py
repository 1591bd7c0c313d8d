"""`canaryfleet freeze add|list|remove`: platform-wide freezes, managed without a redeploy.

A freeze is stored in the platform's state table with who declared it; removing one keeps it
with who removed it and why. After either, the rollouts waiting for the calendar check it again
at once (a rollout that is not waiting meets the change at its next guarded step).
Registered in main.py with ``app.add_typer(freeze_app, name="freeze")``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import typer
from botocore.exceptions import BotoCoreError, ClientError
from canaryfleet.adapters.freeze_store import DynamoFreezeCalendar
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.errors import CanaryfleetError
from canaryfleet.logic.freezes import declare_freeze, standing_freezes
from canaryfleet.models.calendar import Freeze
from canaryfleet.ports.clock import SystemClock
from rich.console import Console
from rich.table import Table
from rich.text import Text

from canaryfleet_cli.local_endpoint import LocalOption
from canaryfleet_cli.options import JsonOption, ProfileOption, RegionOption, StackOption
from canaryfleet_cli.plain import aws_said, fail, plain_text, warn
from canaryfleet_cli.platform import Platform, PlatformError, connect_platform, running_rollout

freeze_app = typer.Typer(
    help="Freezes: no rollout starts its canary or goes live while one stands (unless overridden).",
    no_args_is_help=True,
)

console = Console()


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """``90m``, ``6h``, ``1d12h``, ``30s``: a positive duration."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise typer.BadParameter("a duration such as 30m, 6h or 1d12h", param_hint="--for")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    try:
        duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise typer.BadParameter("a duration of at most 999,999,999 days", param_hint="--for") from None
    if duration <= timedelta(0):
        raise typer.BadParameter("a duration above zero", param_hint="--for")
    return duration


def parse_time(text: str, hint: str) -> datetime:
    """An ISO 8601 time with its offset (``2026-11-27T18:00:00+05:30`` or ``...Z``)."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            "an ISO 8601 time, e.g. 2026-11-27T18:00:00+05:30", param_hint=hint
        ) from None
    if at.tzinfo is None:
        raise typer.BadParameter("give the offset too (+05:30, Z): a freeze is a moment", param_hint=hint)
    try:
        at.astimezone(UTC)  # stored in UTC: 9999-12-31T23:00-05:00 is in no year Python holds
    except OverflowError:
        raise typer.BadParameter("a time between the years 1 and 9999 in UTC", param_hint=hint) from None
    return at


def _calendar(
    stack: str | None, region: str | None, profile: str | None, local: bool
) -> tuple[Platform, DynamoFreezeCalendar]:
    try:
        platform = connect_platform(stack, region, profile, local)
        return platform, DynamoFreezeCalendar(platform.output("StateTableName"))
    except PlatformError as exc:
        fail(str(exc))


def _wake_waiting_rollouts(platform: Platform, freeze_id: str) -> list[str]:
    """The running rollouts that wait for the calendar check it again now.

    The freeze is stored by then: a failure here is said as a warning, not as the command's
    failure, which an operator or a script would retry, declaring the freeze twice. A rollout
    not told sees the calendar anyway when its wait next ends or its next guarded step checks it.
    """
    # The window logic brings the Tracer (its checks are traced on Lambda): imported when used.
    from canaryfleet.logic.window import wake_window_waits  # noqa: PLC0415

    try:
        records = [running_rollout(platform, app.application) for app in platform.applications()]
        return wake_window_waits([r for r in records if r is not None], StepFunctionsCallbacks())
    except (ClientError, BotoCoreError, CanaryfleetError) as exc:
        warn(
            f"freeze {freeze_id} is stored, but the rollouts waiting for the calendar were not told "
            f"now ({aws_said(exc)}): each sees it when it next checks the calendar"
        )
        return []


def _row(freeze: Freeze) -> dict[str, object]:
    return freeze.stored()


@freeze_app.command("add")
def add(
    reason: str = typer.Option(..., "--reason", help="Why (shown to everyone whose rollout waits)."),
    end: str | None = typer.Option(None, "--end", help="When it ends: ISO 8601 with offset."),
    duration: str | None = typer.Option(None, "--for", help="Or how long it lasts from its start: 6h, 1d."),
    start: str | None = typer.Option(
        None, "--start", help="When it starts: ISO 8601 with offset (default now)."
    ),
    freeze_id: str | None = typer.Option(None, "--id", help="Its id (default: <start date>-<random>)."),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    as_json: bool = JsonOption,
    local: bool = LocalOption,
) -> None:
    """Declare a freeze: from --start (default now) until --end, or for --for."""
    if (end is None) == (duration is None):
        raise typer.BadParameter("give exactly one of --end and --for", param_hint="--end/--for")
    clock = SystemClock()
    begins = parse_time(start, "--start") if start else None
    try:
        ends = parse_time(end, "--end") if end else (begins or clock.now()) + parse_duration(duration or "")
    except OverflowError:
        raise typer.BadParameter("the freeze would end after the year 9999", param_hint="--for") from None
    platform, calendar = _calendar(stack, region, profile, local)
    try:
        freeze = declare_freeze(
            calendar,
            start=begins,
            end=ends,
            reason=reason,
            by=platform.caller(),
            clock=clock,
            freeze_id=freeze_id,
        )
    except CanaryfleetError as exc:
        fail(str(exc))
    woken = _wake_waiting_rollouts(platform, freeze.freeze_id)
    if as_json:
        typer.echo(json.dumps({"freeze": _row(freeze), "rechecked": woken}, indent=2))
        return
    console.print(
        Text(f"freeze {freeze.freeze_id}: {freeze.start.isoformat()} to {freeze.end.isoformat()}: ")
        + plain_text(freeze.reason)
    )


@freeze_app.command("list")
def list_freezes(
    include_past: bool = typer.Option(False, "--all", help="Also freezes that ended or were removed."),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    as_json: bool = JsonOption,
    local: bool = LocalOption,
) -> None:
    """Freezes that stand (now or later), by start; --all adds past and removed ones."""
    _, calendar = _calendar(stack, region, profile, local)
    freezes = standing_freezes(calendar, SystemClock().now(), include_past)
    if as_json:
        typer.echo(json.dumps([_row(f) for f in freezes], indent=2))
        return
    table = Table(title="canaryfleet freezes")
    # On one line and whole, however narrow the terminal: `canaryfleet freeze remove` takes it.
    widest = max((len(f.freeze_id) for f in freezes), default=2)
    table.add_column("id", no_wrap=True, min_width=widest)
    for column in ("start", "end", "reason", "declared by", "removed"):
        table.add_column(column)
    for f in freezes:
        removed = f"by {f.removed_by} at {f.removed_at:%Y-%m-%d %H:%M}" if f.removed_at else "-"
        table.add_row(
            Text(f.freeze_id),
            f.start.isoformat(),
            f.end.isoformat(),
            plain_text(f.reason),
            plain_text(f.declared_by),
            plain_text(removed),
        )
    console.print(table)


@freeze_app.command("remove")
def remove(
    freeze_id: str = typer.Argument(..., help="The freeze (canaryfleet freeze list shows them)."),
    reason: str = typer.Option(..., "--reason", help="Why it ends early (kept with it)."),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    as_json: bool = JsonOption,
    local: bool = LocalOption,
) -> None:
    """End a freeze now; it stays listed (--all) with who removed it and why."""
    platform, calendar = _calendar(stack, region, profile, local)
    try:
        freeze = calendar.remove(freeze_id, platform.caller(), reason, SystemClock().now())
    except CanaryfleetError as exc:
        fail(str(exc))
    woken = _wake_waiting_rollouts(platform, freeze.freeze_id)
    if as_json:
        typer.echo(json.dumps({"freeze": _row(freeze), "rechecked": woken}, indent=2))
        return
    console.print(Text(f"freeze {freeze.freeze_id} removed; waiting rollouts check the calendar again"))
