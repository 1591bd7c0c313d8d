"""What the CLI prints from bundles, operators and AWS is text, never Rich markup.

A bundle whose hook names ``scripts/[/x].sh`` made `canaryfleet publish` end in Rich's
MarkupError and a traceback instead of the platform's reason; ``[bold]`` in a name vanished.
"""

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from canaryfleet.adapters import drain_store
from canaryfleet.logic import bundle
from canaryfleet.models.drain import DrainRecord
from rich.console import Console
from typer.testing import CliRunner

from canaryfleet_cli import drains, operate, watch
from canaryfleet_cli.main import app
from canaryfleet_cli.plain import file_link, labelled, plain_text, shown
from tests.unit.test_rollout_view import app as app_config
from tests.unit.test_rollout_view import record

APPSPEC = """version: 0.0
os: linux
files:
  - source: /
    destination: /opt/app
hooks:
  ApplicationStart:
    - location: "{script}"
      timeout: 60
"""


@pytest.mark.parametrize(
    "script", ["scripts/[/x].sh", "scripts/[bold]start[/bold].sh", "scripts/[link=https://evil.example]go.sh"]
)
def test_publish_says_why_a_bundle_is_refused_whatever_its_names_hold(tmp_path: Path, script: str) -> None:
    # Given a build whose hook names a script that is not in it, with brackets in its name
    (tmp_path / "appspec.yml").write_text(APPSPEC.format(script=script))

    # When it is published (refused before any AWS call)
    result = CliRunner().invoke(app, ["publish", "hello-app", "1.0.0", str(tmp_path)])

    # Then the platform's reason is printed with the name as written, and no traceback
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "MarkupError" not in result.output
    assert "the platform would reject this bundle" in result.output
    assert script in " ".join(result.output.split())


def test_drains_list_names_an_application_as_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an onboarded application with no drain yet (no AWS call: the store is stood in for)
    class Platform:
        def output(self, name: str) -> str:
            return "state-table"

        def application(self, name: str) -> object:
            return object()  # onboarded

    class Store:
        def __init__(self, table: str) -> None:
            pass

        def list_drains(self, application: str) -> list[object]:
            return []

    monkeypatch.setattr(drains, "connect_platform", lambda *args: Platform())
    monkeypatch.setattr(drain_store, "DynamoDrainStore", Store)  # where the command imports it from

    # When an operator lists the drains of "[/x]"
    result = CliRunner().invoke(app, ["drains", "list", "[/x]"])

    # Then the (empty) table is titled with the name as typed
    assert result.exit_code == 0, result.output
    assert "drains of [/x]" in result.output


def test_labelled_and_file_link_keep_the_text_as_written(tmp_path: Path) -> None:
    said = labelled("error: ", "red", "no rollout [/x] [bold]y[/bold]")
    page = tmp_path / "[/x].html"
    link = file_link("timeline: ", page)

    assert said.plain == "error: no rollout [/x] [bold]y[/bold]"
    assert link.plain == f"timeline: {page}"
    assert link.spans[-1].style.link == page.resolve().as_uri()


@pytest.mark.parametrize(
    ("stored", "printed"),
    [
        (
            "alice\x1b]8;;https://evil.example/\x1b\\me\x1b]8;;\x1b\\",
            "alice\\x1b]8;;https://evil.example/\\x1b\\me\\x1b]8;;\\x1b\\",
        ),
        ("ok\x1b[2K\x1b[1A", "ok\\x1b[2K\\x1b[1A"),
        ("approved \u202eevil", "approved \\u202eevil"),
        ("a\rb", "a\\rb"),
        ("two\nlines\tand a tab, ünïcode ✅", "two\nlines\tand a tab, ünïcode ✅"),
    ],
    ids=["terminal-link", "erase-and-move", "bidi-override", "carriage-return", "printable"],
)
def test_text_from_the_platform_reaches_the_terminal_as_characters_not_as_commands(
    stored: str, printed: str
) -> None:
    # Given text a stored record holds (an older audit entry, a reason written before the edge
    # refused such characters), When the CLI shows it, Then every character that does not print
    # is written as its escape and no control character reaches the terminal
    assert shown(stored) == printed
    assert plain_text(stored, style="red").plain == printed
    assert not any(c in plain_text(stored).plain for c in "\x1b\r\u202e")


