"""Operator commands: status, history, watch, approve/reject/abort/promote, publish."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import typer
from canaryfleet.errors import InvalidBundle
from canaryfleet.models.artifact import APP_NAME_PATTERN, VERSION_PATTERN
from canaryfleet.models.decision import OperatorDecision, recorded_words
from canaryfleet.models.rollout import MAX_BUILD_URL, MAX_COMMIT, build_url_kept, commit_kept
from canaryfleet.models.rollout_record import RolloutRecord
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from canaryfleet_cli.local_endpoint import LocalOption
from canaryfleet_cli.options import JsonOption, ProfileOption, RegionOption, StackOption
from canaryfleet_cli.plain import fail, one_line, plain_text, warn
from canaryfleet_cli.platform import (
    Platform,
    PlatformError,
    aws_client_config,
    connect_platform,
    history_of,
    live_version,
    running_rollout,
    status_of,
)
from canaryfleet_cli.rollout_view import (
    ViewStep,
    local_time,
    render_rollout,
    rolling_back,
    view_steps,
)
from canaryfleet_cli.watch import watch

console = Console()


def _connect(stack: str | None, region: str | None, profile: str | None, local: bool = False) -> Platform:
    try:
        return connect_platform(stack, region, profile, local)
    except PlatformError as exc:
        fail(str(exc))


def _text(value: object) -> Text:
    """A value from the platform (versions, reasons, names people typed) as text: never Rich
    markup, never a terminal's control sequence (:func:`plain.plain_text`)."""
    return plain_text(value)


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
    local: bool = LocalOption,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show internal state names too."),
) -> None:
    """Every application's current rollout: step, canary weight, verdict, who it waits for."""
    platform = _connect(stack, region, profile, local)
    try:
        apps = [platform.application(application)] if application else platform.applications()
        rows = [status_of(platform, app) for app in apps]
    except PlatformError as exc:
        fail(str(exc))
    if as_json:
        _emit(rows[0] if application else rows, as_json)
        return
    if application and rows[0]["running"]:
        record = platform.store.get(application, rows[0]["rollout_id"])
        if record is not None:
            live = live_version(platform, application)
            console.print(render_rollout(apps[0], record, live, verbose=verbose))
            _print_notes(rows)
            return
    table = Table(title=f"canaryfleet rollouts ({platform.stack})")
    # On one line and whole, however narrow the terminal: every other command takes it.
    table.add_column(
        "application", no_wrap=True, min_width=max((len(a.application) for a in apps), default=2)
    )
    columns = ["version", "step", "canary", "verdict", "waiting for", "since", "queued"]
    for column in columns + (["state"] if verbose else []):
        table.add_column(column)
    for app, row in zip(apps, rows, strict=True):
        if not row["running"]:
            cells: list[Text | str] = [
                _text(row["application"]),
                "-",
                "[dim]idle[/dim]",
                "-",
                "-",
                "-",
                "-",
                str(row["queued"]),
            ]
            extra: list[Text | str] = ["-"] if verbose else []
            table.add_row(*cells, *extra)
            continue
        record = platform.store.get(app.application, row["rollout_id"])
        current = next((s for s in view_steps(app, record) if s.state == "current"), None) if record else None
        cells = [
            _text(row["application"]),
            _text(row["version"]),
            _text(_step_text(record, current)),
            f"{row['canary_weight']}%",
            _text(row["verdict"] or "-"),
            _text(row["waiting_for"] or "-"),
            _text(local_time(record.wait_started_at) if record and record.wait_started_at else "-"),
            str(row["queued"]),
        ]
        state = _text(f"{row['stage']}/{record.wait_kind if record else '-'}")
        table.add_row(*cells, *([state] if verbose else []))
    console.print(table)
    _print_notes(rows)


def _step_text(record: RolloutRecord | None, current: ViewStep | None) -> str:
    if record is None or record.status == "received":
        return "queued"
    if rolling_back(record):
        return "rolling back"
    return f"{current.number}. {current.text}" if current else "between steps"


