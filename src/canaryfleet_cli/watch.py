"""`canaryfleet watch`: follow a rollout until it ends; its exit code is the outcome (a CI gate).

0 released, 1 rolled back or rejected, 3 timed out, 2 a usage or infrastructure error. On a
terminal the rollout view is redrawn in place; on a pipe (a CI log) one line is printed for
each change, so the log reads as the rollout's story.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import NoReturn

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.rollout_record import RolloutRecord
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from canaryfleet_cli.local_endpoint import LocalOption
from canaryfleet_cli.options import ProfileOption, RegionOption, StackOption
from canaryfleet_cli.plain import plain_text
from canaryfleet_cli.platform import (
    Platform,
    PlatformError,
    aws_client_config,
    connect_platform,
    live_version,
    queued_behind,
    running_rollout,
)
from canaryfleet_cli.rollout_view import render_rollout, summary_line

Show = Callable[[RenderableType, str], None]
EXIT_RELEASED, EXIT_FAILED, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 2, 3
# Reads that fail in a row before watch gives up (botocore already retries each one).
MAX_FAILED_READS = 5


class _WatchConsole(Console):
    """Rich's console, but a reader that went away (`watch | head -1`) is an error (exit 2):
    Rich's own answer, and click's, is exit 1, which here means "rolled back"."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # later writes go nowhere
        raise SystemExit(EXIT_ERROR)


console = _WatchConsole()
errors = Console(stderr=True, soft_wrap=True)


def exit_code(outcome: str | None) -> int:
    return EXIT_RELEASED if outcome == "released" else EXIT_FAILED


def _fail(message: str) -> NoReturn:
    errors.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(EXIT_ERROR)


class _Follow:
    """Which rollout is followed: the rollout of the build now at ``<app>/<version>.zip``, or the
    one running when watch began.

    A version can be published again (a retried CI job): its earlier rollout is not this build's.
    The build is the artifact's current object in S3 (its version id, or its ETag in a bucket
    without versioning): watch follows only the rollout of that object, and waits for it.
    """

    def __init__(self, platform: Platform, app: AppConfig, version: str | None) -> None:
        self.platform, self.app, self.version = platform, app, version
        self.rollout_id: str | None = None
        # The rollout the one followed waits behind, as last read (None: it does not wait).
        self.queued_behind: str | None = None

    def _published(self) -> tuple[str | None, str | None] | None:
        """The artifact's current (version id, ETag); None while nothing is published there."""
        try:
            head = boto3.client("s3", config=aws_client_config()).head_object(
                Bucket=self.platform.output("ArtifactBucketName"),
                Key=f"{self.app.application}/{self.version}.zip",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        version_id = head.get("VersionId")
        etag = str(head.get("ETag", "")).strip('"')  # S3's events carry the ETag without its quotes
        return (None if version_id in (None, "null") else str(version_id)), etag

    def read(self) -> RolloutRecord | None:
        name = self.app.application
        if self.rollout_id is not None:
            return self.platform.store.get(name, self.rollout_id)
        if self.version is not None:
            published = self._published()
            if published is None:
                return None
            version_id, etag = published
            found = self.platform.store.list_rollouts(name, self.version)
            mine = [
                r
                for r in found
                if (
                    r.artifact_version_id == version_id
                    if version_id
                    else (r.artifact_etag or "").strip('"') == etag
                )
            ]
            record = max(mine, key=lambda r: r.received_at) if mine else None
            if record is not None:
                self.rollout_id = record.rollout_id
            return record
        if self.rollout_id is not None:
            return self.platform.store.get(name, self.rollout_id)
        record = running_rollout(self.platform, name)
        if record is not None:
            self.rollout_id = record.rollout_id
        return record

    def waiting_text(self) -> str:
        what = (
            f"{self.app.application} {self.version}"
            if self.version
            else f"a rollout of {self.app.application}"
        )
        return f"waiting for {what} to start"


def watch(
    application: str = typer.Argument(..., help="The application."),
    version: str | None = typer.Option(
        None, "--version", help="Follow this build's rollout, waiting for it to appear (what CI passes)."
    ),
    interval: float = typer.Option(2.0, min=0.1, help="Seconds between reads."),
    timeout: float = typer.Option(3600.0, min=1, help="Give up after this many seconds (exit code 3)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show internal state names too."),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    local: bool = LocalOption,
) -> None:
    """Follow a rollout until it ends: exit 0 released, 1 rolled back or rejected, 3 timed out."""
    try:
        platform = connect_platform(stack, region, profile, local)
        app = platform.application(application)
    except PlatformError as exc:
        _fail(str(exc))
    follow = _Follow(platform, app, version)
    deadline = time.monotonic() + timeout
    if console.is_terminal:
        with Live(console=console, auto_refresh=False) as live:
            record = _follow(
                follow, deadline, interval, lambda view, _line: live.update(view, refresh=True), verbose
            )
    else:
        printed: list[str] = []

        def print_line(_view: RenderableType, line: str) -> None:
            if not printed or printed[-1] != line:
                printed.append(line)
                console.print(plain_text(f"{time.strftime('%H:%M:%S')} {line}"), soft_wrap=True)

        record = _follow(follow, deadline, interval, print_line, verbose)
    if record is None or record.outcome is None:
        where = (
            follow.waiting_text()
            if record is None
            else summary_line(app, record, queued_behind=follow.queued_behind)
        )
        errors.print(plain_text(f"timed out after {timeout:.0f}s: {where}"))
        raise typer.Exit(EXIT_TIMEOUT)
    if console.is_terminal:
        console.print(plain_text(summary_line(app, record)))
    raise typer.Exit(exit_code(record.outcome))


def _follow(
    follow: _Follow,
    deadline: float,
    interval: float,
    show: Show,
    verbose: bool,
) -> RolloutRecord | None:
    """Read and show until the rollout ends or the deadline passes; the last record read."""
    failed_reads = 0
    record: RolloutRecord | None = None
    while True:
        try:
            record = follow.read()
            live = live_version(follow.platform, follow.app.application) if record is not None else None
            follow.queued_behind = queued_behind(follow.platform, record) if record is not None else None
            failed_reads = 0
        except (ClientError, BotoCoreError, PlatformError) as exc:
            failed_reads += 1
            if failed_reads >= MAX_FAILED_READS or time.monotonic() >= deadline:
                # Past --timeout while AWS does not answer is an infrastructure error, not a
                # rollout still running: exit 2, not 3, and never later than the deadline's read.
                _fail(f"could not read the rollout {failed_reads} time(s) in a row: {exc}")
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            continue
        if record is None:
            text = follow.waiting_text()
            show(Text(text), text)
        else:
            ahead = follow.queued_behind
            view = render_rollout(follow.app, record, live, verbose=verbose, queued_behind=ahead)
            show(view, summary_line(follow.app, record, queued_behind=ahead))
            if record.outcome is not None:
                return record
        if time.monotonic() >= deadline:
            return record
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
