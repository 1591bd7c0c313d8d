"""Rich renderings of rollouts for people at a terminal."""

from __future__ import annotations

from typing import Any

from canaryfleet.logic.analysis.words import metric_lines
from canaryfleet.models.rollout import Verdict
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

_OUTCOME_STYLE = {"released": "green", "rolled_back": "red", "rejected": "yellow"}


def render_rollouts(report: dict[str, Any]) -> Group:
    panels = []
    for rollout in report.get("rollouts", []):
        outcome = str(rollout.get("outcome"))
        style = _OUTCOME_STYLE.get(outcome, "white")
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_row("stages", Text(" -> ".join(rollout.get("state_transitions", [])) or "-"))
        weights = " -> ".join(f"{w}%" for w in rollout.get("canary_weight_history", []))
        table.add_row("canary weight", weights or "-")
        verdict = rollout.get("verdict") or {}
        if verdict:
            table.add_row(
                "verdict",
                Text(
                    f"{verdict.get('result')}: canary {verdict.get('canary_error_rate', 0):.2%} errors "
                    f"vs live {verdict.get('live_error_rate', 0):.2%}; "
                    + "; ".join(verdict.get("reasons", []))
                ),
            )
            for line in metric_lines(Verdict.model_validate(verdict)):
                table.add_row("", Text(line))
        decision = rollout.get("decision") or {}
        if decision:
            # Who decided and what they said are people's text: never Rich markup.
            table.add_row(
                "decision", Text(f"{decision.get('kind')} by {decision.get('by')} ({decision.get('reason')})")
            )
        if rollout.get("reason"):
            table.add_row("reason", Text(str(rollout["reason"]), style=style))
        title = Text.assemble(
            (f"{rollout.get('version')} ", "bold"), (outcome.replace("_", " "), f"bold {style}")
        )
        panels.append(Panel(table, title=title, title_align="left"))
    summary = Text(
        f"scenario {report.get('scenario')}: live runs {report.get('live_revision')}, "
        f"canary runs {report.get('canary_revision')}, {report.get('seconds')}s",
        style="dim",
    )
    return Group(*panels, summary)
