"""Figure 5: how long the local cloud makes a newcomer wait: `make demo` and the whole test suite.

`make demo` is timed after `make install` has run (untimed), as the issue says "after install".
Its baseline is the waiting the demo's story itself asks for (deployment times, bakes or the
alarm's delay, the approver's delay, from scenarios/demo.yaml): the floor any local run has.
The suite runs as `make test` runs it (its pytest command is read from the Makefile); its baseline
is the sum of the tests' own durations from pytest's JUnit report (the same work done one test
after the other).
"""

from __future__ import annotations

import itertools
import shlex
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from canaryfleet.models.policy import Approval, Bake

from bench.histories import BenchError
from bench.results import Goal, Measure, measure
from canaryfleet_local.scenarios import Scenario, Upload, load_scenario

REPO = Path(__file__).resolve().parent.parent
DEMO_GOAL_SECONDS = 10
SUITE_GOAL_SECONDS = 180
MAKEFILE = REPO / "Makefile"
_MAKE_TEST_PYTEST = "\t$(BIN)/pytest "


def suite_command(makefile: Path = MAKEFILE) -> tuple[str, ...]:
    """`make test`'s pytest command, read from the Makefile, so the figure times what it runs."""
    lines = makefile.read_text().splitlines()
    target = next((n for n, line in enumerate(lines) if line.startswith("test:")), None)
    for line in lines[target + 1 :] if target is not None else []:
        if not line.startswith("\t"):
            break
        if line.startswith(_MAKE_TEST_PYTEST):
            return (".venv/bin/pytest", *shlex.split(line.removeprefix(_MAKE_TEST_PYTEST)))
    raise BenchError(f"{makefile} has no `$(BIN)/pytest` line in its `test` target")


def suite_workers(command: tuple[str, ...]) -> str:
    """The ``-n`` of a pytest command: how many workers the suite runs on."""
    return next((value for flag, value in itertools.pairwise(command) if flag == "-n"), "1")


@dataclass(frozen=True)
class SuiteRun:
    wall_seconds: float
    test_seconds: float  # the sum of every test's own duration
    tests: int
    failed: list[str]
    skipped: int
    exit_code: int
    command: tuple[str, ...]


def scripted_seconds(scenario: Scenario) -> float:
    """The waiting a story asks for: deployments, bakes (or the alarm's delay), the approver."""
    bakes = sum(s.duration_seconds for s in scenario.policy.steps if isinstance(s, Bake))
    approvals = sum(1 for s in scenario.policy.steps if isinstance(s, Approval))
    total = 0.0
    last_good: Upload | None = None
    for upload in scenario.uploads:
        total += upload.after_seconds + upload.canary_deployment.seconds
        if upload.behaviour.trips_alarms:
            total += scenario.alarm_after_seconds
            total += last_good.canary_deployment.seconds if last_good else 0.0  # last good back on canary
            continue
        total += bakes + approvals * scenario.decide_after_seconds + upload.live_deployment.seconds
        last_good = upload
    return total


def _make(target: str, log: Path) -> float:
    with log.open("a") as output:
        started = time.monotonic()
        done = subprocess.run(
            ["make", "--no-print-directory", target], check=False, cwd=REPO, stdout=output, stderr=output
        )
        seconds = time.monotonic() - started
    if done.returncode != 0:
        raise BenchError(f"make {target} exited {done.returncode} (see {log})")
    return seconds


def time_demo(log: Path) -> float:
    _make("install", log)
    return _make("demo", log)


def run_suite(log: Path) -> SuiteRun:
    _make("bytecode", log)  # as `make test` does first (a no-op once the bytecode is fresh)
    command = suite_command()
    with tempfile.TemporaryDirectory() as folder, log.open("a") as output:
        report = Path(folder) / "junit.xml"
        started = time.monotonic()
        done = subprocess.run(
            [*command, f"--junitxml={report}"],
            check=False,
            cwd=REPO,
            stdout=output,
            stderr=output,
            timeout=1800,
        )
        wall = time.monotonic() - started
        if not report.is_file():
            raise BenchError(f"the suite wrote no JUnit report (exit {done.returncode}, see {log})")
        cases = ElementTree.parse(report).getroot().iter("testcase")
        seconds, tests, skipped, failed = 0.0, 0, 0, []
        for case in cases:
            tests += 1
            seconds += float(case.get("time", 0))
            skipped += case.find("skipped") is not None
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{case.get('classname')}::{case.get('name')}")
    return SuiteRun(wall, seconds, tests, failed, skipped, done.returncode, command)


def demo_measure(log: Path) -> Measure:
    scenario = load_scenario("demo")
    scripted = scripted_seconds(scenario)
    wall = time_demo(log)
    return measure(
        5,
        "`make demo` wall time (after install)",
        "s",
        wall,
        scripted,
        "the demo story's own waiting (deployments, bake, alarm, approver)",
        Goal(f"at most {DEMO_GOAL_SECONDS} s", lambda value, _ratio: value <= DEMO_GOAL_SECONDS),
        {"uploads": [u.version for u in scenario.uploads]},
    )


def suite_measure(log: Path) -> Measure:
    suite = run_suite(log)
    passed = suite.exit_code == 0
    return measure(
        5,
        f"whole test suite, {suite_workers(suite.command)} workers",
        "s",
        suite.wall_seconds,
        suite.test_seconds,
        "the tests' own durations, one after the other",
        Goal(
            f"at most {SUITE_GOAL_SECONDS} s, and it passes",
            lambda value, _ratio: value <= SUITE_GOAL_SECONDS and passed,
        ),
        {
            "command": " ".join(suite.command),
            "tests": suite.tests,
            "skipped": suite.skipped,
            "failed": suite.failed,
            "exit_code": suite.exit_code,
        },
    )


def measure_local_cloud(run_the_suite: bool, log: Path) -> list[Measure]:
    measures = [demo_measure(log)]
    if run_the_suite:
        measures.append(suite_measure(log))
    return measures