# --- a bundle's keys and a rollout's reason, one line each -----------------------------------------
# Keys the agent ignores, double-quoted to hold a terminal's escapes (a fake link, an erased line)
# and line breaks (a line that passes for the CLI's own).
HOSTILE_KEYS = r"""version: 0.0
os: linux
"\e]8;;https://evil.example/\e\\click me\e]8;;\e\\\e[2K\rnote": 1
"x\n\nnote: nothing to see": 1
hooks:
  ApplicationStart:
    - location: scripts/start.sh
"""
# A note kept before notes showed keys by their escapes.
STORED_NOTE = (
    "appspec.yml: x\n\nnote: nothing \x1b]8;;https://evil.example/\x1b\\to see\x1b]8;;\x1b\\ (line 4)"
)


def terminal(monkeypatch: pytest.MonkeyPatch, module: Any, name: str = "console") -> io.StringIO:
    """``module``'s console replaced by a wide terminal (escapes pass through it) writing to a buffer."""
    out = io.StringIO()
    monkeypatch.setattr(module, name, Console(file=out, force_terminal=True, width=1000))
    return out


def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, appspec: str) -> list[str]:
    """The lines `canaryfleet publish` prints on a terminal for a build with ``appspec`` (uploaded
    to a platform stood in for), the first saying where it went."""
    (tmp_path / "appspec.yml").write_text(appspec)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "start.sh").write_text("#!/bin/sh\n")
    platform = SimpleNamespace(application=lambda name: object(), output=lambda name: "artifacts")
    s3 = SimpleNamespace(put_object=lambda **kwargs: {"VersionId": "v1"})
    monkeypatch.setattr(operate, "_connect", lambda *args: platform)
    monkeypatch.setattr(operate, "boto3", SimpleNamespace(client=lambda *args, **kwargs: s3))
    out = terminal(monkeypatch, operate)

    options = ["--commit", "9fceb02d", "--build-url", "https://ci.example.com/1"]
    result = CliRunner().invoke(app, ["publish", "hello-app", "1.0.0", str(tmp_path), *options])

    assert result.exit_code == 0, result.output
    assert "\x1b" not in out.getvalue(), "no escape reaches the terminal"
    return out.getvalue().splitlines()


def test_publish_prints_each_note_of_the_bundle_as_one_line_whose_escapes_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a build whose appspec has keys with escapes and line breaks
    # When it is published
    lines = published(tmp_path, monkeypatch, HOSTILE_KEYS)

    # Then each note is one line, its keys written as their escapes
    assert lines[1:] == [
        "note: appspec.yml: '\\x1b]8;;https://evil.example/\\x1b\\\\click me\\x1b]8;;\\x1b\\\\"
        "\\x1b[2K\\rnote' (line 3) is ignored by CodeDeploy on EC2",
        "note: appspec.yml: 'x\\n\\nnote: nothing to see' (line 4) is ignored by CodeDeploy on EC2",
    ]


def test_publish_prints_a_note_as_one_line_whatever_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given bundle checks whose note holds a line break and a terminal link as they are
    checks = bundle.validate_bundle

    def noting(*args: Any, **kwargs: Any) -> bundle.BundleReport:
        report = checks(*args, **kwargs)
        return report.model_copy(update={"notes": [STORED_NOTE]})

    monkeypatch.setattr(bundle, "validate_bundle", noting)

    # When a build is published
    lines = published(tmp_path, monkeypatch, HOSTILE_KEYS)

    # Then the note is one line, its line breaks and escapes written out
    assert lines[1:] == [
        "note: appspec.yml: x\\n\\nnote: nothing \\x1b]8;;https://evil.example/\\x1b\\to see"
        "\\x1b]8;;\\x1b\\ (line 4)"
    ]


