"""Drains on the local cloud: `canaryfleet local drain` and `local inject-event`.

Registered in main.py with ``local_app.add_typer(drain_commands)``. The local cloud (moto) is
imported inside the commands, so the CLI's other commands do not load it.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from canaryfleet_cli.local_run import local_cloud_errors, local_parameters, progress

drain_commands = typer.Typer()

console = Console()
errors = Console(stderr=True, soft_wrap=True)

# What a drain report says about whether the platform did its job (logs_lost is an outcome).
_HEALTHY_WHEN_EMPTY = ("drains_not_final", "function_errors", "failed_deliveries")
_SUMMARY = (
    "instances",
    "drained",
    "manifests_verified",
    "logs_lost",
    "deregistered",
    "lifecycle_completed",
    "lifecycle_pending",
    "send_command_calls",
    "retries",
    "ignored",
)


@contextlib.contextmanager
def _quiet_local_cloud(verbose: bool) -> Iterator[dict[str, str]]:
    """Template parameters for a local run; the functions' logs and metrics go to stderr."""
    parameters = local_parameters(verbose)
    # Lambda functions print their logs and metrics; stdout keeps the report alone.
    with contextlib.redirect_stdout(sys.stderr):
        yield parameters


def _healthy(report: dict[str, Any]) -> bool:
    return all(not report.get(key) for key in (*_HEALTHY_WHEN_EMPTY, "lifecycle_pending"))


def _summary(report: dict[str, Any]) -> Table:
    table = Table(title=f"drain scenario {report['scenario']} ({report['event']}, {report['side']})")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in _SUMMARY:
        table.add_row(key.replace("_", " "), str(report[key]))
    table.add_row("instances per command", ", ".join(str(n) for n in report["instances_per_command"]))
    for lost in report["lost"]:
        table.add_row(f"lost: {lost['instance_id']}", lost["reason"] or "")
    rollout = report.get("rollout")
    if rollout:
        verdict = (rollout.get("verdict") or {}).get("result")
        table.add_row("rollout", f"{rollout['version']}: {rollout['outcome']} (verdict {verdict})")
    return table


@drain_commands.command("drain")
def local_drain(
    scenario: str = typer.Option("scale-in", help="A scenario of src/canaryfleet_local/scenarios_drain/."),
    instances: int | None = typer.Option(
        None, "--instances", min=1, max=500, help="How many instances leave (default: the scenario's)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the functions' logs and metrics."),
) -> None:
    """Make instances leave an application on a fresh local cloud; report each drain's outcome."""
    # The local cloud loads moto and samtranslator: only the local commands import it, here,
    # so the AWS commands (`canaryfleet status`, `publish`...) never load it.
    from canaryfleet_local.drain_job import drain_scenario_names, run_drain_scenario  # noqa: PLC0415

    if scenario not in drain_scenario_names():
        raise typer.BadParameter(
            f"unknown drain scenario; known: {', '.join(drain_scenario_names())}", param_hint="--scenario"
        )
    with (
        local_cloud_errors(errors),
        progress(errors, f"Playing drain scenario {scenario} on the local cloud"),
        _quiet_local_cloud(verbose) as parameters,
    ):
        report = run_drain_scenario(scenario, instances=instances, parameters=parameters)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        console.print(_summary(report))
    raise typer.Exit(0 if _healthy(report) else 1)


@drain_commands.command("inject-event")
def local_inject_event(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="An EventBridge event (JSON)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the functions' logs and metrics."),
) -> None:
    """Deliver one EventBridge event to a fresh local platform and show what its rules did.

    Exits 2 if the file is not an event EventBridge would deliver, 1 if a delivery failed
    every attempt (one line each saying why), 0 otherwise.
    """
    # The local cloud (moto) is imported by the local commands only.
    from canaryfleet_local.drain_job import InvalidEvent, inject_event, read_event  # noqa: PLC0415

    try:
        event = read_event(file.read_bytes())
    except InvalidEvent as exc:
        errors.print(f"error: {file}: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    with local_cloud_errors(errors, markup=False), _quiet_local_cloud(verbose) as parameters:
        report = inject_event(event, parameters=parameters)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        console.print(f"{report['event']['source']} / {report['event']['detail-type']}", markup=False)
        console.print(f"rules matched: {', '.join(report['rules_matched']) or 'none'}", markup=False)
        for invocation in report["invocations"]:
            outcome = "failed" if invocation["failed"] else "ok"
            line = f"  {invocation['function']}: {outcome} {json.dumps(invocation['response'], default=str)}"
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    for reason in report["delivery_failures"]:
        errors.print(f"delivery failed: {reason}", markup=False, highlight=False)
    raise typer.Exit(1 if report["failed_deliveries"] else 0)
