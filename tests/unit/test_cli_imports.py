"""What `canaryfleet` loads before any command runs: what every command needs, not each one's own.

Every command of the CLI is a new process, so what ``canaryfleet_cli.main`` imports is paid by
each `canaryfleet status` an operator or a CI job runs. The local cloud, the bundle checks, the
pages and the X-Ray SDK (which off Lambda builds a sampler with botocore clients at import) are
imported by the commands that use them, when they run. Nothing here is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from canaryfleet_cli.main import app

_LOADED = "import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))\n"

# Each a command's own: the local cloud (`canaryfleet local ...`, `demo`), the bundle checks
# (`publish`), the pages (`report`, `dashboard`, `local rollout --report-dir`), the drain records
# (`drains`), the Tracer of the platform's logic (`freeze` commands that wake waiting rollouts).
COMMANDS_OWN = {
    "moto",
    "samtranslator",
    "canaryfleet_local",
    "canaryfleet.logic.bundle",
    "jinja2",
    "canaryfleet.api.timeline_page",
    "canaryfleet_cli.dashboard",
    "canaryfleet.models.drain",
    "aws_xray_sdk",
    "aws_xray_sdk.core",
}


def loaded_modules(module: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_cli_loads_no_commands_own_modules_before_a_command_runs() -> None:
    loaded = loaded_modules("canaryfleet_cli.main")

    assert "typer" in loaded and "canaryfleet_cli.operate" in loaded
    assert COMMANDS_OWN & loaded == set()


def test_the_commands_modules_do_load_what_they_run_with() -> None:
    # The guard above is not vacuous: the commands' own modules bring these when they run.
    assert {"jinja2", "canaryfleet.api.timeline_page"} <= loaded_modules("canaryfleet_cli.dashboard")
    assert "canaryfleet.logic.bundle.appspec" in loaded_modules("canaryfleet.logic.bundle")
    assert "aws_xray_sdk.core" in loaded_modules("canaryfleet.logic.window")


def test_version_reads_the_installed_metadata() -> None:
    result = CliRunner().invoke(app, ["--version"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("canaryfleet ") and result.stdout.split()[1][0].isdigit()