def test_status_prints_a_stored_note_as_one_line_whose_escapes_show(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a rollout whose record keeps a note with a line break and a terminal link
    out = terminal(monkeypatch, operate)

    # When status prints its notes
    operate._print_notes([{"application": "hello-app", "bundle_notes": [STORED_NOTE]}])

    # Then the note is one line, its line breaks and escapes written out
    assert out.getvalue().splitlines() == [
        "hello-app: note: appspec.yml: x\\n\\nnote: nothing \\x1b]8;;https://evil.example/\\x1b\\to see"
        "\\x1b]8;;\\x1b\\ (line 4)"
    ]


def test_publish_names_a_refused_key_by_its_escapes_on_one_line(tmp_path: Path) -> None:
    # Given a build whose hook event holds an escape and a line break
    (tmp_path / "appspec.yml").write_text(
        'version: 0.0\nos: linux\nhooks:\n  "Foo\\e[31m\\nnote: fine":\n    - location: scripts/start.sh\n'
    )

    # When it is published (refused before any AWS call)
    result = CliRunner().invoke(app, ["publish", "hello-app", "1.0.0", str(tmp_path)])

    # Then the reason shows the event's escapes, and nothing of it starts a line of its own
    assert result.exit_code == 1
    said = " ".join(result.output.split())  # Rich wraps the error at the terminal's width
    event = "'Foo\\x1b[31m\\nnote: fine'"
    assert f"hooks.{event} (line 4): {event} is not a lifecycle event" in said
    assert "\x1b" not in result.output
    assert not any(line.startswith("note: fine") for line in result.output.splitlines())


class _Store:
    def __init__(self, ended: Any) -> None:
        self.ended = ended

    def get(self, application: str, rollout_id: str) -> Any:
        return self.ended


def test_watch_prints_a_rejection_reason_as_one_line_whose_escapes_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a rollout rejected with a reason that holds a line break and a terminal escape (a key
    # kept before reasons showed keys by their escapes)
    reason = "appspec.yml is not valid: hooks.Foo\x1b[31m\nreleased (line 6) must be at most 3600"
    ended = record(outcome="rejected", reason=reason, status="rejected")
    platform = SimpleNamespace(application=lambda name: app_config(), store=_Store(ended))
    monkeypatch.setattr(watch, "connect_platform", lambda *args: platform)
    monkeypatch.setattr(watch, "running_rollout", lambda platform, name: ended)
    monkeypatch.setattr(watch, "live_version", lambda platform, name: None)

    # When a CI job watches it (a pipe: one line per change)
    result = CliRunner().invoke(app, ["watch", "payments-api"])

    # Then the reason is on the rollout's one line, its line break and escape written out
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.endswith(
        "payments-api 1.2.0: rejected appspec.yml is not valid: hooks.Foo\\x1b[31m\\nreleased (line 6)"
        " must be at most 3600"
    )


def test_drains_list_shows_a_reason_as_recorded_never_as_markup_or_a_terminals_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a drain whose logs were lost: its reason quotes a log file's name and the instance's error
    reason = "1 log file(s) left out: [/debug].log (\x1b[2J\x1b[1;1Hall logs flushed OK)"
    lost = DrainRecord.model_validate(
        {
            "instance_id": "i-0123456789abcdef0",
            "application": "pay-api",
            "trigger": "spot",
            "status": "logs_lost",
            "log_prefix": "pay-api/",
            "started_at": "2026-12-06T09:00:00+00:00",
            "run_id": "20261206T090000Z",
            "budget": {"execution_seconds": 60, "stop_seconds": 10, "flush_first": True},
            "outcome": "logs_lost",
            "reason": reason,
        }
    )
    platform = SimpleNamespace(output=lambda name: "state-table", application=lambda name: object())
    monkeypatch.setattr(drains, "connect_platform", lambda *args: platform)
    monkeypatch.setattr(
        drain_store, "DynamoDrainStore", lambda table: SimpleNamespace(list_drains=lambda a: [lost])
    )
    out = terminal(monkeypatch, drains)

    # When an operator lists the application's drains on a terminal
    result = CliRunner().invoke(app, ["drains", "list", "pay-api"])

    # Then the reason is printed as written, its escapes visible, and none reaches the terminal
    assert result.exit_code == 0, result.output
    assert "[/debug].log (\\x1b[2J\\x1b[1;1Hall logs flushed OK)" in out.getvalue()
    assert "\x1b[2J" not in out.getvalue()
