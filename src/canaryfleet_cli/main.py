"""`canaryfleet`: operate the platform, and run it on the local cloud."""

from __future__ import annotations

import atexit
import gc
import io
import json
import logging
import os
import sys
from pathlib import Path

import typer
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from canaryfleet.errors import CanaryfleetError
from canaryfleet.observability import logger as runtime_logger
from rich.console import Console

from canaryfleet_cli import operate
from canaryfleet_cli.app_commands import app_commands
from canaryfleet_cli.approvers import approvers_app
from canaryfleet_cli.dashboard_command import dashboard
from canaryfleet_cli.demo_interactive import demo
from canaryfleet_cli.drains import drains_app
from canaryfleet_cli.freezes import freeze_app
from canaryfleet_cli.judge import judge
from canaryfleet_cli.local_drain import drain_commands
from canaryfleet_cli.local_run import local_cloud_errors, local_parameters, progress
from canaryfleet_cli.local_up import up
from canaryfleet_cli.plain import aws_said, fail, file_link
from canaryfleet_cli.platform import SSO_LOGIN_ERRORS, set_up_problem
from canaryfleet_cli.rollout_view import view_steps
from canaryfleet_cli.timeline import render_rollouts

app = typer.Typer(help="canaryfleet: canary rollouts and graceful fleet operations for EC2 applications.")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # noqa: PLC0415 - reads the installed metadata: --version only

        typer.echo(f"canaryfleet {version('canaryfleet')}")
        raise typer.Exit(0)


@app.callback()
def _main(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """canaryfleet: canary rollouts and graceful fleet operations for EC2 applications."""


local_app = typer.Typer(help="Run the platform on the local cloud (moto, in-process): no AWS account needed.")
app.add_typer(local_app, name="local")
app.add_typer(app_commands, name="app")
app.add_typer(drains_app, name="drains")
app.add_typer(freeze_app, name="freeze")
app.add_typer(approvers_app, name="approvers")
local_app.add_typer(drain_commands)
local_app.command("up")(up)
app.command("demo")(demo)
app.command("judge")(judge)
app.command("dashboard")(dashboard)
operate.register(app)

console = Console()
errors = Console(stderr=True, soft_wrap=True)


@local_app.command("rollout")
def local_rollout(
    scenario: str = typer.Option("healthy", help="A scenario of src/canaryfleet_local/scenarios/."),
    artifact: Path | None = typer.Option(None, exists=True, dir_okay=False, help="Bundle zip to upload."),
    decision: str | None = typer.Option(
        None, help="Override the approver: approve, reject or none (never answers)."
    ),
    strategy: str | None = typer.Option(
        None, help="Play it under in_place or blue_green instead of the scenario's own strategy."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the functions' logs and metrics."),
    report_dir: Path | None = typer.Option(
        None, "--report-dir", file_okay=False, help="Write each rollout's HTML timeline into this folder."
    ),
) -> None:
    """Play one scenario on a fresh local cloud: upload, canary, analysis, approval, live or rollback."""
    # The local cloud loads moto and samtranslator: only the local commands import it, here,
    # so the AWS commands (`canaryfleet status`, `publish`...) never load it.
    from canaryfleet_cli.report import write_report  # noqa: PLC0415 - jinja2 and the page
    from canaryfleet_local.rollout_job import played_scenario  # noqa: PLC0415
    from canaryfleet_local.scenarios import scenario_names  # noqa: PLC0415

    if scenario not in scenario_names():
        raise typer.BadParameter(
            f"unknown scenario; known: {', '.join(scenario_names())}", param_hint="--scenario"
        )
    if decision not in (None, "approve", "reject", "none"):
        raise typer.BadParameter("approve, reject or none", param_hint="--decision")
    if strategy not in (None, "in_place", "blue_green"):
        raise typer.BadParameter("in_place or blue_green", param_hint="--strategy")
    with (
        local_cloud_errors(errors),
        progress(errors, f"Playing scenario {scenario} on the local cloud"),
        played_scenario(
            scenario,
            artifact=artifact,
            decision=decision,
            parameters=local_parameters(verbose),
            strategy=strategy,
        ) as run,
    ):
        # A page reads its rollout's metrics: pages are written while the local cloud is up.
        written: list[str] = []
        if report_dir is not None:
            for record in run.records:
                page = report_dir / f"{record.application}-{record.version}.html"
                written.append(str(write_report(record, run.app, page)))
        run.report["reports"] = written
    report = run.report
    steps = {record.rollout_id: view_steps(run.app, record) for record in run.records}
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        console.print(render_rollouts(report, verbose=verbose, steps=steps))
        for path in report["reports"]:
            console.print(file_link("timeline: ", path))
    # As `canaryfleet watch`: 0 released, 1 rolled back or rejected, 2 the local cloud misbehaved.
    if report["lock_held"] or report["failed_deliveries"]:
        raise typer.Exit(2)
    raise typer.Exit(0 if report["outcome"] == "released" else 1)


def runtime_logs_to_stderr() -> None:
    """The runtime's log lines (the registry, the stores) go to stderr: stdout is the command's.

    Powertools' Logger writes its JSON lines to stdout, where Lambda sends them to CloudWatch
    Logs ("Amazon CloudWatch Logs for AWS Lambda", AWS Lambda Developer Guide). In the CLI they
    broke the one document `status --json` prints for a script to parse.
    """
    handler = runtime_logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)


def main() -> None:
    """`canaryfleet` (its console script, and ``python -m canaryfleet_cli.main``)."""
    runtime_logs_to_stderr()
    # A command that ran a local cloud ends with hundreds of thousands of objects (moto's state,
    # the functions' modules), and the interpreter's garbage collection at exit walked them all:
    # 1.3 to 1.7 s of `make demo`. The command has finished when exit handlers run; its objects,
    # frozen, are left to the process's end.
    atexit.register(gc.freeze)
    # The CLI's own clients retry as the platform's do (adapters.clients): botocore's standard
    # mode, five attempts with jittered backoff, not its legacy mode. An operator's own
    # AWS_RETRY_MODE or AWS_MAX_ATTEMPTS still wins.
    os.environ.setdefault("AWS_RETRY_MODE", "standard")
    os.environ.setdefault("AWS_MAX_ATTEMPTS", "5")
    # The views use a few symbols (the steps' marks, Rich's ellipsis). A terminal or pipe whose
    # encoding lacks them (PYTHONIOENCODING=ascii, a C locale with UTF-8 mode off) shows "?"
    # instead: an exception there would end `watch` with exit 1, which reads as "rolled back".
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    try:
        app()
    except (*SSO_LOGIN_ERRORS, NoCredentialsError) as exc:
        # A login that expired (or credentials that went away) while the command ran: said as
        # at its start, with the command that logs in again, not as an AWS error.
        try:
            fail(set_up_problem(exc, None), 2)
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None
    except (ClientError, BotoCoreError, CanaryfleetError) as exc:
        # What AWS said, in one line, rather than a traceback: a denied, expired or throttled
        # call the command did not expect (or the runtime's own typed error for one, such as
        # TransientAwsError). Exit 2, as for the platform's other errors (never `watch`'s 0 or 1,
        # which a CI gate reads as released or rolled back).
        try:
            fail(aws_said(exc), 2)
        except typer.Exit as done:  # outside the command: the process's own exit
            raise SystemExit(done.exit_code) from None


if __name__ == "__main__":
    main()
