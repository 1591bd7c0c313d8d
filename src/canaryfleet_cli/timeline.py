"""Rich renderings of rollouts for people at a terminal."""

from __future__ import annotations

from typing import Any

from canaryfleet.logic.analysis.words import metric_lines
from canaryfleet.models.rollout import Verdict
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from canaryfleet_cli.plain import plain_text
from canaryfleet_cli.rollout_view import STEP_SYMBOLS, ViewStep

_OUTCOME_STYLE = {"released": "green", "rolled_back": "red", "rejected": "yellow"}


# What the platform's default policy does on AWS, which local scenarios compress.
_AWS_DEFAULT = "on AWS the default is a 5% canary, a 10-minute bake and an approval that waits 24 h"


def policy_words(policy: dict[str, Any]) -> str:
    """A scenario's policy in words, with what its compressed durations stand for."""
    said = []
    for step in policy.get("steps", []):
        if step.get("kind") == "set_weight":
            said.append(f"{step['weight']}% canary")
        elif step.get("kind") == "bake":
            said.append(f"a {step['duration_seconds']} s bake")
        elif step.get("kind") == "approval":
            said.append(f"an approval that waits {step['timeout_seconds']} s")
    return f"policy: {', '.join(said)}: times compressed so the story takes seconds ({_AWS_DEFAULT})"


def render_rollouts(
    report: dict[str, Any], verbose: bool = False, steps: dict[str, list[ViewStep]] | None = None
) -> Group:
    """Each rollout of a local run as a panel; ``steps`` (by rollout id) adds the policy's numbered
    steps as `status` and `watch` show them, marked where each rollout got to."""
    panels = []
    for rollout in report.get("rollouts", []):
        outcome = str(rollout.get("outcome"))
        style = _OUTCOME_STYLE.get(outcome, "white")
        table = Table(show_header=False, box=None, pad_edge=False)
        shown = (steps or {}).get(str(rollout.get("rollout_id")), [])
        if shown:
            marked = Text()
            for step in shown:
                symbol, mark_style = STEP_SYMBOLS[step.state]
                marked.append(f"{symbol} ", style=mark_style).append(f"{step.number}. {step.text}  ")
            table.add_row("steps", marked)
        stages = " -> ".join(
            f"{s['stage'].replace('_', ' ')} ({s['seconds']:.1f}s)" for s in rollout.get("stages", [])
        )
        table.add_row("stages", Text(stages or "-"))
        if verbose:  # the state machine's own state names
            table.add_row("states", Text(" -> ".join(rollout.get("state_transitions", [])) or "-"))
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
            # Who decided and what they said are people's text: never Rich markup nor terminal codes.
            said = f"{decision.get('kind')} by {decision.get('by')} ({decision.get('reason')})"
            table.add_row("decision", plain_text(said))
        if rollout.get("reason"):
            table.add_row("reason", plain_text(rollout["reason"], style=style))
        title = Text.assemble(
            (f"{rollout.get('version')} ", "bold"), (outcome.replace("_", " "), f"bold {style}")
        )
        panels.append(Panel(table, title=title, title_align="left"))
    summary = Text(
        f"scenario {report.get('scenario')}: live runs {report.get('live_revision')}, "
        f"canary runs {report.get('canary_revision')}, {report.get('seconds')}s",
        style="dim",
    )
    if report.get("policy"):
        return Group(Text(policy_words(report["policy"]), style="dim"), *panels, summary)
    return Group(*panels, summary)
