"""`canaryfleet judge FILE`: the platform's canary judge on samples from a file, to tune a policy offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import typer
from canaryfleet.logic.analysis.judge import judge as judge_analysis
from canaryfleet.models.analysis import AnalysisSamples, AnalysisVerdict, MetricVerdict
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()
errors = Console(stderr=True, soft_wrap=True)

MAX_FILE_BYTES = 50 * 1024 * 1024


def _bad_input(message: str) -> NoReturn:
    errors.print(Text.assemble(("error: ", "red"), message))
    raise typer.Exit(2)


def _errors_in_words(exc: ValidationError, prefix: str) -> list[str]:
    found = exc.errors(include_url=False)
    deeper = {tuple(e["loc"][:-1]) for e in found if len(e["loc"]) > 1}
    lines = []
    for error in found[:10]:
        location = tuple(error["loc"])
        if error["type"] == "too_short" and any(d[: len(location)] == location for d in deeper):
            continue  # pydantic's echo of an item that failed above
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in location).lstrip(".")
        lines.append(f"  {prefix}{where or '(top)'}: {error['msg']}")
    return lines


def read_analyses(path: Path) -> tuple[list[AnalysisSamples], bool]:
    """The analyses of a file, and whether it held a list. Exits 2 on anything else."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            _bad_input(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        _bad_input(f"cannot read {path}: {exc}")
    except json.JSONDecodeError as exc:
        _bad_input(f"{path} is not JSON: {exc}")
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        _bad_input(f"{path} holds JSON the judge cannot read: {exc}")
    except RecursionError:
        _bad_input(f"{path} holds JSON nested too deeply to read")
    many = isinstance(data, list)
    if not isinstance(data, dict | list):
        _bad_input('the file must hold one analysis ({"metrics": [...]}) or a JSON list of them')
    if many and not data:
        _bad_input("the list of analyses is empty")
    items = data if many else [data]
    analyses, problems = [], []
    for index, item in enumerate(items):
        try:
            analyses.append(AnalysisSamples.model_validate(item))
        except ValidationError as exc:
            problems += _errors_in_words(exc, f"[{index}]." if many else "")
    if problems:
        kind = "a list of analyses" if many else "an analysis"
        _bad_input(f"{path} is not {kind} the judge reads:\n" + "\n".join(problems[:20]))
    return analyses, many


def _value(metric: MetricVerdict, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2%}" if metric.kind == "ratio" else f"{value:.4g}"


def _change(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:+.1%}"


def verdict_table(verdict: AnalysisVerdict, title: str = "") -> Table:
    colours = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
    table = Table(title=title or None, title_justify="left")
    for column in ("metric", "result", "canary", "live", "effect [interval]", "p (adjusted)"):
        table.add_column(column)
    for metric in verdict.metrics:
        effect = (
            f"{_change(metric.effect)} [{_change(metric.effect_low)}, {_change(metric.effect_high)}]"
            if metric.effect is not None
            else "-"
        )
        table.add_row(
            Text(metric.name + (" *" if metric.critical else "")),
            Text(metric.result, style=colours[metric.result]),
            _value(metric, metric.canary),
            _value(metric, metric.live),
            effect,
            f"{metric.p_value:.2g} ({metric.p_adjusted:.2g})"
            if metric.p_value is not None and metric.p_adjusted is not None
            else "-",
        )
    if verdict.metrics:
        confidence = verdict.metrics[0].confidence
        table.caption = f"* critical; intervals at {confidence:.1%} (simultaneous); adjusted p: Holm"
    return table


def judge(
    file: Path = typer.Argument(..., dir_okay=False, help="JSON: one analysis, or a list of them."),
    as_json: bool = typer.Option(False, "--json", help="One verdict, or a list in the file's order."),
) -> None:
    """Judge canary against live on per-interval samples from a file, as the analyse step does.

    An analysis is {"metrics": [{"name", "direction": increase|decrease|either, "critical",
    "canary": [...], "live": [...], "canary_counts": [...], "live_counts": [...]}]}; null is an
    interval without data. Exits 0 with any verdict, 2 on bad input.
    """
    analyses, many = read_analyses(file)
    verdicts = [judge_analysis(analysis) for analysis in analyses]
    if as_json:
        dumped = [v.model_dump(mode="json") for v in verdicts]
        typer.echo(json.dumps(dumped if many else dumped[0], indent=2))
        return
    for index, verdict in enumerate(verdicts):
        title = f"analysis {index + 1}" if many else ""
        console.print(verdict_table(verdict, title))
        colour = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[verdict.result]
        console.print(Text.assemble((verdict.result, f"bold {colour}"), f"  score {verdict.score}"))
        for reason in verdict.reasons:
            console.print(Text(f"  {reason}"))