def _print_notes(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        for line in row.get("verdict_metrics") or []:
            console.print(_text(f"{row['application']} verdict: {line}"))
        for note in row.get("bundle_notes") or []:
            # The bundle's text is the builder's: not markup, nor a terminal's escape, nor a line of its own.
            console.print(_text(one_line(f"{row['application']}: note: {note}")), soft_wrap=True)


def history(
    application: str = typer.Argument(..., help="The application."),
    limit: int = typer.Option(20, min=1, help="How many rollouts, newest first."),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    as_json: bool = JsonOption,
    local: bool = LocalOption,
) -> None:
    """Past rollouts with their id, outcome, reason, who decided and how long they took."""
    platform = _connect(stack, region, profile, local)
    try:
        platform.application(application)
        rows = history_of(platform, application)[:limit]
    except PlatformError as exc:
        fail(str(exc))
    if as_json:
        _emit(rows, as_json)
        return
    table = Table(title=f"{application}: rollouts (canaryfleet report ROLLOUT --html page.html draws one)")
    table.add_column("rollout", overflow="fold")  # whole: `canaryfleet report` takes it
    for column in ("received", "version", "color", "outcome", "reason", "decided", "took"):
        table.add_column(column)
    for row in rows:
        style = {"released": "green", "rolled_back": "red", "rejected": "yellow"}.get(str(row["outcome"]), "")
        received = datetime.fromisoformat(str(row["received_at"])) if row["received_at"] else None
        table.add_row(
            _text(row["rollout_id"]),
            _text(local_time(received)),
            _text(row["version"]),
            _text(str(row.get("release_color") or "-")),
            Text(str(row["outcome"]), style=style),
            _text(row["reason"] or "-"),
            _text(", ".join(row["decided_by"]) or "-"),
            f"{row['seconds']:.0f}s" if row["seconds"] is not None else "-",
        )
    console.print(table)


def _decide(
    action: str,
    application: str,
    reason: str,
    stack: str | None,
    region: str | None,
    profile: str | None,
    as_json: bool,
    local: bool,
    extra: dict[str, Any] | None = None,
    version: str | None = None,
) -> None:
    platform = _connect(stack, region, profile, local)
    try:
        platform.application(application)
        guard = _expected_rollout(platform, application, version) if version is not None else {}
        payload = {
            "application": application,
            "action": action,
            "by": platform.caller(),
            "reason": reason,
            "channel": "cli",
            **guard,
            **(extra or {}),
        }
        _refuse_what_the_function_would(payload)
        result = platform.decide(payload)
    except PlatformError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    words = {
        "applied": "done",
        "recorded": recorded_words(action),
        "already_decided": "already decided",
    }
    said = (
        f"{action} {application} ({result['rollout_id']}): {words.get(result['outcome'], result['outcome'])}"
    )
    if result.get("detail"):
        said += f"; {result['detail']}"
    console.print(said, markup=False, highlight=False)


# The decision's fields as the operator gave them.
_OPTIONS = {"reason": "--reason", "override_window": "--override-window", "by": "your AWS identity"}


def _refuse_what_the_function_would(payload: dict[str, Any]) -> None:
    """Check the decision as DecideFunction will (OperatorDecision) and say what is wrong in the
    operator's words, before any call: the function's own refusal names its model."""
    try:
        OperatorDecision.model_validate(payload)
    except ValidationError as exc:
        said = "; ".join(
            f"{_OPTIONS.get(str(error['loc'][0]), error['loc'][0]) if error['loc'] else 'decision'}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        fail(f"nothing decided: {said}")


def _expected_rollout(platform: Platform, application: str, version: str) -> dict[str, Any]:
    """The decision's guard: the running rollout, if it is ``version``'s; else nothing is decided.

    The platform then acts only if that rollout is still the running one when the decision
    arrives (a rollback and a newer upload in between would otherwise take it).
    """
    record = running_rollout(platform, application)
    if record is None:
        raise PlatformError(f"{application} has no running rollout; nothing decided")
    if record.version != version:
        raise PlatformError(
            f"the running rollout of {application} is version {record.version} ({record.rollout_id}),"
            f" not {version}; nothing decided"
        )
    return {"rollout_id": record.rollout_id}


AuditComment = typer.Option("", "--reason", help="Comment kept in the audit.")
VersionGuard = typer.Option(
    None,
    "--version",
    help="Decide only if the running rollout is this version (the one you reviewed); else nothing.",
)
RequiredReason = typer.Option(..., "--reason", help="Why (shown in the rollback's reason).")


def _decision_command(action: str, reason_option: Any, summary: str) -> Callable[..., None]:
    """One operator decision as a command: the four differ only in the action, its reason and help."""

    def command(
        application: str = typer.Argument(...),
        reason: str = reason_option,
        version: str | None = VersionGuard,
        stack: str | None = StackOption,
        region: str | None = RegionOption,
        profile: str | None = ProfileOption,
        as_json: bool = JsonOption,
        local: bool = LocalOption,
    ) -> None:
        if reason_option is RequiredReason and not reason.strip():
            # It becomes the rollback's reason, read by everyone the release concerns.
            raise typer.BadParameter("say why, in a few words", param_hint="--reason")
        _decide(action, application, reason, stack, region, profile, as_json, local, version=version)

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
    version: str | None = VersionGuard,
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    as_json: bool = JsonOption,
    local: bool = LocalOption,
) -> None:
    """Skip the remaining bakes and approvals; the rollout goes live."""
    if override_window and not reason.strip():
        raise typer.BadParameter("say why the window or freeze is overridden", param_hint="--reason")
    extra = {"override_window": True} if override_window else {}
    _decide("promote", application, reason, stack, region, profile, as_json, local, extra, version)


def _ci_default(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


# S3 keeps at most 2 KB of user metadata, its keys and values in UTF-8 ("Working with object
# metadata", Amazon S3 User Guide), and refuses a larger PUT; start_rollout keeps a commit of one
# printable line of at most 128 characters and an https build URL of at most 2,048.
S3_USER_METADATA_BYTES = 2_048


def metadata_refusal(metadata: dict[str, str]) -> str | None:
    """Why the platform would not keep the upload's metadata, or None."""
    commit, build_url = metadata.get("commit"), metadata.get("build-url")
    if commit is not None and not commit_kept(commit):
        return f"--commit must be one printable line of at most {MAX_COMMIT} characters"
    for option, value in (("--commit", commit), ("--build-url", build_url)):
        if value is not None and not value.isascii():
            # "Each name, value pair must conform to US-ASCII when using REST" (S3 User Guide, as
            # botocore's validate_ascii_metadata quotes it before refusing the upload).
            return f"{option} must be ASCII: S3 metadata is sent as HTTP headers"
    if build_url is not None and not build_url_kept(build_url):
        return f"--build-url must be an https:// URL of at most {MAX_BUILD_URL:,} characters"
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    if size > S3_USER_METADATA_BYTES:
        return f"the commit and build URL take {size:,} bytes; S3 keeps at most 2 KB of metadata"
    return None


def upload_metadata(commit: str | None, build_url: str | None) -> dict[str, str]:
    """The upload's commit and build URL: the operator's, else the CI's environment's.

    One the CI's environment fills in (not the operator) that the platform would not keep, such
    as an internal Jenkins's BUILD_URL served over http, is left out with a warning, as the
    platform would leave it out, rather than refusing the build.
    """
    github_run = None
    if os.environ.get("GITHUB_RUN_ID"):
        github_run = (
            f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{os.environ.get('GITHUB_REPOSITORY')}"
            f"/actions/runs/{os.environ['GITHUB_RUN_ID']}"
        )
    from_ci = {
        "commit": None if commit else _ci_default("GIT_COMMIT", "GITHUB_SHA"),
        "build-url": None if build_url else (_ci_default("BUILD_URL") or github_run),
    }
    for key, value in from_ci.items():
        refused = metadata_refusal({key: value}) if value else None
        if refused:
            # "--build-url must be ..." as the operator would read it: the rest of the sentence.
            warn(f"the {key} from the CI's environment is left out: it {refused.split(' ', 1)[1]}")
            from_ci[key] = None
    given = {"commit": commit or from_ci["commit"], "build-url": build_url or from_ci["build-url"]}
    return {key: value for key, value in given.items() if value}


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
    local: bool = LocalOption,
) -> None:
    """Zip a build (or take CI's zip), check it as the platform will, upload it: its rollout starts."""
    if not re.fullmatch(APP_NAME_PATTERN.strip("^$"), application):
        raise typer.BadParameter(
            "2-40 lowercase letters, digits or '-', starting with a letter", param_hint="APPLICATION"
        )
    if not re.fullmatch(VERSION_PATTERN.strip("^$"), version):
        raise typer.BadParameter("1-64 letters, digits or '._+-'", param_hint="VERSION")
    # The bundle checks (YAML, zip and appspec rules) are publish's own: imported here, so the
    # other commands start without them.
    from canaryfleet.logic.bundle import validate_bundle  # noqa: PLC0415
    from canaryfleet.logic.bundle.archive import UnzippableFolder, zip_folder  # noqa: PLC0415

    if path.is_dir():
        try:
            body = zip_folder(path)
        except UnzippableFolder as exc:
            fail(f"cannot zip {path} whole: {exc}")
    elif path.suffix.lower() == ".zip":
        # A zip CI built is uploaded byte for byte: what was checked is what deploys.
        body = path.read_bytes()
    else:
        raise typer.BadParameter("a folder with appspec.yml at its root, or a .zip file", param_hint="PATH")
    try:
        report = validate_bundle(body)
    except InvalidBundle as exc:
        fail(f"the platform would reject this bundle: {exc.reason}")
    platform = _connect(stack, region, profile, local)
    try:
        platform.application(application)
        bucket = platform.output("ArtifactBucketName")  # PlatformError: not canaryfleet's stack
    except PlatformError as exc:
        fail(str(exc))
    metadata = upload_metadata(commit, build_url)
    refusal = metadata_refusal(metadata)
    if refusal:
        fail(refusal)
    key = f"{application}/{version}.zip"
    # A bundle may be large: each wait for the network may take longer than a small call's.
    s3 = boto3.client("s3", config=aws_client_config(read_timeout=60))
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata)
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
        console.print(Text(f"published s3://{bucket}/{key} ({size}); its rollout starts now"))
        for note in report.notes:
            # The bundle's text is the builder's: not markup, nor a terminal's escape, nor a line of its own.
            console.print(_text(one_line(f"note: {note}")))


