"""What the CLI prints from bundles, operators and AWS is text, never Rich markup.

A bundle whose hook names ``scripts/[/x].sh`` made `canaryfleet publish` end in Rich's
MarkupError and a traceback instead of the platform's reason; ``[bold]`` in a name vanished.
"""

from pathlib import Path

import pytest
from canaryfleet.adapters import drain_store
from typer.testing import CliRunner

from canaryfleet_cli import drains
from canaryfleet_cli.main import app
from canaryfleet_cli.plain import file_link, labelled, plain_text, shown

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
