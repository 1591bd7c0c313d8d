"""One rollout as an operator reads it, in the spirit of `kubectl argo rollouts get rollout`.

Used by `status APP`, `watch` and the demo. The policy's steps are numbered with the current
one marked; the bake's time left, who is awaited and when the approval expires; live and
canary versions with the traffic split; canary against live. Internal state names (stages,
wait kinds) appear only when asked for (``verbose``). Times are local, with their age.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from canaryfleet.logic.calendar import describe_wait
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.policy import Approval, Bake, RolloutPolicy, SetWeight, default_policy
from canaryfleet.models.rollout import Stage
from canaryfleet.models.rollout_record import RolloutRecord
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from canaryfleet_cli.plain import one_line, plain_text

OUTCOME_WORDS = {"released": "released", "rolled_back": "rolled back", "rejected": "rejected"}
OUTCOME_STYLES = {"released": "green", "rolled_back": "red", "rejected": "yellow"}
# Each step state's mark and its style.
STEP_SYMBOLS = {
    "done": ("✔", "green"),
    "current": ("▶", "bold cyan"),
    "stopped": ("✘", "bold red"),
    "pending": (" ", ""),
}


@dataclass(frozen=True)
class ViewStep:
    number: int
    text: str
    state: str  # done, current, stopped (where an ended rollout stopped), pending


def local_time(at: datetime | None, now: datetime | None = None) -> str:
    """``14:02:07 (3m ago)`` in the machine's time zone; ``-`` for no time."""
    if at is None:
        return "-"
    now = now or datetime.now(UTC)
    when = at.astimezone().strftime("%Y-%m-%d %H:%M:%S" if (now - at).days >= 1 else "%H:%M:%S")
    return f"{when} ({age(now - at)} ago)" if at <= now else f"{when} (in {age(at - now)})"


def age(delta: object) -> str:
    seconds = int(max(0.0, delta.total_seconds()))  # type: ignore[attr-defined]
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 90 * 60:
        return f"{seconds // 60}m"
    if seconds < 36 * 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"


def _current_step_index(app: AppConfig, record: RolloutRecord, queued: bool = False) -> int | None:
    """Which of the displayed steps (0: deploy canary, 1..n: the policy, n+1: deploy live) runs;
    None for none (ended, rolling back, or ``queued``: waiting for its turn, no step begun)."""
    steps = policy_of(app, record).steps
    if queued or record.outcome is not None or rolling_back(record):
        return None
    if record.stage_traffic_shifted_at is None:
        return 0  # the canary deployment and its health check
    approved = record.decision is not None and record.decision.kind == "approve"
    if approved or record.promoted_by or record.wait_kind == "deployment":
        return len(steps) + 1
    weight = record.current_weight
    # The last set_weight reaching the current weight; the wait after it is the current step.
    start = max(
        (i for i, s in enumerate(steps) if isinstance(s, SetWeight) and s.weight == weight), default=0
    )
    kind: type[Bake] | type[Approval] | None = None
    if record.wait_kind == "bake":
        kind = Bake
    elif record.wait_kind == "approval":
        kind = Approval
    if kind is not None:
        found = next((i for i in range(start, len(steps)) if isinstance(steps[i], kind)), None)
        if found is not None:
            return found + 1
    return start + 1


def policy_of(app: AppConfig, record: RolloutRecord | None = None) -> RolloutPolicy:
    """The policy the rollout runs by (its bundle's rollout.yaml's, kept on its record), else the
    application's (its registry entry's, else the platform's default)."""
    if record is not None and record.policy is not None:
        return record.policy
    return app.policy or default_policy()


def rolling_back(record: RolloutRecord) -> bool:
    """Rejected, aborted or failed, and not yet ended: the platform is restoring the groups."""
    rejected = record.decision is not None and record.decision.kind == "reject"
    return record.outcome is None and (
        rejected or record.abort_requested is not None or record.stage_rolled_back_at is not None
    )


