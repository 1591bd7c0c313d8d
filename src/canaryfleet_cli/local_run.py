"""What every local-cloud command sets up before it starts the platform."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator

import typer
from rich.console import Console

from canaryfleet_cli.plain import labelled


def local_parameters(verbose: bool) -> dict[str, str]:
    """Template parameters for a local run: the functions' logs and metrics only when asked for."""
    # moto logs each failed state (a rollback's expected path) with its whole parse tree.
    logging.getLogger("moto").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    if not verbose:
        # Metrics print EMF JSON to stdout; on the local cloud nobody collects them.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        # Nor their warnings ("No application metrics to publish"), which say nothing to a user here.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"aws_lambda_powertools(\.|$)")
    return {"LogLevel": "DEBUG" if verbose else "ERROR"}


@contextlib.contextmanager
def progress(errors: Console, what: str) -> Iterator[None]:
    """A spinner with ``what`` on stderr while long local work runs (nothing when it is not a terminal)."""
    with errors.status(f"{what} (the local cloud takes 10 to 60 s)..."):
        yield


@contextlib.contextmanager
def local_cloud_errors(errors: Console, *, markup: bool = True) -> Iterator[None]:
    """A local cloud that cannot run ends the command with exit code 2 and one line on ``errors``."""
    # The local cloud loads moto and samtranslator: imported here, when a local command runs.
    from canaryfleet_local.cloud import LocalCloudError  # noqa: PLC0415

    try:
        yield
    except LocalCloudError as exc:
        if markup:
            errors.print(labelled("local cloud: ", "red", exc), highlight=False)
        else:
            errors.print(f"local cloud: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
