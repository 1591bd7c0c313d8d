"""Operator commands: status, history, watch, approve/reject/abort/promote, publish."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import boto3
import typer
from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle import validate_bundle
from canaryfleet.logic.bundle.archive import zip_folder
from canaryfleet.models.artifact import APP_NAME_PATTERN, VERSION_PATTERN
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from canaryfleet_cli.platform import Platform, PlatformError, default_stack_name, history_of, status_of
from canaryfleet_cli.report import write_report

console = Console()
errors = Console(stderr=True, soft_wrap=True)

StackOption = typer.Option(
    None, "--stack", help="Platform stack name (default: samconfig.toml, else canaryfleet)."
)
RegionOption = typer.Option(None, "--region", help="AWS region (default: your AWS configuration).")
ProfileOption = typer.Option(None, "--profile", help="AWS profile to use.")
JsonOption = typer.Option(False, "--json", help="One JSON document for scripts.")


def _connect(stack: str | None, region: str | None, profile: str | None) -> Platform:
    try:
        return Platform.connect(stack or default_stack_name(), region, profile)
    except PlatformError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _text(value: object) -> Text:
    """A value from the platform (versions, reasons, names people typed) as text, never as Rich markup."""
    return Text(str(value))


def _emit(data: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    elif table is not None:
        console.print(table)


def status(
    application: str | None = typer.Argument(None, help="One application in detail; all when omitted."),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    as_json: bool = JsonOption,
) -> None:
    """Every application's current rollout: stage, canary weight, verdict, who it waits for."""
    platform = _connect(stack, region, profile)
    try:
        apps = [platform.application(application)] if application else platform.applications()
        rows = [status_of(platform, app) for app in apps]
    except PlatformError as exc:
        _fail(str(exc))
    table = Table(title=f"canaryfleet rollouts ({platform.stack})")
    for column in ("application", "version", "stage", "canary", "verdict", "waiting for", "since", "queued"):
        table.add_column(column)
    for row in rows:
        if not row["running"]:
            table.add_row(
                _text(row["application"]), "-", "[dim]idle[/dim]", "-", "-", "-", "-", str(row["queued"])
            )
            continue
        table.add_row(
            _text(row["application"]),
            _text(row["version"]),
            _text(row["stage"] or "queued"),
            f"{row['canary_weight']}%",
            _text(row["verdict"] or "-"),
            _text(row["waiting_for"] or "-"),
            _text(str(row["waiting_since"] or "-")[:19]),
            str(row["queued"]),
        )
    _emit(rows[0] if application else rows, as_json, table)
    if not as_json:
        for row in rows:
            for line in row.get("verdict_metrics") or []:
                console.print(_text(f"{row['application']} verdict: {line}"))
            for note in row.get("bundle_notes") or []:
                # The bundle's text is the builder's, not markup: printed as it is.
                console.print(
                    f"{row['application']}: note: {note}", markup=False, highlight=False, soft_wrap=True
                )


def history(
    application: str = typer.Argument(..., help="The application."),
    limit: int = typer.Option(20, min=1, help="How many rollouts, newest first."),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    as_json: bool = JsonOption,
) -> None:
    """Past rollouts with outcome, reason, who decided and how long they took."""
    platform = _connect(stack, region, profile)
    try:
        platform.application(application)
        rows = history_of(platform, application)[:limit]
    except PlatformError as exc:
        _fail(str(exc))
    table = Table(title=f"{application}: rollouts")
    for column in ("received", "version", "outcome", "reason", "decided", "took"):
        table.add_column(column)
    for row in rows:
        style = {"released": "green", "rolled_back": "red", "rejected": "yellow"}.get(str(row["outcome"]), "")
        table.add_row(
            str(row["received_at"] or "")[:19],
            _text(row["version"]),
            Text(str(row["outcome"]), style=style),
            _text(row["reason"] or "-"),
            _text(", ".join(row["decided_by"]) or "-"),
            f"{row['seconds']:.0f}s" if row["seconds"] is not None else "-",
        )
    _emit(rows, as_json, table)


