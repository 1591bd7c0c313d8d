"""`python -m bench.markdown [RESULTS]`: a results file as the Markdown table bench/README.md shows."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results.json"


def number(value: float | None) -> str:
    """A measured value as the tables show it: whole numbers whole, the rest to three figures."""
    if value is None:
        return "-"
    if value == int(value) and abs(value) >= 1:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def measure_cells(measure: dict[str, Any], *, met: str, missed: str, baseline_label: str) -> list[str]:
    """A measure's cells, figure to met; ``baseline_label`` is the format of the baseline's label."""
    baseline = number(measure["baseline"])
    if measure["baseline"] is not None:
        baseline += baseline_label.format(measure["baseline_label"])
    return [
        str(measure["figure"]),
        measure["name"],
        f"{number(measure['value'])} {measure['unit']}",
        baseline,
        "-" if measure["ratio"] is None else f"{measure['ratio']:.3g}",
        measure["goal"],
        met if measure["met"] else missed,
    ]


def _row(measure: dict[str, Any]) -> str:
    cells = measure_cells(measure, met="met", missed="**missed**", baseline_label=" ({})")
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def markdown(document: dict[str, Any]) -> str:
    lines = [
        "| fig | measure | canaryfleet | baseline (same run) | ratio | goal | |",
        "|---|---|---|---|---|---|---|",
        *(_row(m) for m in document["measures"]),
    ]
    summary = document["summary"]
    machine = document["machine"]
    lines.append("")
    lines.append(
        f"{summary['met']} of {summary['measures']} goals met; the run took {document['seconds']:.0f} s "
        f"({document['profile']} profile, commit {document['commit'][:7]}, {machine['cpus']} CPUs, "
        f"load average {machine['load_average_at_start'][0]} at the start)."
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT_RESULTS
    print(markdown(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
