"""`canaryfleet local up` as a user runs it: a process in a fresh folder, the operator commands
run against it with --local as separate processes, then SIGTERM.

The timeouts only catch hangs: on a busy machine the platform takes what it takes.
"""

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canaryfleet_local.bundles import SAMPLE_APP
from tests.e2e.headless_chromium import ChromiumUnavailable, headless_chromium, require_chromium
from tests.e2e.pages import look

CLI = [sys.executable, "-m", "canaryfleet_cli.main"]
START_TIMEOUT = 240.0
COMMAND_TIMEOUT = 240.0


def run(folder: Path, *args: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """One canaryfleet command in ``folder``, as a process of its own (no AWS credentials), its
    tables as wide as a wide terminal's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"COLUMNS": "250"}
    return subprocess.run(
        [*CLI, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def ok_json(folder: Path, *args: str) -> Any:
    result = run(folder, *args, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def local_up(tmp_path: Path) -> Iterator[Path]:
    """`canaryfleet local up` on free ports in a fresh folder; stopped with SIGTERM afterwards."""
    with running_local_up(tmp_path) as folder:
        yield folder


@contextlib.contextmanager
def running_local_up(folder: Path, *options: str) -> Iterator[Path]:
    log = (folder / "local-up.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [*CLI, "local", "up", "--port", "0", "--approval-port", "0", *options],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    state = folder / ".canaryfleet" / "local.json"
    deadline = time.monotonic() + START_TIMEOUT
    while not state.exists():
        assert process.poll() is None, (folder / "local-up.log").read_text()
        assert time.monotonic() < deadline, "local up did not write .canaryfleet/local.json"
        time.sleep(0.2)
    try:
        yield folder
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
        stopped_cleanly = code == 0 and not state.exists()
        assert stopped_cleanly, (code, (folder / "local-up.log").read_text())


def watch_while(folder: Path, version: str, decide: list[str]) -> subprocess.CompletedProcess[str]:
    """Publish ``version``, watch it as CI does, and make ``decide`` once it waits for approval."""
    published = ok_json(folder, "publish", "--local", "hello-app", version, str(SAMPLE_APP))
    assert published["key"] == f"hello-app/{version}.zip"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    errors_file = folder / f"watch-{version}.err"
    errors = errors_file.open("w")
    watcher = subprocess.Popen(
        [
            *CLI,
            "watch",
            "--local",
            "hello-app",
            "--version",
            version,
            "--interval",
            "0.5",
            "--timeout",
            "600",
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    # watch prints a line each time the rollout changes: the one that names the approver says the
    # approval's wait is recorded, so a decision now is applied at once. `status` says the same.
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in watcher.stdout or ():
            lines.put(line)
        lines.put(None)  # watch has ended

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while not seen or "waiting for you@example.com" not in seen[-1]:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the rollout never asked for approval: {seen}") from None
            assert line is not None, (seen, errors_file.read_text())
            seen.append(line)
        assert ok_json(folder, "status", "--local", "hello-app")["waiting_for"] == "you@example.com"
        decided = ok_json(folder, *decide[:1], "--local", "hello-app", *decide[1:])
        assert decided["outcome"] == "applied"
        while (line := lines.get(timeout=COMMAND_TIMEOUT)) is not None:
            seen.append(line)
        watcher.wait(timeout=COMMAND_TIMEOUT)
    finally:
        if watcher.poll() is None:
            watcher.kill()
        errors.close()
    stderr = errors_file.read_text()
    return subprocess.CompletedProcess(watcher.args, watcher.returncode, "".join(seen), stderr)


def test_watch_is_a_ci_gate_and_history_keeps_each_rollout_with_its_id_and_decider(local_up: Path) -> None:
    # One story on one local cloud (the tests of a module may run on different workers).
    approved = watch_while(local_up, "2.0.0", ["approve", "--reason", "ship it"])
    rejected = watch_while(local_up, "2.1.0", ["reject", "--reason", "error budget spent"])
    # The same version published again (a retried CI job) is a new build: watch follows its own
    # rollout (which the platform refuses: a rejected version is not released later), not the
    # rejected one that ended before it.
    retried = run(local_up, "publish", "--local", "hello-app", "2.1.0", str(SAMPLE_APP))
    retried_watch = run(local_up, "watch", "--local", "hello-app", "--version", "2.1.0", "--timeout", "120")
    never = run(local_up, "watch", "--local", "hello-app", "--version", "9.9.9", "--timeout", "2")
    rows = ok_json(local_up, "history", "--local", "hello-app")
    table = run(local_up, "history", "--local", "hello-app")
    listed = ok_json(local_up, "app", "list", "--local")
    # --stack as the other commands take it: the platform's stack must be deployed there
    named = ok_json(local_up, "app", "list", "--local", "--stack", "canaryfleet")
    elsewhere = run(local_up, "app", "list", "--local", "--stack", "canaryfleet-typo")

    assert approved.returncode == 0, approved.stdout + approved.stderr
    lines = approved.stdout.splitlines()
    # A pipe gets one line per change, ending on the outcome; the waits in between are named.
    assert lines[-1].endswith("hello-app 2.0.0: released")
    assert any("wait for approval" in line for line in lines)
    assert rejected.returncode == 1, rejected.stdout + rejected.stderr
    assert "rejected" in rejected.stdout.splitlines()[-1]
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert retried_watch.returncode == 1, retried_watch.stdout + retried_watch.stderr
    assert "was already rejected" in retried_watch.stdout.splitlines()[-1]
    assert "approval asked" in (local_up / "local-up.log").read_text()  # with the approver's link
    assert never.returncode == 3
    assert "waiting for hello-app 9.9.9 to start" in never.stdout
    by_version = {row["version"]: row for row in rows}
    assert by_version["2.0.0"]["outcome"] == "released"
    identity = "arn:aws:sts::123456789012:user/moto"  # STS GetCallerIdentity, as moto answers it
    builds_of_2_1 = [(row["outcome"], row["decided_by"]) for row in rows if row["version"] == "2.1.0"]
    assert sorted(builds_of_2_1) == [("rejected", []), ("rejected", [f"reject by {identity}"])]
    assert by_version["2.0.0"]["decided_by"] == [f"approve by {identity}"]
    assert all(row["rollout_id"] in table.stdout for row in rows)
    assert [entry["application"] for entry in listed] == ["hello-app"]
    assert named == listed
    assert elsewhere.returncode == 2 and "canaryfleet-typo" in elsewhere.stderr


def test_without_local_up_a_local_command_says_so_with_exit_code_2(tmp_path: Path) -> None:
    result = run(tmp_path, "watch", "--local", "hello-app", "--version", "1.0.0")

    assert result.returncode == 2
    assert "start `canaryfleet local up` in this folder first" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def dashboard(local_up: Path) -> Iterator[str]:
    """`canaryfleet dashboard --local` on a free port; its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [*CLI, "dashboard", "--local", "--port", "0"],
        cwd=local_up,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # "canaryfleet dashboard: http://127.0.0.1:PORT/ (...)"
        assert first.startswith("canaryfleet dashboard: http://127.0.0.1:"), first + process.stderr.read()
        yield first.split()[2]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_dashboard_lists_hello_app_and_a_reject_there_is_recorded_with_the_operator(
    local_up: Path, dashboard: str, chromium: str
) -> None:
    ok_json(local_up, "publish", "--local", "hello-app", "3.0.0", str(SAMPLE_APP))
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while ok_json(local_up, "status", "--local", "hello-app").get("waiting_for") != "you@example.com":
        assert time.monotonic() < deadline, "the rollout never asked for approval"
        time.sleep(0.5)
    try:
        with headless_chromium() as browser:
            page = browser.new_page()
            page.navigate(dashboard)
            row = page.text("#app-hello-app")
            page.click_and_wait("#app-hello-app .rollout-link")
            steps = page.text("#steps")
            charts_url = str(page.evaluate("document.getElementById('charts-link').href"))
            page.type_into("#reason-reject", "seen enough")
            page.click_and_wait("#reject")
            notice = page.text("#notice")
            charts = look(browser, charts_url, "desktop")
    except ChromiumUnavailable as exc:
        require_chromium(start_error=str(exc))
    forged = urllib.parse.urlencode(
        {"token": "guess", "application": "hello-app", "rollout_id": "x", "action": "abort", "reason": "x"}
    ).encode()
    other_site = post(f"{dashboard}decide", forged, {"Origin": "https://evil.example.com"})
    no_token = post(f"{dashboard}decide", forged, {"Content-Type": "application/x-www-form-urlencoded"})
    rebound = post(f"{dashboard}decide", forged, {"Host": "attacker.example.com"})  # DNS rebinding
    rows = ok_json(local_up, "history", "--local", "hello-app")

    assert "3.0.0" in row and "wait for approval" in row and "you@example.com" in row
    assert "▶ wait for approval" in steps
    assert notice == "reject: done"
    # The rollout's charts, as `canaryfleet report` draws them, served by the dashboard itself
    assert charts.requests == [charts_url], "the charts page requested more than itself"
    assert len(charts.measured["charts"]) == 3
    assert all(c["drawn"] and c["xLabels"] for c in charts.measured["charts"])
    assert (other_site, no_token, rebound) == (403, 403, 403)
    [rejected] = [r for r in rows if r["version"] == "3.0.0"]
    assert rejected["decided_by"] == ["reject by arn:aws:sts::123456789012:user/moto"]
    assert rejected["reason"].endswith(": seen enough")


def test_a_port_already_taken_ends_local_up_at_once_with_exit_code_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])

        result = run(tmp_path, "local", "up", "--port", port, "--approval-port", "0", timeout=120)

    assert result.returncode == 2
    assert "Address already in use" in result.stderr
    assert not (tmp_path / ".canaryfleet").exists()


def test_with_approver_auto_the_simulator_approves_and_watch_ends_released(tmp_path: Path) -> None:
    with running_local_up(tmp_path, "--approver", "auto") as folder:
        ok_json(folder, "publish", "--local", "hello-app", "2.0.0", str(SAMPLE_APP))
        watched = run(folder, "watch", "--local", "hello-app", "--version", "2.0.0", "--interval", "0.5")
        [row] = ok_json(folder, "history", "--local", "hello-app")

    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert row["decided_by"] == ["approve by approver@example.com"]