def watch(
    application: str = typer.Argument(..., help="The application."),
    interval: float = typer.Option(2.0, min=0.1, help="Seconds between refreshes."),
    timeout: float = typer.Option(3600.0, min=1, help="Give up after this many seconds."),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
) -> None:
    """Follow the application's rollout until it ends (or the timeout)."""
    platform = _connect(stack, region, profile)
    try:
        app = platform.application(application)
    except PlatformError as exc:
        _fail(str(exc))
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    with Live(console=console, refresh_per_second=4) as live:
        while time.monotonic() < deadline:
            row = status_of(platform, app)
            if row["running"]:
                last = row
            live.update(_watch_view(application, row, last))
            if not row["running"]:
                break
            time.sleep(interval)
    if last:
        ended = next(
            (h for h in history_of(platform, application) if h["rollout_id"] == last["rollout_id"]), None
        )
        if ended:
            said = f"{application} {ended['version']}: {ended['outcome']} {ended['reason']}".rstrip()
            console.print(said, markup=False, highlight=False)


_STAGES = ["started", "canary_deployed", "traffic_shifted", "verdict", "awaiting_approval", "released"]


def _watch_view(application: str, row: dict[str, Any], last: dict[str, Any]) -> Table:
    table = Table(
        title=f"{application}: {'running' if row['running'] else 'no rollout running'}", show_header=False
    )
    current = row.get("stage") or last.get("stage")
    reached = _STAGES.index(current) if current in _STAGES else -1
    table.add_row(
        "stages",
        " -> ".join(
            f"[green]{s}[/green]" if i <= reached else f"[dim]{s}[/dim]" for i, s in enumerate(_STAGES)
        ),
    )
    if row["running"]:
        table.add_row("version", _text(row["version"]))
        table.add_row("canary weight", f"{row['canary_weight']}%")
        table.add_row("verdict", _text(row["verdict"] or "-"))
        table.add_row(
            "waiting for",
            _text(f"{row['waiting_for'] or '-'} (since {str(row['waiting_since'] or '-')[:19]})"),
        )
    return table


def _decide(
    action: str,
    application: str,
    reason: str,
    stack: str | None,
    region: str | None,
    profile: str | None,
    as_json: bool,
    extra: dict[str, Any] | None = None,
) -> None:
    platform = _connect(stack, region, profile)
    try:
        platform.application(application)
        result = platform.decide(
            {
                "application": application,
                "action": action,
                "by": platform.caller(),
                "reason": reason,
                "channel": "cli",
                **(extra or {}),
            }
        )
    except PlatformError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    words = {
        "applied": "done",
        "recorded": "recorded; it takes effect at the next wait",
        "already_decided": "already decided",
    }
    said = (
        f"{action} {application} ({result['rollout_id']}): {words.get(result['outcome'], result['outcome'])}"
    )
    if result.get("detail"):
        said += f"; {result['detail']}"
    console.print(said, markup=False, highlight=False)


AuditComment = typer.Option("", "--reason", help="Comment kept in the audit.")
RequiredReason = typer.Option(..., "--reason", help="Why (shown in the rollback's reason).")


def _decision_command(action: str, reason_option: Any, summary: str) -> Callable[..., None]:
    """One operator decision as a command: the four differ only in the action, its reason and help."""

    def command(
        application: str = typer.Argument(...),
        reason: str = reason_option,
        stack: str | None = StackOption,
        region: str | None = RegionOption,
        profile: str | None = ProfileOption,
        as_json: bool = JsonOption,
    ) -> None:
        _decide(action, application, reason, stack, region, profile, as_json)

    command.__name__ = command.__qualname__ = action  # typer names the command after the function
    command.__doc__ = summary
    return command


approve = _decision_command("approve", AuditComment, "Approve the rollout waiting for approval.")
reject = _decision_command(
    "reject", RequiredReason, "Reject the rollout waiting for approval; it rolls back."
)
abort = _decision_command("abort", RequiredReason, "Abort the running rollout at once; it rolls back.")


def promote(
    application: str = typer.Argument(...),
    reason: str = AuditComment,
    override_window: bool = typer.Option(
        False,
        "--override-window",
        help="Also release outside the deployment windows and during freezes (needs --reason; audited, "
        "posted to the rollout's Slack thread and outcome email).",
    ),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    as_json: bool = JsonOption,
) -> None:
    """Skip the remaining bakes and approvals; the rollout goes live."""
    if override_window and not reason.strip():
        raise typer.BadParameter("say why the window or freeze is overridden", param_hint="--reason")
    extra = {"override_window": True} if override_window else {}
    _decide("promote", application, reason, stack, region, profile, as_json, extra)


