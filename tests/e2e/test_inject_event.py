"""`canaryfleet local inject-event` on what goes wrong: an input that is no event, a delivery that fails.

Either is one line on stderr, never a traceback: exit 2 for the input (nothing was delivered),
exit 1 for a delivery that failed every attempt (as `local rollout` exits 1 on one).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner, Result

from canaryfleet_cli.local_drain import drain_commands
from tests.helpers import EVENTS

app = typer.Typer()
local_app = typer.Typer()
app.add_typer(local_app, name="local")
local_app.add_typer(drain_commands)
runner = CliRunner()


def inject(path: Path, *options: str) -> Result:
    return runner.invoke(app, ["local", "inject-event", str(path), *options])


def test_json_nested_too_deep_for_the_parser_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # Given a file of JSON nested 100,000 levels deep
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)

    # When it is injected
    result = inject(path)

    # Then one line says why, and nothing was delivered
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: {path}: nested deeper than 32 levels"]
    assert "Traceback" not in result.output and "RecursionError" not in result.output


def test_an_event_nested_deeper_than_the_limit_is_refused_before_any_delivery(tmp_path: Path) -> None:
    event = json.loads((EVENTS / "drain_request" / "spot_interruption.json").read_text())
    inner: dict[str, object] = {}
    for _ in range(200):
        inner = {"a": inner}
    event["detail"]["tags"] = inner
    path = tmp_path / "deep-event.json"
    path.write_text(json.dumps(event))

    result = inject(path, "--json")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {path}: nested deeper than 32 levels"]


def test_a_delivery_that_fails_every_attempt_is_one_line_and_exit_1(tmp_path: Path) -> None:
    # Given a Spot warning whose instance id is a number: DrainRequestFunction refuses it each time
    event = json.loads((EVENTS / "drain_request" / "spot_interruption.json").read_text())
    event["detail"]["instance-id"] = 5
    path = tmp_path / "bad-detail.json"
    path.write_text(json.dumps(event))

    # When it is injected
    result = inject(path)

    # Then the command fails, with one line naming the function, the attempts and the error
    assert result.exit_code == 1, result.output
    [reason] = result.stderr.splitlines()
    assert reason.startswith("delivery failed: DrainRequestFunction failed 3 time(s): InvalidEvent: invalid ")
    # And each attempt is one line of stdout, with no stack frames
    attempts = [line for line in result.stdout.splitlines() if "DrainRequestFunction: failed" in line]
    assert len(attempts) == 3
    assert "stackTrace" not in result.output and 'File "' not in result.output