def view_steps(app: AppConfig, record: RolloutRecord, queued: bool = False) -> list[ViewStep]:
    """The steps, numbered and marked; ``queued`` (waiting for its turn): every one pending."""
    texts = ["deploy the build to the canary group"]
    for step in policy_of(app, record).steps:
        if isinstance(step, SetWeight):
            texts.append(f"set canary weight {step.weight}%")
        elif isinstance(step, Bake):
            analysis = ", then compare canary with live" if step.analysis else ""
            texts.append(f"bake {age_words(step.duration_seconds)}{analysis}")
        else:
            texts.append(
                f"wait for approval (up to {age_words(step.timeout_seconds)}, then {step.on_timeout.value})"
            )
    texts.append("deploy the build to the live group")
    current = _current_step_index(app, record, queued)
    released = record.outcome == "released"
    stopped = _stopped_index(app, record) if record.outcome in ("rolled_back", "rejected") else None
    result = []
    for number, text in enumerate(texts):
        if stopped is not None:
            state = "done" if number < stopped else "stopped" if number == stopped else "pending"
        elif current is None:
            state = "done" if released else "pending"
        else:
            state = "done" if number < current else "current" if number == current else "pending"
        result.append(ViewStep(number, text, state))
    return result


def _stopped_index(app: AppConfig, record: RolloutRecord) -> int | None:
    """The displayed step a rolled-back or rejected rollout ended at; None if it never started."""
    if record.execution_arn is None:
        return None  # refused on arrival (its bundle, or its version): no step ran
    steps = policy_of(app, record).steps
    if record.stage_traffic_shifted_at is None:
        return 0
    approved = record.decision is not None and record.decision.kind == "approve"
    if approved or record.promoted_by:
        return len(steps) + 1  # the live deployment failed
    raised = [entry.weight for _, entry in record.weight_history() if entry.weight > 0]
    weight = raised[-1] if raised else 0
    start = max(
        (i for i, s in enumerate(steps) if isinstance(s, SetWeight) and s.weight == weight), default=0
    )
    kind: type[Bake] | type[Approval] = Bake
    if record.stage_at(Stage.AWAITING_APPROVAL) is not None:
        kind = Approval  # rejected, or its approval expired
    found = next((i for i in range(start, len(steps)) if isinstance(steps[i], kind)), None)
    return (found if found is not None else start) + 1


