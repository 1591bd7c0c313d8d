"""A command's stdout holds what it prints and nothing else: `status --json` is one document.

The runtime's Powertools Logger writes JSON lines to stdout (Lambda's way to CloudWatch Logs):
a registry entry broken by hand made `canaryfleet status --json` print its "registry entry left
out" line before the document, and the application vanished from the list without a word.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from canaryfleet.adapters import registry

from canaryfleet_cli.platform import Platform
from tests.unit.fakes import an_app

# `status --json` in a process of its own, as an operator or a script runs it: the registry holds
# hello-app and an entry someone emptied by hand; the rollout store is an empty one in memory.
_STATUS = """
import sys
from canaryfleet.adapters import registry
from canaryfleet.ports.clock import FixedClock
from datetime import UTC, datetime
from canaryfleet_cli import operate
from canaryfleet_cli.platform import Platform
from tests.unit.fakes import InMemoryRolloutStore, an_app

class Provider:  # as Powertools' SSMProvider answers: each name below the path asked for
    def get_multiple(self, path, max_age=None, recursive=True):
        return {{
            "hello-app": an_app("hello-app").model_dump_json(),
            "broken": '{{"application": "broken"}}',
        }}

class InMemoryPlatform(Platform):
    store = InMemoryRolloutStore(FixedClock(datetime(2026, 12, 6, 9, 0, tzinfo=UTC)))

registry._provider = lambda: Provider()
operate._connect = lambda *args: InMemoryPlatform("canaryfleet", {{}})
{before}
sys.argv = ["canaryfleet", "status", "--json"]
from canaryfleet_cli.main import main
main()
"""


def _status_json(before: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _STATUS.format(before=before)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_status_json_with_a_broken_registry_entry_prints_the_document_and_names_the_entry() -> None:
    # When `status --json` reads a registry holding one entry broken by hand
    done = _status_json()

    # Then stdout is the document, with the application whose entry reads
    assert done.returncode == 0, done.stderr
    assert [row["application"] for row in json.loads(done.stdout)] == ["hello-app"]
    # And the entry left out is named on stderr, in words, not as a log line
    said = " ".join(done.stderr.split())
    assert said.startswith("warning: registry entry /canaryfleet/apps/broken is malformed: ")
    assert said.endswith("; its application is left out")


def test_the_runtimes_log_lines_go_to_stderr_not_into_the_document() -> None:
    # Given a command whose runtime code logs as it does in Lambda (the registry read whole by
    # the runtime's own call, which logs each entry it leaves out)
    done = _status_json(
        "InMemoryPlatform.applications = lambda self: registry.SsmRegistry().all()",
    )

    # Then stdout is still one JSON document, and the log line is on stderr
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["application"] == "hello-app"
    assert '"message":"registry entry left out"' in done.stderr


def test_a_broken_registry_entry_is_named_once_however_often_the_registry_is_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a registry holding hello-app and an entry someone emptied by hand
    entries = {  # as Powertools' SSMProvider answers: each name below the path asked for
        "hello-app": an_app("hello-app").model_dump_json(),
        "broken": '{"application": "broken"}',
    }

    class Provider:
        def get_multiple(
            self, path: str, max_age: int | None = None, recursive: bool = True
        ) -> dict[str, str]:
            return dict(entries)

    monkeypatch.setattr(registry, "_provider", Provider)
    platform = Platform("canaryfleet", {})

    # When the dashboard reads it at three refreshes
    listed = [[app.application for app in platform.applications()] for _ in range(3)]

    # Then the entry is named once, and every read lists the application that reads
    assert listed == [["hello-app"]] * 3
    assert capsys.readouterr().err.count("/canaryfleet/apps/broken is malformed") == 1
    # And an entry broken another way later is named too
    entries["broken"] = "not json"
    platform.applications()
    assert "/canaryfleet/apps/broken" in capsys.readouterr().err
