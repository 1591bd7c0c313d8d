"""What people read about a rollout: its Slack card and thread replies, and the email summary.

Everything that comes from outside (reasons, versions, comments) is escaped for Slack's
mrkdwn, so no notice can mention @channel or fake a link. Nothing here holds a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from canaryfleet.logic.approval_messages import slack_mention, verdict_metric_lines, verdict_summary
from canaryfleet.models.notification import Notice
from canaryfleet.models.rollout import Stage, Verdict
from canaryfleet.models.rollout_record import AuditEntry, RolloutRecord
from canaryfleet.models.sns_subject import ELLIPSIS, SNS_SUBJECT_MAX_CHARACTERS, sns_subject
from canaryfleet.models.text import escaped, quoted, slack_cut, slack_escape

_HEADLINES = {
    "rollout.started": (":hourglass_flowing_sand:", "Rollout started"),
    "rollout.canary_deployed": (":package:", "Canary deployed"),
    "rollout.traffic_shifted": (":twisted_rightwards_arrows:", "Canary takes traffic"),
    "rollout.verdict": (":mag:", "Canary analysed"),
    "rollout.awaiting_approval": (":raised_hand:", "Waiting for approval"),
    "rollout.window_overridden": (":unlock:", "Deployment window or freeze overridden"),
    "rollout.released": (":white_check_mark:", "Released"),
    "rollout.rolled_back": (":rewind:", "Rolled back"),
    "rollout.rejected": (":no_entry:", "Upload rejected"),
    "drain.logs_lost": (":warning:", "Instance left without all of its logs"),
}
_OUTCOMES = {
    "rollout.released": "released",
    "rollout.rolled_back": "rolled back",
    "rollout.rejected": "rejected",
}
# The stages a summary lists, in the order a rollout meets them.
_STAGE_NAMES = {stage: stage.value.replace("_", " ") for stage in Stage}


def _when(at: datetime) -> str:
    """An instant as UTC, whatever offset it carries (older waits kept a freeze's end as typed)."""
    utc = at.astimezone(UTC) if at.tzinfo is not None else at  # naive: already UTC
    return utc.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _verdict(value: Any) -> Verdict | None:
    try:
        return Verdict.model_validate(value) if value else None
    except ValidationError:
        return None


def who_decided(entry: AuditEntry) -> str | None:
    """An audit entry as people read it: a person's decision, or an approval nobody answered."""
    kind = entry.kind
    if kind in ("approve", "reject", "abort", "promote"):
        return f"{kind} by {entry.by or 'unknown'}"
    if kind == "approval_expired":
        return "approval expired unanswered"
    if kind == "window_override":
        return f"deployment window or freeze overridden by {entry.by or 'unknown'}"
    return None


def headline(notice: Notice) -> str:
    """One line of plain text: what happened (Slack's notification text and the email subject)."""
    _, words = _HEADLINES.get(notice.kind, ("", notice.kind))
    subject = f"{notice.application} {notice.version}".strip()
    if notice.kind == "drain.logs_lost":
        subject = f"{notice.application} {notice.body.get('instance_id', '')}".strip()
    return f"{subject}: {words}" + (f": {notice.reason}" if notice.reason else "")


def _started_colors(detail: dict[str, Any]) -> list[str]:
    """Blue/green: which color serves and which comes up with the build (none in place)."""
    live = detail.get("live_color")
    if live not in ("blue", "green"):
        return []
    idle = "green" if live == "blue" else "blue"
    return [f"blue/green: {live} is live; {idle} comes up on fresh instances with this build"]


def detail_lines(notice: Notice, bundle_notes: Sequence[str] = ()) -> list[str]:
    """The facts of one notice, in mrkdwn (escaped), for its thread reply; a started notice lists
    ``bundle_notes`` (the upload check's: bakes too short to judge, what CodeDeploy's agent will
    ignore in the bundle; from the rollout record)."""
    body, detail = notice.body, notice.body.get("detail") or {}
    lines: list[str] = []
    if notice.kind == "rollout.started":
        lines.extend(_started_colors(detail))
        lines.extend(f"• {slack_escape(escaped(note))}" for note in bundle_notes)
    elif notice.kind == "rollout.traffic_shifted":
        release, live = detail.get("release_color"), detail.get("live_color")
        canary = f" ({slack_escape(str(release))})" if release else ""
        serving = f" ({slack_escape(str(live))})" if live else ""
        lines.append(f"canary{canary} {detail.get('canary', '?')}%, live{serving} {detail.get('live', '?')}%")
    elif notice.kind == "rollout.verdict":
        verdict = _verdict(detail)
        lines.append(slack_escape(verdict_summary(verdict)))
        lines.extend(f"• {slack_escape(r)}" for r in (verdict.reasons if verdict else []))
        lines.extend(f"◦ {slack_escape(line)}" for line in verdict_metric_lines(verdict))
    elif notice.kind == "rollout.awaiting_approval":
        approvers = detail.get("approvers") or {}
        # Slack users as mentions (they were escaped into "&lt;@U...&gt;" before), emails as text.
        people = [
            *(slack_escape(str(e)) for e in approvers.get("emails", [])),
            *(slack_mention(str(u)) for u in approvers.get("slack_user_ids", [])),
        ]
        if people:
            lines.append("approvers: " + ", ".join(people))
        if detail.get("expires_at"):
            lines.append(f"until {slack_escape(str(detail['expires_at']))}")
    elif notice.kind == "rollout.window_overridden":
        said = f"by {body.get('by', '?')}: {body.get('reason') or 'no reason given'}"
        lines.append(slack_escape(said))
    elif notice.kind in _OUTCOMES and notice.reason:
        # A release has a reason only when its record failed (logic/record_stage.py).
        lines.append(f"reason: {slack_escape(notice.reason)}")
    elif notice.kind == "drain.logs_lost":
        trigger, side = slack_escape(str(body.get("trigger", "?"))), slack_escape(str(body.get("side", "?")))
        lines.append(
            f"{trigger} on the {side} side after {body.get('attempts', '?')} attempt(s): "
            f"{slack_escape(notice.reason or 'unknown')}"
        )
        if body.get("log_prefix"):
            lines.append(f"logs so far: `{slack_escape(str(body['log_prefix']))}`")
        if body.get("termination_hook"):
            lines.append(f"termination hook: {slack_escape(str(body['termination_hook']))}")
    seconds, previous = body.get("previous_stage_seconds"), body.get("previous_stage")
    if isinstance(seconds, int | float) and previous:
        lines.append(f"{slack_escape(str(previous).replace('_', ' '))} took {_duration(float(seconds))}")
    return lines


def reply_blocks(notice: Notice, bundle_notes: Sequence[str] = ()) -> tuple[str, list[dict[str, Any]]]:
    """A thread reply (or a message of its own): emoji, headline, facts, when. A stage met at
    each canary step says which step of the policy it is (counted from 1, as the policy lists
    them): a thread can hold several shifts, verdicts and approvals."""
    emoji, words = _HEADLINES.get(notice.kind, (":information_source:", notice.kind))
    text = "\n".join([f"{emoji} *{words}*{_step_words(notice)}", *detail_lines(notice, bundle_notes)])
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": slack_cut(text, 2900)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _when(notice.published_at)}]},
    ]
    return slack_cut(slack_escape(headline(notice)), 300), blocks


