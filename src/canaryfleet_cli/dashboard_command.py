"""`canaryfleet dashboard`, the command: the server and its pages are in :mod:`.dashboard`."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer
from rich.console import Console

from canaryfleet_cli.local_endpoint import LocalOption
from canaryfleet_cli.options import ProfileOption, RegionOption, StackOption
from canaryfleet_cli.platform import PlatformError, connect_platform

errors = Console(stderr=True, soft_wrap=True)


def dashboard(
    port: int = typer.Option(3100, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one)."),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    local: bool = LocalOption,
) -> None:
    """Every application and rollout on a page on localhost, with approve, reject, abort and promote."""
    try:
        platform = connect_platform(stack, region, profile, local)
    except PlatformError as exc:
        errors.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    # The pages (jinja2, the timeline's charts) are this command's own: imported when it runs.
    from canaryfleet_cli.dashboard import HOST, Dashboard, serve  # noqa: PLC0415

    try:
        server = serve(Dashboard(platform), port)
    except OSError as exc:
        errors.print(f"dashboard: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    url = f"http://{HOST}:{server.server_address[1]}/"
    typer.echo(f"canaryfleet dashboard: {url} (stack {platform.stack}; Ctrl-C stops it)")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=server.serve_forever, name="dashboard", daemon=True)
    thread.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
