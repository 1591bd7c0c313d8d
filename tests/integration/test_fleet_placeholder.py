"""fleet/template.yaml's user data before the first release: the placeholder it starts, run here.

The program is the one the user data writes to /usr/local/bin, run with this interpreter on a
loopback port; only the CodeDeploy agent's folder is moved under a temporary directory.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from canaryfleet_local.parsing import parse_template
from tests.unit.test_fleet_template import TEMPLATE, user_data


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed: dict[str, Any] = parse_template(TEMPLATE.read_text())
    return parsed


def _placeholder(script: str) -> str:
    """The placeholder's program, as user data writes it to /usr/local/bin."""
    start = script.index("<<'PY'\n") + len("<<'PY'\n")
    return script[start : script.index("\nPY\n", start)]


def _status(url: str, method: str = "GET") -> int | None:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)
    except OSError:
        return None  # not listening yet


@pytest.mark.parametrize("health_check_path", ["/healthz?from=alb", "/it's/up"])
def test_until_a_build_is_deployed_the_instance_answers_the_health_check_alone(
    template: dict[str, Any], tmp_path: Path, health_check_path: str
) -> None:
    # A new fleet has no build: nothing answers the load balancer's health check, the groups
    # (HealthCheckType ELB) replace every instance after its grace period, and the unhealthy-hosts
    # alarms go to ALARM, so the first release is refused (and CodeDeploy would stop it). The
    # instance answers the check itself until the CodeDeploy agent begins a deployment, which
    # makes deployment-root/<group id>/<deployment id> before its first lifecycle event.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = user_data(template, AppPort=str(port), HealthCheckPath=health_check_path)
    deployments = tmp_path / "deployment-root"
    deployments.mkdir()
    program = tmp_path / "canaryfleet-placeholder"
    program.write_text(
        _placeholder(script).replace("/opt/codedeploy-agent/deployment-root", str(deployments))
    )
    assert script.index("systemd-run -u canaryfleet-placeholder") > script.index("codedeploy-install auto")

    running = subprocess.Popen([sys.executable, str(program)], stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while _status(base + health_check_path) is None and time.monotonic() < deadline:
            time.sleep(0.05)

        assert _status(base + health_check_path) == 200
        assert _status(base + health_check_path, method="HEAD") == 200
        assert _status(base + "/") == 503  # not the application: nothing else is answered
        assert _status(base + "/healthz") == 503  # a path of its own is not the check

        # When the first deployment begins, it lets the port go for the build
        (deployments / "7a3c9f2e-0b1d-4e5f-8a9b-1c2d3e4f5a6b" / "d-4F2KXQ7ZA").mkdir(parents=True)
        assert running.wait(timeout=5) == 0
    finally:
        running.kill()
    assert _status(base + health_check_path) is None