def _ci_default(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def publish(
    application: str = typer.Argument(..., help="The application."),
    version: str = typer.Argument(..., help="The build's version."),
    path: Path = typer.Argument(
        ...,
        exists=True,
        help="Folder with appspec.yml at its root, or a .zip that CI already built (uploaded as is).",
    ),
    commit: str | None = typer.Option(None, help="Commit (default: GIT_COMMIT or GITHUB_SHA)."),
    build_url: str | None = typer.Option(None, help="Build URL (default: BUILD_URL, or the GitHub run)."),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    as_json: bool = JsonOption,
) -> None:
    """Zip a build (or take CI's zip), check it as the platform will, upload it: its rollout starts."""
    if not re.fullmatch(APP_NAME_PATTERN.strip("^$"), application):
        raise typer.BadParameter(
            "2-40 lowercase letters, digits or '-', starting with a letter", param_hint="APPLICATION"
        )
    if not re.fullmatch(VERSION_PATTERN.strip("^$"), version):
        raise typer.BadParameter("1-64 letters, digits or '._+-'", param_hint="VERSION")
    if path.is_dir():
        body = zip_folder(path)
    elif path.suffix.lower() == ".zip":
        # A zip CI built is uploaded byte for byte: what was checked is what deploys.
        body = path.read_bytes()
    else:
        raise typer.BadParameter("a folder with appspec.yml at its root, or a .zip file", param_hint="PATH")
    try:
        report = validate_bundle(body)
    except InvalidBundle as exc:
        _fail(f"the platform would reject this bundle: {exc.reason}")
    platform = _connect(stack, region, profile)
    try:
        platform.application(application)
    except PlatformError as exc:
        _fail(str(exc))
    github_run = None
    if os.environ.get("GITHUB_RUN_ID"):
        github_run = (
            f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{os.environ.get('GITHUB_REPOSITORY')}"
            f"/actions/runs/{os.environ['GITHUB_RUN_ID']}"
        )
    metadata = {
        key: value
        for key, value in {
            "commit": commit or _ci_default("GIT_COMMIT", "GITHUB_SHA"),
            "build-url": build_url or _ci_default("BUILD_URL") or github_run,
        }.items()
        if value
    }
    bucket = platform.output("ArtifactBucketName")
    key = f"{application}/{version}.zip"
    put = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata)
    result = {
        "bucket": bucket,
        "key": key,
        "version_id": put.get("VersionId"),
        "bytes": len(body),
        "entries": report.entries,
        "hooks": report.hooks,
        "notes": report.notes,
        "metadata": metadata,
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        size = f"{len(body):,} bytes, {report.entries} entries"
        console.print(f"published s3://{bucket}/{key} ({size}); its rollout starts now")
        for note in report.notes:
            # Bundle text is the builder's, not markup: printed as it is.
            console.print(f"note: {note}", markup=False, highlight=False)


def report(
    rollout_id: str = typer.Argument(..., help="The rollout (canaryfleet history shows them)."),
    html: Path = typer.Option(..., "--html", dir_okay=False, help="Where to write the page."),
    application: str | None = typer.Option(
        None, help="The application (found from the rollout id if omitted)."
    ),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
) -> None:
    """One self-contained HTML page with the timeline of a rollout."""
    platform = _connect(stack, region, profile)
    try:
        apps = [platform.application(application)] if application else platform.applications()
    except PlatformError as exc:
        _fail(str(exc))
    candidates = [a for a in apps if rollout_id.startswith(f"{a.application}-")]
    for app in sorted(candidates, key=lambda a: len(a.application), reverse=True):
        record = platform.store.get(app.application, rollout_id)
        if record is not None:
            path = write_report(record, app, html)
            console.print(f"wrote {path}")
            return
    _fail(f"no rollout {rollout_id}")


def register(app: typer.Typer) -> None:
    for command in (status, history, watch, approve, reject, abort, promote, publish, report):
        app.command()(command)
