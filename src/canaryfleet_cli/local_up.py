"""`canaryfleet local up`: the local cloud in the foreground, until Ctrl-C or SIGTERM.

The operator commands then run against it with ``--local``, through the same boto3 code they
use against AWS (see :mod:`canaryfleet_cli.local_endpoint`).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console

from canaryfleet_cli.local_run import local_cloud_errors, local_parameters

console = Console()
errors = Console(stderr=True, soft_wrap=True)
# How often approval emails are looked for, to print their links.
_MAIL_SECONDS = 1.0


def up(
    port: int = typer.Option(
        4566, "--port", min=0, max=65535, help="Port of the AWS APIs (0: any free one)."
    ),
    approval_port: int = typer.Option(
        8765, "--approval-port", min=0, max=65535, help="Port of the approval page (0: any free one)."
    ),
    approver: str = typer.Option(
        "none", "--approver", help="none: people decide (CLI, approval page); auto: every build is approved."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the functions' logs and metrics."),
) -> None:
    """Keep a local cloud up: the platform, hello-app, the fleet simulator and the approval page."""
    # The local cloud loads moto and samtranslator: imported when a local command runs.
    from canaryfleet_local.serve import served_local_cloud, written_state  # noqa: PLC0415

    if approver not in ("none", "auto"):
        raise typer.BadParameter("none or auto", param_hint="--approver")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()

    def progress(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:5.1f}s[/dim] {message}...")

    try:
        with (
            local_cloud_errors(errors),
            served_local_cloud(
                port=port,
                approval_port=approval_port,
                approver=approver,
                parameters=local_parameters(verbose),
                on_progress=progress,
            ) as (served, _cloud, links),
            written_state(served, Path.cwd()) as state,
        ):
            took = time.monotonic() - started
            console.print(
                f"\n[bold green]canaryfleet local cloud up[/bold green] in {took:.0f}s\n"
                f"  AWS APIs       {served.endpoint}  (stack {served.stack}, {served.region})\n"
                f"  approval page  {served.approval_page}\n"
                f"  applications   {', '.join(served.applications)}\n"
                f"  written        {state}\n"
                "  policy         5% canary, a 5 s bake standing for 10 min, approval within 1 h "
                f"({'approved by the simulator' if approver == 'auto' else 'decided by you'})\n\n"
                "Try, in this folder:\n"
                "  canaryfleet publish --local hello-app 2.0.0 examples/hello-app\n"
                "  canaryfleet watch --local hello-app --version 2.0.0\n"
                "  canaryfleet approve --local hello-app   (or reject --local hello-app --reason ...)\n"
                "Ctrl-C stops it.",
                highlight=False,
            )
            while not stop.wait(_MAIL_SECONDS):
                for subject, person, link in links.new():
                    console.print(
                        f"approval asked: {subject}\n  {person}: {link}",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,  # a link broken over lines cannot be opened
                    )
    except OSError as exc:
        errors.print(f"local up: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("local cloud stopped")
