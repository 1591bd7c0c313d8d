"""`canaryfleet drains list`: the recorded drains of an application, on the platform in AWS.

Registered in main.py with ``app.add_typer(drains_app, name="drains")``.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from canaryfleet_cli.local_endpoint import LocalOption
from canaryfleet_cli.plain import labelled, plain_text
from canaryfleet_cli.platform import PlatformError, connect_platform

drains_app = typer.Typer(
    help="Drains of instances that left (scale-in, Spot, rebalance).", no_args_is_help=True
)

console = Console()
errors = Console(stderr=True, soft_wrap=True)


@drains_app.command("list")
def list_drains(
    application: str = typer.Argument(..., help="The application whose drains to list."),
    stack: str | None = typer.Option(None, "--stack", help="Platform stack (default: samconfig.toml)."),
    region: str | None = typer.Option(None, "--region", help="AWS region."),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document for scripts."),
    local: bool = LocalOption,
) -> None:
    """Every recorded drain of an application, oldest first: trigger, outcome, bytes, timings."""
    # The drain models are this command's own: imported when it runs.
    from canaryfleet.adapters.drain_store import DynamoDrainStore  # noqa: PLC0415

    try:
        platform = connect_platform(stack, region, profile, local)
        records = DynamoDrainStore(platform.output("StateTableName")).list_drains(application)
        if not records:
            # A mistyped name must not read as "no drains": an application never onboarded (or
            # offboarded, its drains gone) is said so. Recorded drains show even once it left.
            platform.application(application)
    except PlatformError as exc:
        errors.print(labelled("error: ", "red", exc), highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([r.public() for r in records], indent=2, default=str))
        return
    table = Table(title=Text(f"drains of {application}"))  # the name as typed, not markup
    for column in (
        "instance",
        "side",
        "trigger",
        "started",
        "outcome",
        "files",
        "bytes",
        "seconds",
        "reason",
    ):
        table.add_column(column)
    for r in records:
        # As recorded, never markup nor a terminal's escape (plain_text): a reason quotes log file
        # names and errors from the instance, where "[/debug].log" ended the command in a
        # MarkupError and an escape sequence in an error could clear the operator's screen.
        cells = (
            r.instance_id,
            r.side or "",
            "+".join(t.value for t in r.triggers) or r.trigger.value,
            r.started_at.isoformat(timespec="seconds"),
            r.outcome or r.status.value,
            "" if r.file_count is None else str(r.file_count),
            "" if r.bytes is None else str(r.bytes),
            "" if r.duration_seconds is None else f"{r.duration_seconds:.1f}",
            r.reason or "",
        )
        table.add_row(*(plain_text(cell) for cell in cells))
    console.print(table)
