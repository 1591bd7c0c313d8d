"""`python -m bench`: measure every figure, each group in a fresh process; write the JSON, print the table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.profiles import (
    AWS_DRAIN_POLL_SECONDS,
    AWS_ROLLOUT_POLL_SECONDS,
    DRAIN_POLL_SECONDS,
    PROFILES,
    ROLLOUT_POLL_SECONDS,
    TIME_SCALE,
    Profile,
)
from bench.results import Measure, measure_from_json
from bench.table import print_results

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = {"full": REPO / "bench" / "results.json", "quick": REPO / "bench" / "results-quick.json"}
LOG_DIR = REPO / "out" / "bench"


@dataclass(frozen=True)
class Group:
    name: str
    figures: tuple[int, ...]
    title: str


GROUPS = (
    Group("rollouts", (1, 2), "state transitions and reaction latency (rollout vs polling rollout)"),
    Group("drains", (3,), "drains of many instances at once (vs per-instance polling drain)"),
    Group("cold_start", (4,), "cold start and deployment package size"),
    Group("local_cloud", (5,), "make demo and the test suite"),
    Group("scale", (6,), "many applications rolling out at once"),
    Group("analysis", (7,), "canary judge on synthetic analyses (vs today's judge)"),
    Group("blue_green", (8,), "blue/green against in place: rollback time and what a release costs"),
    Group("bundle_check", (9,), "checking an uploaded bundle's stated sizes (vs reading every entry)"),
    Group("log_flush", (10,), "the drain document's log flush, real AWS CLI (vs one CLI run per file)"),
)


@dataclass
class GroupRun:
    group: Group
    seconds: float
    load_average: float  # the machine's 1-minute load average when the group started
    measures: list[Measure] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.group.name,
            "figures": list(self.group.figures),
            "title": self.group.title,
            "seconds": round(self.seconds, 1),
            "load_average_at_start": round(self.load_average, 2),
            "error": self.error,
        }


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def run_group(group: Group, profile: Profile) -> GroupRun:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{profile.name}-{group.name}.log"
    log.write_text("")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder, log.open("a") as output:
        out = Path(folder) / "measures.json"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "bench.child", group.name, profile.name, str(out), str(log)],
            cwd=REPO,
            stdout=output,
            stderr=output,
            check=False,
        )
        seconds = time.monotonic() - started
        if done.returncode != 0 or not out.is_file():
            return GroupRun(group, seconds, load, error=f"exit {done.returncode}; {log}:\n{_tail(log)}")
        return GroupRun(group, seconds, load, [measure_from_json(m) for m in json.loads(out.read_text())])


def _say(line: str) -> None:
    # One write per line: lanes report from two threads at once.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _run_and_report(group: Group, profile: Profile) -> GroupRun:
    _say(f"bench ({profile.name}): {group.title} ...")
    run = run_group(group, profile)
    ended = f"FAILED: {run.error}" if run.error else "done"
    _say(f"bench ({profile.name}): {group.name} {ended} in {run.seconds:.0f} s")
    return run


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def results_document(
    profile: Profile, runs: list[GroupRun], seconds: float, load: list[float]
) -> dict[str, Any]:
    measures = [m for run in runs for m in run.measures]
    return {
        "profile": profile.name,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD"),
        "working_tree_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in load],
        },
        "time_scale": {
            "aws_seconds_per_local_second": TIME_SCALE,
            "rollout_poll_seconds": ROLLOUT_POLL_SECONDS,
            "aws_rollout_poll_seconds": AWS_ROLLOUT_POLL_SECONDS,
            "drain_poll_seconds": round(DRAIN_POLL_SECONDS, 4),
            "aws_drain_poll_seconds": AWS_DRAIN_POLL_SECONDS,
        },
        "seconds": round(seconds, 1),
        "schedule": [[list(lane) for lane in stage] for stage in profile.schedule],
        "groups": [run.to_json() for run in runs],
        "summary": {
            "measures": len(measures),
            "met": sum(1 for m in measures if m.met),
            "missed": [m.name for m in measures if not m.met],
            "errors": [run.group.name for run in runs if run.error],
        },
        "measures": [m.to_json() for m in measures],
    }


def run_lane(lane: list[Group], profile: Profile) -> list[GroupRun]:
    return [_run_and_report(group, profile) for group in lane]


def run_schedule(profile: Profile, wanted: set[str]) -> list[GroupRun]:
    """Each stage after the other; a stage's lanes side by side. Returns the runs in figure order."""
    by_name = {g.name: g for g in GROUPS}
    runs: dict[str, GroupRun] = {}
    for stage in profile.schedule:
        lanes = [[by_name[name] for name in lane if name in wanted] for lane in stage]
        lanes = [lane for lane in lanes if lane]
        if not lanes:
            continue
        with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
            for lane_runs in pool.map(lambda lane: run_lane(lane, profile), lanes):
                runs.update((run.group.name, run) for run in lane_runs)
    return [runs[g.name] for g in GROUPS if g.name in runs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--output", type=Path, help="default: bench/results.json (quick: results-quick.json)")
    parser.add_argument("--only", nargs="+", choices=[g.name for g in GROUPS], help="only these groups")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    output: Path = args.output or DEFAULT_OUTPUT[profile.name]
    load = list(os.getloadavg())
    started = time.monotonic()
    runs = run_schedule(profile, set(args.only or [g.name for g in GROUPS]))
    seconds = time.monotonic() - started
    document = results_document(profile, runs, seconds, load)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print_results(document, output)
    return 1 if any(run.error for run in runs) else 0
