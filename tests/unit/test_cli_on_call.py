"""The CLI in the hands of an on-call engineer: a silent network, a mistyped freeze, a blank reason,
a password in an endpoint, a terminal without Unicode. Each ends in a clear line, never a hang or a
traceback, and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
import typer
from botocore.exceptions import EndpointConnectionError
from canaryfleet.models.calendar import Freeze
from canaryfleet.models.rollout_record import RolloutRecord
from typer.testing import CliRunner

from canaryfleet_cli import platform as cli_platform
from canaryfleet_cli.freezes import parse_duration, parse_time
from canaryfleet_cli.main import app as app_cli
from canaryfleet_cli.plain import hide_url_credentials
from canaryfleet_cli.platform import PlatformError
from canaryfleet_cli.watch import EXIT_ERROR, _follow
from tests.helpers import after_cli_main
from tests.unit.test_rollout_view import app, record

runner = CliRunner()


# -- a network that does not answer ------------------------------------------------------
def test_the_clis_clients_wait_5_s_to_connect_and_20_s_for_an_answer() -> None:
    config = cli_platform.aws_client_config()
    decide = cli_platform.aws_client_config(read_timeout=60)

    assert (config.connect_timeout, config.read_timeout) == (5, 20)
    assert (decide.connect_timeout, decide.read_timeout) == (5, 60)


class _Unreachable:
    """A rollout whose reads all fail, as when the network is gone."""

    def read(self) -> None:
        raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")


def test_watch_ends_at_its_deadline_with_an_error_while_aws_does_not_answer() -> None:
    # Given reads that fail, a deadline 0.3 s away and a poll every 2 s (five failures: 8 s)
    started = time.monotonic()
    shown: list[Any] = []

    with pytest.raises(typer.Exit) as ended:
        _follow(
            _Unreachable(),  # type: ignore[arg-type]
            deadline=started + 0.3,
            interval=2.0,
            show=lambda view, line: shown.append(line),
            verbose=False,
        )

    # Then it stops at the deadline, as an infrastructure error (2), not "timed out" (3)
    assert ended.value.exit_code == EXIT_ERROR == 2
    assert time.monotonic() - started < 1.5
    assert shown == []


# -- secrets in what is printed -----------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://bob:Pw0rd@127.0.0.1:4566/", "http://***@127.0.0.1:4566/"),
        (
            'Could not connect to "https://u:p%40ss@proxy.corp:8443/x?y=1"',
            'Could not connect to "https://***@proxy.corp:8443/x?y=1"',
        ),
        ("http://127.0.0.1:4566 and mail bob@example.com", "http://127.0.0.1:4566 and mail bob@example.com"),
    ],
)
def test_a_urls_user_and_password_are_never_printed(text: str, shown: str) -> None:
    assert hide_url_credentials(text) == shown


# -- mistyped input -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["--for", "99999999999d"],
        ["--for", "999999999h"],
        ["--start", "9999-12-31T23:00Z", "--for", "2h"],
        ["--start", "9999-12-31T23:00-05:00", "--end", "9999-12-31T23:30-05:00"],
        ["--start", "0001-01-01T00:30+05:00", "--for", "1h"],
    ],
)
def test_a_freeze_beyond_the_calendar_is_a_usage_error_before_any_aws_call(args: list[str]) -> None:
    with mock.patch("canaryfleet_cli.freezes._calendar") as calendar:
        done = runner.invoke(app_cli, ["freeze", "add", "--reason", "release night", *args])

    assert done.exit_code == 2, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert "Invalid value for --" in done.output
    calendar.assert_not_called()


def test_a_duration_or_time_python_cannot_hold_is_refused_as_such() -> None:
    with pytest.raises(typer.BadParameter, match="at most 999,999,999 days"):
        parse_duration("99999999999d")
    with pytest.raises(typer.BadParameter, match="between the years 1 and 9999"):
        parse_time("9999-12-31T23:00-05:00", "--end")


@pytest.mark.parametrize("command", ["abort", "reject"])
@pytest.mark.parametrize("reason", ["", "   ", "\t"])
def test_an_abort_or_rejection_needs_a_reason_that_says_something(command: str, reason: str) -> None:
    with mock.patch("canaryfleet_cli.operate._decide") as decide:
        done = runner.invoke(app_cli, [command, "hello-app", "--reason", reason])

    assert done.exit_code == 2
    assert "say why" in done.output
    decide.assert_not_called()


# -- a terminal without Unicode -------------------------------------------------------------
def test_a_terminal_without_the_views_symbols_shows_a_question_mark_instead_of_failing() -> None:
    done = after_cli_main('"\\u2714 released \\u25b6 \\u2026"', {**os.environ, "PYTHONIOENCODING": "ascii"})

    assert done.returncode == 0, done.stderr
    assert "UnicodeEncodeError" not in done.stderr
    assert done.stdout.splitlines()[-1] == "? released ? ?"


# -- report: where the page cannot go, a stack that is not canaryfleet's -----------------------
class _Store:
    def __init__(self, fails: bool) -> None:
        self.fails = fails

    def get(self, application: str, rollout_id: str) -> RolloutRecord | None:
        if self.fails:
            raise PlatformError(
                "stack canaryfleet-app-hello has no output StateTableName; is it a canaryfleet stack?"
            )
        return record()


class _Platform:
    def __init__(self, fails: bool = False) -> None:
        self.store = _Store(fails)

    def applications(self) -> list[Any]:
        return [app()]


def _report(platform: _Platform, html: str) -> Any:
    with mock.patch("canaryfleet_cli.operate._connect", return_value=platform):
        return runner.invoke(app_cli, ["report", "payments-api-1_2_0-abc", "--html", html])


def test_a_report_that_cannot_be_written_says_where_and_why(tmp_path: Any) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")

    done = _report(_Platform(), str(blocked / "timeline.html"))

    assert done.exit_code == 1, done.output
    assert not isinstance(done.exception, OSError)
    assert f"cannot write {blocked / 'timeline.html'}" in done.output


def test_a_report_from_a_stack_that_is_not_canaryfleets_is_one_line(tmp_path: Any) -> None:
    done = _report(_Platform(fails=True), str(tmp_path / "timeline.html"))

    assert done.exit_code == 1
    assert not isinstance(done.exception, PlatformError)
    assert "is it a canaryfleet stack?" in done.output
    assert not (tmp_path / "timeline.html").exists()


# -- narrow terminals -------------------------------------------------------------------------
def test_freeze_list_shows_each_id_whole_on_one_line_however_narrow_the_terminal() -> None:
    at = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    freeze = Freeze(
        freeze_id="20261205-d5a1b2c3-payments-incident",
        start=at,
        end=at + timedelta(hours=6),
        reason="card network incident: nothing ships until the all-clear from payments on-call",
        declared_by="arn:aws:sts::123456789012:assumed-role/oncall/alice@example.com",
        declared_at=at,
    )
    with (
        mock.patch("canaryfleet_cli.freezes._calendar", return_value=(None, None)),
        mock.patch("canaryfleet_cli.freezes.standing_freezes", return_value=[freeze]),
    ):
        done = runner.invoke(app_cli, ["freeze", "list"], env={"COLUMNS": "60"})

    assert done.exit_code == 0, done.output
    assert freeze.freeze_id in done.output


# -- a wrong target is not an empty answer ----------------------------------------------------
class _DrainPlatform:
    def output(self, name: str) -> str:
        return "state-table"

    def application(self, name: str) -> Any:
        if name != "hello-app":
            raise PlatformError(f"application {name!r} is not onboarded")
        return app()


@pytest.mark.parametrize(("application", "code"), [("helo-app", 1), ("hello-app", 0)])
def test_drains_of_an_application_never_onboarded_are_an_error_not_an_empty_table(
    application: str, code: int
) -> None:
    with (
        mock.patch("canaryfleet_cli.drains.connect_platform", return_value=_DrainPlatform()),
        mock.patch("canaryfleet.adapters.drain_store.DynamoDrainStore.list_drains", return_value=[]),
    ):
        done = runner.invoke(app_cli, ["drains", "list", application])

    assert done.exit_code == code, done.output
    assert ("is not onboarded" in done.output) == (code == 1)


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x"}, "no AWS region: pass --region"),
        ({"AWS_DEFAULT_REGION": "eu-west-1", "AWS_PROFILE": "ghost"}, "no AWS profile named 'ghost'"),
    ],
)
def test_app_list_without_a_region_or_profile_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, env: dict[str, str], said: str
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    done = runner.invoke(app_cli, ["app", "list"])

    assert done.exit_code == 2, done.output
    assert said in done.output
    assert "You must specify" not in done.output


class _DecidingPlatform:
    def __init__(self) -> None:
        self.decide = mock.Mock(return_value={"rollout_id": "hello-app-1", "outcome": "applied"})

    def application(self, name: str) -> Any:
        return app()

    def caller(self) -> str:
        return "arn:aws:sts::123456789012:assumed-role/oncall/alice"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["approve", "hello-app", "--reason", "x" * 2001], "--reason: String should have at most 2000"),
        (["abort", "hello-app", "--reason", "rollback\x1b[2J"], "--reason:"),
    ],
)
def test_a_decision_the_function_would_refuse_is_said_in_the_operators_words_before_any_call(
    args: list[str], said: str
) -> None:
    platform = _DecidingPlatform()
    with mock.patch("canaryfleet_cli.operate._connect", return_value=platform):
        done = runner.invoke(app_cli, args)

    assert done.exit_code == 1, done.output
    assert "nothing decided: " + said in done.output
    assert "OperatorDecision" not in done.output
    platform.decide.assert_not_called()


def test_a_decision_in_bounds_is_sent_as_given() -> None:
    platform = _DecidingPlatform()
    with mock.patch("canaryfleet_cli.operate._connect", return_value=platform):
        done = runner.invoke(app_cli, ["abort", "hello-app", "--reason", "card network incident"])

    assert done.exit_code == 0, done.output
    sent = platform.decide.call_args.args[0]
    assert (sent["action"], sent["reason"], sent["channel"]) == ("abort", "card network incident", "cli")


# -- a reader that goes away --------------------------------------------------------------------
_WATCH_INTO_A_CLOSED_PIPE = """
import sys
from unittest import mock
from tests.unit.test_rollout_view import app, record
platform = mock.Mock()
platform.application.return_value = app()
sys.argv = ["canaryfleet", "watch", "payments-api", "--interval", "0.1", "--timeout", "20"]
with (
    mock.patch("canaryfleet_cli.watch.connect_platform", return_value=platform),
    mock.patch("canaryfleet_cli.watch._Follow.read", return_value=record()),
    mock.patch("canaryfleet_cli.watch.live_version", return_value="1.1.0"),
):
    from canaryfleet_cli.main import main
    main()