def age_words(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def awaited(app: AppConfig, record: RolloutRecord, now: datetime | None = None) -> str:
    """Who or what the rollout waits for, said for a person."""
    now = now or datetime.now(UTC)
    if record.wait_kind == "approval":
        people = ", ".join([*app.approvers.emails, *app.approvers.slack_user_ids]) or "an approver"
        expires = (
            f"; expires {local_time(record.approval_expires_at, now)}" if record.approval_expires_at else ""
        )
        return f"{people} to approve or reject{expires}"
    if record.wait_kind == "bake":
        left = ""
        step = _bake_step(app, record)
        # The wait's own start: an extension's analysis window starts with the bake it extends.
        if step is not None and record.wait_started_at is not None:
            remaining = step.duration_seconds - (now - record.wait_started_at).total_seconds()
            left = f"; {age_words(max(0, int(remaining)))} left" if remaining > 0 else "; ending"
        return f"the bake (an alarm ends it early){left}"
    if record.wait_kind == "deployment":
        return "CodeDeploy"
    if record.wait_kind == "window":
        return window_wait_text(record, now, say_step=True)
    return "the platform (between waits)"


def window_wait_text(record: RolloutRecord, now: datetime, say_step: bool = False) -> str:
    """ "the window that opens at 06:00 IST (in 9h 12m)", from the rollout's latest calendar wait;
    ``say_step`` adds which step waits ("before the canary", "before going live")."""
    waits = [w for w in record.window_waits.values() if not w.ended]
    if not waits:
        return "the deployment window"
    wait = max(waits, key=lambda w: w.started)
    step = ""
    if say_step:
        step = " before the canary" if wait.guard == "canary" else " before going live"
    return f"{describe_wait(wait.until, wait.kind, wait.timezone, now)}{step}: {wait.reason}"


def _bake_step(app: AppConfig, record: RolloutRecord) -> Bake | None:
    index = _current_step_index(app, record)
    steps = policy_of(app, record).steps
    if index is None or not 1 <= index <= len(steps):
        return None
    step = steps[index - 1]
    return step if isinstance(step, Bake) else None


def render_rollout(
    app: AppConfig,
    record: RolloutRecord,
    live_version: str | None,
    verbose: bool = False,
    now: datetime | None = None,
    queued_behind: str | None = None,
) -> RenderableType:
    """The rollout's panel: versions and split, steps, what it waits for, canary against live.

    ``queued_behind``: the rollout it waits for its turn behind (``platform.queued_behind``).
    """
    now = now or datetime.now(UTC)
    weight = record.current_weight
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Name", Text(f"{record.application}  (rollout {record.rollout_id})"))
    if record.outcome:
        style = OUTCOME_STYLES.get(record.outcome, "")
        said = OUTCOME_WORDS.get(record.outcome, record.outcome)
        head.add_row("Status", plain_text(f"{said} {record.reason or ''}".rstrip(), style=style))
    elif rolling_back(record):
        head.add_row("Status", Text("rolling back: restoring the last released build", style="red"))
    elif queued_behind is not None:
        head.add_row("Status", plain_text(queued_text(queued_behind)))
    else:
        head.add_row("Status", Text("running, waiting for " + awaited(app, record, now)))
    live_color = f"{record.live_color}, " if record.live_color else ""
    release_color = f"{record.release_color}, " if record.release_color else ""
    head.add_row(
        "Live", Text(f"{live_version or 'no release yet'}  ({live_color}{100 - weight}% of traffic)")
    )
    head.add_row("Canary", Text(f"{record.version}  ({release_color}{weight}% of traffic)"))
    colors = record.color_text()
    if colors:
        head.add_row("Colors", Text(f"blue/green: {colors}"))
    head.add_row("Started", Text(local_time(record.received_at, now)))
    if record.commit:
        head.add_row("Commit", Text(record.commit[:12]))
    if verbose:
        head.add_row(
            "State", Text(f"stage={record.current_stage} wait={record.wait_kind} status={record.status}")
        )
    steps = Table(title="Steps", title_justify="left", show_header=False, box=None, padding=(0, 1))
    for step in view_steps(app, record, queued=queued_behind is not None):
        symbol, mark_style = STEP_SYMBOLS[step.state]
        mark = Text(symbol, style=mark_style)
        steps.add_row(
            mark, f"{step.number}.", Text(step.text, style="bold" if step.state == "current" else "")
        )
    parts: list[RenderableType] = [head, steps]
    verdict = record.verdict
    if verdict is not None:
        compare = Table(title=f"Canary against live: {verdict.result}", title_justify="left")
        for column in ("", "canary", "live"):
            compare.add_column(column)
        compare.add_row("requests", f"{verdict.canary_requests:,.0f}", f"{verdict.live_requests:,.0f}")
        compare.add_row("5xx rate", f"{verdict.canary_error_rate:.2%}", f"{verdict.live_error_rate:.2%}")
        compare.add_row("latency", _ms(verdict.canary_latency), _ms(verdict.live_latency))
        parts.append(compare)
        for reason in verdict.reasons:
            parts.append(plain_text(f"  {reason}"))
    return Group(*parts)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def queued_text(behind: str) -> str:
    return f"queued behind {behind}: it starts when that rollout ends"


def summary_line(
    app: AppConfig, record: RolloutRecord, now: datetime | None = None, queued_behind: str | None = None
) -> str:
    """One line of the rollout's state, for logs (a pipe gets one per change); ``queued_behind``
    as for :func:`render_rollout`."""
    if record.outcome:
        words = OUTCOME_WORDS.get(record.outcome, record.outcome)
        return one_line(f"{record.application} {record.version}: {words} {record.reason or ''}".rstrip())
    if rolling_back(record):
        return f"{record.application} {record.version}: rolling back; canary {record.current_weight}%"
    if queued_behind is not None:
        return one_line(f"{record.application} {record.version}: {queued_text(queued_behind)}")
    steps = view_steps(app, record)
    current = next((s for s in steps if s.state == "current"), None)
    step = f"step {current.number}/{len(steps) - 1} {current.text}" if current else "starting"
    verdict = f", verdict {record.verdict.result}" if record.verdict else ""
    # The age is left out on purpose: a line is printed when the rollout changes, not the clock.
    waiting = awaited(app, record, now).split(";")[0]
    colors = f"; {record.color_text()}" if record.color_text() else ""
    return one_line(
        f"{record.application} {record.version}: {step}; canary {record.current_weight}%{verdict}; "
        f"waiting for {waiting}{colors}"
    )
