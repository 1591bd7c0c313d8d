"""The options every operator command shares: where the platform is, and how to answer."""

from __future__ import annotations

import typer

StackOption = typer.Option(
    None, "--stack", help="Platform stack name (default: samconfig.toml, else canaryfleet)."
)
RegionOption = typer.Option(
    None,
    "--region",
    help="AWS region (default: samconfig.toml's for its stack, else your AWS configuration).",
)
ProfileOption = typer.Option(None, "--profile", help="AWS profile to use.")
JsonOption = typer.Option(False, "--json", help="One JSON document for scripts.")