"""


def test_watch_into_a_pipe_whose_reader_left_exits_2_not_rolled_backs_1() -> None:
    # Given `canaryfleet watch ... | head -1`: the reader is gone before watch writes
    watching = subprocess.Popen(
        [sys.executable, "-c", _WATCH_INTO_A_CLOSED_PIPE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert watching.stdout is not None and watching.stderr is not None
    watching.stdout.close()

    # Then it ends at once, as an error, without a traceback
    code = watching.wait(timeout=60)
    said = watching.stderr.read().decode()
    assert code == 2, said
    assert "Traceback" not in said


class _RecordingPlatform:
    """DecideFunction's answer when the rollout had no wait open: "recorded"."""

    def application(self, name: str) -> None:
        return None

    def caller(self) -> str:
        return "arn:aws:iam::123456789012:user/oncall"

    def decide(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"rollout_id": "r-1", "action": payload["action"], "outcome": "recorded"}


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (
            ["abort", "payments-api", "--reason", "card network incident"],
            "the rollout stops before its build",
        ),
        (["promote", "payments-api"], "it takes effect at the next wait"),
    ],
)
def test_a_decision_recorded_without_a_wait_says_when_it_takes_effect(command: list[str], said: str) -> None:
    # An abort is honoured by every step that would take the build further, not only at a wait
    with mock.patch("canaryfleet_cli.operate._connect", return_value=_RecordingPlatform()):
        result = runner.invoke(app_cli, command)

    assert result.exit_code == 0, result.output
    assert said in " ".join(result.output.split())
