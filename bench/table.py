"""The results as a table on the terminal (rich)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.markdown import measure_cells


def _measure_row(measure: dict[str, Any]) -> list[str]:
    return measure_cells(
        measure,
        met="[green]met[/green]",
        missed="[bold red]MISSED[/bold red]",
        baseline_label="\n[dim]{}[/dim]",
    )


def print_results(document: dict[str, Any], output: Path) -> None:
    console = Console(width=None if sys.stdout.isatty() else 150)
    table = Table(title=f"canaryfleet bench ({document['profile']})", show_lines=True)
    for column in ("fig", "measure", "canaryfleet", "baseline (same run)", "ratio", "goal", ""):
        table.add_column(column, overflow="fold")
    for measure in document["measures"]:
        table.add_row(*_measure_row(measure))
    console.print(table)
    for group in document["groups"]:
        if group["error"]:
            console.print(f"[bold red]{group['name']} (figures {group['figures']}) failed:[/bold red]")
            console.print(group["error"], markup=False)
    summary = document["summary"]
    console.print(
        f"{summary['met']} of {summary['measures']} goals met; {len(summary['errors'])} group(s) failed; "
        f"{document['seconds']:.0f} s in all; written to {output}"
    )