def report(
    rollout_id: str = typer.Argument(..., help="The rollout (canaryfleet history shows them)."),
    html: Path = typer.Option(..., "--html", dir_okay=False, help="Where to write the page."),
    application: str | None = typer.Option(
        None, help="The application (found from the rollout id if omitted)."
    ),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    local: bool = LocalOption,
) -> None:
    """One self-contained HTML page with the timeline of a rollout."""
    platform = _connect(stack, region, profile, local)
    try:
        apps = [platform.application(application)] if application else platform.applications()
    except PlatformError as exc:
        fail(str(exc))
    candidates = [a for a in apps if rollout_id.startswith(f"{a.application}-")]
    for app in sorted(candidates, key=lambda a: len(a.application), reverse=True):
        try:
            record = platform.store.get(app.application, rollout_id)
        except PlatformError as exc:  # a stack that is not canaryfleet's has no state table
            fail(str(exc))
        if record is not None:
            from canaryfleet_cli.report import write_report  # noqa: PLC0415 - jinja2: this command's own

            try:
                path = write_report(record, app, html)
            except OSError as exc:
                fail(f"cannot write {html}: {exc.strerror or exc}")
            console.print(Text(f"wrote {path}"))
            return
    fail(f"no rollout {rollout_id}")


def register(app: typer.Typer) -> None:
    for command in (status, history, watch, approve, reject, abort, promote, publish, report):
        app.command()(command)