def _step_words(notice: Notice) -> str:
    """Which step of the policy a stage met at each canary step is (counted from 1, as the
    policy lists them), and whether its bake was extended; nothing for any other stage."""
    if notice.step is None:
        return ""
    if notice.extension:
        times = "" if notice.extension == 1 else f" {notice.extension} times"
        return f" (policy step {notice.step + 1}, bake extended{times})"
    return f" (policy step {notice.step + 1})"


def card_blocks(notice: Notice) -> tuple[str, list[dict[str, Any]]]:
    """The thread's first message: the rollout and the furthest stage it has reached (at which
    policy step, for a stage met at each: ``Notice.progress`` orders them by step)."""
    emoji, words = _HEADLINES.get(notice.kind, (":information_source:", notice.kind))
    status = f"{emoji} *{words}*{_step_words(notice)}"
    if notice.reason and notice.kind in _OUTCOMES:
        status += f": {slack_escape(notice.reason)}"
    facts = f"rollout `{slack_escape(notice.rollout_id or '-')}` · updated {_when(notice.published_at)}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{notice.application} {notice.version}".strip()[:150]},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": slack_cut(status, 2900)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": facts}]},
    ]
    return slack_cut(slack_escape(headline(notice)), 300), blocks


def _outcome_subject(application: str, version: str, outcome: str) -> str:
    """``canaryfleet <app> <version>: <outcome>`` within SNS's Subject limit, the outcome always
    in it: a version too long for the rest is cut in its middle (its start and its build suffix
    both say which build it is)."""
    head, tail = f"canaryfleet {application} ", f": {outcome}"
    room = SNS_SUBJECT_MAX_CHARACTERS - len(head) - len(tail)
    if len(version) > room:
        keep = max(0, room - len(ELLIPSIS))
        version = version[: keep - keep // 2] + ELLIPSIS + version[len(version) - keep // 2 :]
    return sns_subject(f"{head}{version}{tail}")


def summary_email(notice: Notice, record: RolloutRecord | None) -> tuple[str, str]:
    """The final outcome's email: subject and plain-text body, from the notice and the rollout record."""
    outcome = _OUTCOMES.get(notice.kind, notice.kind)
    lines = [f"{notice.application} {notice.version} was {outcome}.", ""]
    if notice.reason:
        # A reason can carry a person's multi-line comment: quoted, none of its lines passes for ours.
        reason = notice.reason if "\n" not in notice.reason else "\n" + quoted(notice.reason)
        lines += [f"Reason: {reason}", ""]
    lines.append(f"Rollout: {notice.rollout_id or '-'}")
    if record is not None and record.commit:
        lines.append(f"Commit: {record.commit}")
    if record is not None and record.build_url:
        lines.append(f"Build: {record.build_url}")
    started = record.received_at if record is not None else None
    ended = record.ended_at if record is not None else None
    if started:
        lines.append(f"Received: {_when(started)}")
    end = ended or notice.published_at
    took = f" (after {_duration((end - started).total_seconds())})" if started else ""
    lines.append(f"Ended: {_when(end)}{took}")
    colors = record.color_text() if record is not None else None
    if colors:
        lines.append(f"Blue/green: {colors}")
    verdict = record.verdict if record is not None else None
    if verdict is not None:
        lines.append(f"Canary analysis: {verdict_summary(verdict)}")
    decisions = [said for said in map(who_decided, record.audit if record is not None else []) if said]
    if decisions:
        lines.append("Decisions: " + "; ".join(decisions))
    for entry in record.audit if record is not None else []:
        said = who_decided(entry)
        if said and entry.reason:
            lines += [f"{said} said:", quoted(entry.reason)]
    for wait in record.calendar_waits() if record is not None else []:
        step = "the canary" if wait.guard == "canary" else "going live"
        span = f"{_when(wait.started)} to {_when(wait.until)}"
        # A freeze's reason is a person's text: on one line, so none of it passes for ours.
        lines.append(f"Waited for the calendar before {step}: {span} ({escaped(wait.reason)})")
    notes = record.bundle_notes if record is not None else []
    if notes:
        lines += [
            "",
            "Upload notes (bakes too short to judge, what CodeDeploy's agent ignores in the bundle):",
        ]
        lines += [f"  - {escaped(note)}" for note in notes]  # one line each: a note quotes keys
    stages = [
        (name, at)
        for stage, name in _STAGE_NAMES.items()
        if record is not None and (at := record.stage_at(stage)) is not None
    ]
    if stages:
        lines += ["", "Stages:"]
        lines += [f"  {name:<18} {_when(at)}" for name, at in sorted(stages, key=lambda s: s[1])]
    lines += ["", "canaryfleet history " + notice.application + " shows every rollout of the application."]
    return _outcome_subject(notice.application, notice.version, outcome), "\n".join(lines) + "\n"
