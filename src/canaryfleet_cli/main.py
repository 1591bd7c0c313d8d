"""`canaryfleet`: operate the platform, and run it on the local cloud."""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="canaryfleet: canary rollouts and graceful fleet operations for EC2 applications.")
local_app = typer.Typer(help="Run the platform on the local cloud (moto, in-process): no AWS account needed.")
app.add_typer(local_app, name="local")

console = Console()
errors = Console(stderr=True)


def _local_parameters(verbose: bool) -> dict[str, str]:
    """Template parameters for a local run: handlers' JSON logs only when asked for."""
    logging.getLogger("moto").setLevel(logging.ERROR)
    if not verbose:
        # Metrics print EMF JSON to stdout; on the local cloud nobody collects them.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    return {"LogLevel": "DEBUG" if verbose else "WARNING"}


@local_app.command("wiring")
def local_wiring(
    application: str = typer.Option("hello-app", help="Application name in the artifact key."),
    version: str = typer.Option("1.0.0", help="Version in the artifact key."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the functions' logs and metrics."),
) -> None:
    """Upload the sample bundle and follow it: S3 -> EventBridge -> start_rollout -> rollout state machine."""
    from canaryfleet_local.cloud import LocalCloudError
    from canaryfleet_local.wiring import run_wiring_check

    try:
        report = run_wiring_check(
            application=application, version=version, parameters=_local_parameters(verbose)
        )
    except LocalCloudError as exc:
        errors.print(f"[red]local cloud:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({**dataclasses.asdict(report), "ok": report.ok}, indent=2, default=str))
    else:
        table = Table(title=f"wiring check: s3://{report.bucket}/{report.key}", show_header=False)
        table.add_row("object version", report.object_version or "-")
        table.add_row("functions invoked", " -> ".join(report.invoked))
        table.add_row("execution", report.execution or "-")
        table.add_row("states entered", " -> ".join(report.states_entered))
        table.add_row(
            "rollout record",
            f"{report.rollout_record.get('current_stage', '-')} "
            f"(commit {report.rollout_record.get('commit', '-')[:12]})",
        )
        table.add_row(
            "status", f"[green]{report.status}[/green]" if report.ok else f"[red]{report.status}[/red]"
        )
        table.add_row("wall time", f"{report.seconds:.2f}s")
        console.print(table)
    raise typer.Exit(0 if report.ok else 1)


if __name__ == "__main__":
    app()
