"""The drain document of template.yaml, run for real: bash and python3, with `aws` and `systemctl` faked.

These tests hold the document to the contract the completion checks (canaryfleet.models.drain
.DrainManifest) and to the order of its steps; the local cloud's simulated instances play the
same contract.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from canaryfleet.logic.drain import Drains, DrainTarget, send_drain_document
from canaryfleet.models.drain import LIFECYCLE_BUDGET, SPOT_BUDGET, DrainManifest
from canaryfleet.ports.clock import FixedClock

from canaryfleet_local.drain_document import OffInstance, drain_script, run_document
from canaryfleet_local.parsing import parse_template
from tests.helpers import REPO
from tests.unit.drain_fakes import FakeHooks, InMemoryDrainStore, InMemoryLogObjects, RecordedAlerts

TEMPLATE: dict[str, Any] = parse_template((REPO / "template.yaml").read_text())
DOCUMENT: dict[str, Any] = TEMPLATE["Resources"]["DrainDocument"]["Properties"]
CONTENT: dict[str, Any] = DOCUMENT["Content"]
SCRIPT = drain_script(TEMPLATE)
BUCKET = "canaryfleet-logbucket-test"
INSTANCE = "i-0abc123def4567890"
RUN_ID = "20261126T101533Z"

FAKE_AWS = f"""#!{sys.executable}
import os, shutil, sys, time
args = sys.argv[1:]
source, destination = args[-2], args[-1]
with open(os.environ["FAKE_TRACE"], "a") as trace:
    trace.write("upload " + destination + " " + " ".join(args[:-2]) + "\\n")
time.sleep(float(os.environ.get("FAKE_UPLOAD_SECONDS", "0")))
if "--recursive" in args:  # every file under source, to destination + its path under source
    pairs = [
        (os.path.join(root, name), destination + os.path.relpath(os.path.join(root, name), source))
        for root, _, names in os.walk(source)
        for name in names
    ]
else:
    pairs = [(source, destination)]
failed = False
for path, key in pairs:
    if os.environ.get("FAKE_FAIL_UPLOAD") and key.endswith(os.environ["FAKE_FAIL_UPLOAD"]):
        print("upload failed: Connection was closed before we received a valid response", file=sys.stderr)
        failed = True  # the others still go, as the CLI's transfers do
        continue
    target = os.path.join(os.environ["FAKE_S3"], key[len("s3://"):])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(path, target)
sys.exit(1 if failed else 0)  # 1: "at least one or more s3 transfers failed"
"""
# python3 on an instance with small disks: TMPDIR (AL2023's /tmp) is a tmpfs with room for
# FAKE_TMPFS_BYTES, the state directory's disk holds at most FAKE_DISK_BYTES (if set), and the
# files named in FAKE_NO_ROOM_FOR find no room anywhere. A copy that does not fit fails as the
# kernel fails it, ENOSPC, after writing what fitted.
FAKE_PYTHON = f"""#!{sys.executable}
import errno, os, shutil, sys

copyfile = shutil.copyfile


def used(folder):
    return sum(os.path.getsize(os.path.join(r, n)) for r, _, names in os.walk(folder) for n in names)


def small_disks(source, target, **kwargs):
    tmpfs = os.path.realpath(os.environ.get("TMPDIR", "/nonexistent")) + os.sep
    in_tmpfs = os.path.realpath(target).startswith(tmpfs)
    too_big = in_tmpfs and os.path.getsize(source) > int(os.environ.get("FAKE_TMPFS_BYTES", "0"))
    state, disk = os.environ["CANARYFLEET_STATE_DIR"], os.environ.get("FAKE_DISK_BYTES")
    if disk and os.path.realpath(target).startswith(os.path.realpath(state) + os.sep):
        too_big = too_big or used(state) + os.path.getsize(source) > int(disk)
    if too_big or os.path.basename(source) in os.environ.get("FAKE_NO_ROOM_FOR", "").split(","):
        with open(target, "wb") as partial:
            partial.write(b"what fitted")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), target)
    return copyfile(source, target, **kwargs)


shutil.copyfile = small_disks
sys.argv = sys.argv[1:]  # as `python3 - <args>` sets it
exec(compile(sys.stdin.read(), "<stdin>", "exec"), {{"__name__": "__main__"}})
"""
FAKE_SYSTEMCTL = """#!/bin/bash
if [ "$1" = cat ]; then [ -z "${FAKE_NO_UNIT:-}" ]; exit; fi
echo "systemctl $*" >> "$FAKE_TRACE"
if [ "$1" = stop ]; then date +%s.%N > "$FAKE_TRACE.stopped_at"; fi
if [ "$1" = stop ] && [ -n "${FAKE_STOP_SECONDS:-}" ]; then sleep "$FAKE_STOP_SECONDS"; fi
"""


@dataclass
class Instance:
    root: Path
    logs: Path
    s3: Path
    trace: Path
    env: dict[str, str]
    started: float = 0.0

    def run(self, **parameters: str) -> subprocess.CompletedProcess[str]:
        values = {
            "Mode": "drain",
            "RunId": RUN_ID,
            "LogBucket": BUCKET,
            "StopBudgetSeconds": "5",
            "FlushFirst": "false",
            "InFlightSeconds": "0",
            **parameters,
        }
        self.started = time.time()
        return run_document(SCRIPT, values, self.env, timeout=30)

    def seconds_to_stop(self) -> float:
        """How long after the run began the application's stop began."""
        stopped_at = self.trace.with_name(self.trace.name + ".stopped_at")
        return float(stopped_at.read_text()) - self.started

    def steps(self) -> list[str]:
        lines = self.trace.read_text().splitlines() if self.trace.exists() else []
        return [line.split()[1] if line.startswith("systemctl") else "upload" for line in lines]

    def uploaded(self, name: str, run_id: str = RUN_ID) -> Path:
        return self.s3 / BUCKET / "orders-api" / INSTANCE / run_id / name

    def manifest(self, run_id: str = RUN_ID) -> DrainManifest:
        return DrainManifest.model_validate_json(self.uploaded("manifest.json", run_id).read_text())

    def with_small_disks(
        self, tmpfs_bytes: int = 1 << 30, no_room_for: str = "", disk_bytes: int | None = None
    ) -> None:
        """python3 sees a tmpfs TMPDIR of ``tmpfs_bytes``, no room for ``no_room_for`` files and,
        if given, room for ``disk_bytes`` in the state directory."""
        python = self.root / "bin" / "python3"
        python.unlink()
        python.write_text(FAKE_PYTHON)
        python.chmod(0o755)
        (self.root / "tmpfs").mkdir()
        self.env |= {
            "TMPDIR": str(self.root / "tmpfs"),
            "FAKE_TMPFS_BYTES": str(tmpfs_bytes),
            "FAKE_NO_ROOM_FOR": no_room_for,
            "FAKE_DISK_BYTES": "" if disk_bytes is None else str(disk_bytes),
        }


@pytest.fixture
def instance(tmp_path: Path) -> Instance:
    """An instance of orders-api with two log files, `aws` and `systemctl` faked on its PATH."""
    off = OffInstance(tmp_path, "orders-api", INSTANCE)
    logs, s3 = off.logs, tmp_path / "s3"
    for folder in (logs / "archive", s3):
        folder.mkdir(parents=True)
    off.tool("aws", FAKE_AWS)
    off.tool("systemctl", FAKE_SYSTEMCTL)
    (logs / "app.log").write_text("".join(f"request {n} ok\n" for n in range(500)))
    (logs / "archive" / "app.1.log").write_bytes(os.urandom(4096))
    env = {
        **off.environment(os.environ["PATH"]),
        "FAKE_S3": str(s3),
        "FAKE_TRACE": str(tmp_path / "trace"),
    }
    return Instance(tmp_path, logs, s3, tmp_path / "trace", env)


def test_drain_stops_the_application_before_flushing_by_default(instance: Instance) -> None:
    result = instance.run(FlushFirst="false")

    assert result.returncode == 0, result.stderr
    assert instance.steps() == ["stop", "upload", "upload"]


def test_spot_drain_flushes_the_logs_before_stopping(instance: Instance) -> None:
    result = instance.run(FlushFirst="true")

    assert result.returncode == 0, result.stderr
    assert instance.steps() == ["upload", "upload", "stop"]


@pytest.mark.parametrize(
    ("flush_first", "steps"),
    [("true", ["upload", "upload", "stop"]), ("false", ["stop", "upload", "upload"])],
    ids=["logs-first", "stop-first"],
)
def test_the_stop_waits_for_the_requests_the_load_balancer_still_completes(
    instance: Instance, flush_first: str, steps: list[str]
) -> None:
    # Given two seconds left of the target group's deregistration delay when the run starts
    result = instance.run(FlushFirst=flush_first, InFlightSeconds="2")

    # Then the application is stopped only after them, the flush counted toward the wait
    assert result.returncode == 0, result.stderr
    assert instance.seconds_to_stop() >= 2
    assert "for the requests in flight to orders-api before stopping it" in result.stdout
    assert instance.steps() == steps


@pytest.mark.parametrize("in_flight", ["0", "1"], ids=["none", "over-before-the-stop"])
def test_the_stop_waits_for_no_request_that_is_over(instance: Instance, in_flight: str) -> None:
    # Given no request in flight, or a flush that outlasts them
    instance.env["FAKE_UPLOAD_SECONDS"] = "1"

    result = instance.run(FlushFirst="true", InFlightSeconds=in_flight)

    assert result.returncode == 0, result.stderr
    assert "requests in flight" not in result.stdout
    assert instance.steps() == ["upload", "upload", "stop"]


def test_the_manifest_comes_last_and_names_every_file_with_its_size_and_sha256(instance: Instance) -> None:
    instance.run()

    uploads = [
        line.split()[1] for line in instance.trace.read_text().splitlines() if line.startswith("upload")
    ]
    assert uploads[-1].endswith(f"/{RUN_ID}/manifest.json")
    manifest = DrainManifest.model_validate_json(instance.uploaded("manifest.json").read_text())
    assert (manifest.instance_id, manifest.application, manifest.run_id, manifest.mode) == (
        INSTANCE,
        "orders-api",
        RUN_ID,
        "drain",
    )
    assert sorted(f.name for f in manifest.files) == ["app.log", "archive/app.1.log"]
    for entry in manifest.files:
        body = instance.uploaded(entry.name).read_bytes()
        assert (entry.size, entry.sha256) == (len(body), hashlib.sha256(body).hexdigest())
        assert body == (instance.logs / entry.name).read_bytes()


def test_every_upload_asks_s3_to_keep_a_sha256_checksum(instance: Instance) -> None:
    instance.run()

    uploads = [line for line in instance.trace.read_text().splitlines() if line.startswith("upload")]
    assert uploads and all("--checksum-algorithm SHA256" in line for line in uploads)


def batch_uploads(instance: Instance) -> list[str]:
    return [line for line in instance.trace.read_text().splitlines() if " --recursive" in line]


def test_many_log_files_go_up_in_one_aws_cli_run_and_the_manifest_after_it(instance: Instance) -> None:
    # Given an application that writes a log per worker: 40 files changed since the last flush
    for worker in range(38):
        (instance.logs / "workers" / f"worker-{worker:02}.log").parent.mkdir(exist_ok=True)
        (instance.logs / "workers" / f"worker-{worker:02}.log").write_bytes(os.urandom(100 + worker))

    # When a Spot drain flushes them
    result = instance.run(FlushFirst="true")

    # Then one AWS CLI run sends them all (not one each), the manifest alone after it, and
    # every file is in S3 as the manifest describes it
    assert result.returncode == 0, result.stderr
    assert instance.steps() == ["upload", "upload", "stop"]
    [batch] = batch_uploads(instance)
    assert batch.split()[1] == f"s3://{BUCKET}/orders-api/{INSTANCE}/{RUN_ID}/"
    manifest = instance.manifest()
    assert len(manifest.files) == 40
    for entry in manifest.files:
        body = instance.uploaded(entry.name).read_bytes()
        assert body == (instance.logs / entry.name).read_bytes()
        assert (entry.size, entry.sha256) == (len(body), hashlib.sha256(body).hexdigest())


def test_a_batch_goes_once_its_snapshots_reach_the_batch_size(instance: Instance) -> None:
    # Given five 4 KiB logs and batches of 8 KiB (the fixture's app.log is 8.4 KiB by itself)
    for n in range(3):
        (instance.logs / f"extra-{n}.log").write_bytes(os.urandom(4096))
    instance.env["CANARYFLEET_FLUSH_BATCH_BYTES"] = "8192"

    result = instance.run(Mode="sync")

    # Then staging never holds more than a batch and one file: app.log alone, then two by two
    assert result.returncode == 0, result.stderr
    assert len(batch_uploads(instance)) == 3
    assert len(instance.manifest().files) == 5
    assert list(instance.root.glob("state/flush-*")) == [], "no snapshot left behind"


def test_a_file_with_no_room_beside_the_staged_batch_is_flushed_once_the_batch_has_gone(
    instance: Instance,
) -> None:
    # Given a state disk with room for the staged snapshots of two of the three logs
    (instance.logs / "z-last.log").write_bytes(os.urandom(4096))
    instance.with_small_disks(disk_bytes=(instance.logs / "app.log").stat().st_size + 4096 + 2048)

    result = instance.run(FlushFirst="true")

    # Then the batch goes early to make room, and nothing is left out
    assert result.returncode == 0, result.stderr
    assert len(batch_uploads(instance)) == 2
    manifest = instance.manifest()
    assert sorted(f.name for f in manifest.files) == ["app.log", "archive/app.1.log", "z-last.log"]
    assert manifest.skipped == ()


def test_a_failed_upload_fails_the_run_without_a_manifest_and_still_stops_the_application(
    instance: Instance,
) -> None:
    instance.env["FAKE_FAIL_UPLOAD"] = "app.log"

    result = instance.run(FlushFirst="true")

    assert result.returncode != 0
    assert not instance.uploaded("manifest.json").exists()
    assert instance.steps()[-1] == "stop"


def test_a_log_bigger_than_the_tmpfs_tmp_of_al2023_is_flushed_all_the_same(instance: Instance) -> None:
    # Given an instance whose /tmp is a tmpfs too small for its log (AL2023: half the RAM)
    instance.with_small_disks(tmpfs_bytes=1024)
    assert (instance.logs / "app.log").stat().st_size > 1024

    # When the drain flushes its logs
    result = instance.run(FlushFirst="true")

    # Then every file and the manifest are in S3: the snapshots were staged on disk
    assert result.returncode == 0, result.stderr
    manifest = instance.manifest()
    assert sorted(f.name for f in manifest.files) == ["app.log", "archive/app.1.log"]
    assert manifest.skipped == ()


def test_a_file_the_disk_has_no_room_for_is_named_in_the_manifest_and_fails_the_run_alone(
    instance: Instance,
) -> None:
    # Given an instance whose disk has no room left for a snapshot of app.log
    instance.with_small_disks(no_room_for="app.log")

    # When a Spot drain flushes its logs
    result = instance.run(FlushFirst="true")

    # Then the other file and the manifest are in S3, the manifest names what is missing and why,
    # the run fails saying so, and the application is still stopped
    assert result.returncode != 0
    assert "not flushed: app.log: [Errno 28] No space left on device" in result.stderr
    manifest = instance.manifest()
    assert [f.name for f in manifest.files] == ["archive/app.1.log"]
    assert (
        instance.uploaded("archive/app.1.log").read_bytes()
        == (instance.logs / "archive/app.1.log").read_bytes()
    )
    [skipped] = manifest.skipped
    assert skipped.name == "app.log" and skipped.error.startswith("[Errno 28] No space left on device")
    assert instance.steps()[-1] == "stop"
    assert list(instance.root.glob("state/flush-*")) == [], "no snapshot left behind"

    # When the next flush finds room
    instance.env["FAKE_NO_ROOM_FOR"] = ""
    again = instance.run(Mode="sync", RunId="20261126T111533Z")

    # Then it sends the file the last one left out
    assert again.returncode == 0, again.stderr
    assert "app.log" in [f.name for f in instance.manifest("20261126T111533Z").files]


def test_staging_left_by_a_run_killed_at_its_timeout_is_removed_by_a_later_run(instance: Instance) -> None:
    # Given a snapshot a run killed a day ago left in the state directory, and another run's
    state = instance.root / "state"
    old, current = state / "flush-killed", state / "flush-running"
    for staging in (old, current):
        staging.mkdir(parents=True)
        (staging / "snapshot").write_bytes(b"x" * 4096)
    day_ago = datetime.now(UTC).timestamp() - 86_400 - 60
    os.utime(old, (day_ago, day_ago))

    # When the next flush runs
    result = instance.run(Mode="sync")

    # Then the old one is gone and the running one left alone
    assert result.returncode == 0, result.stderr
    assert not old.exists() and current.exists()


def test_a_stop_that_outlasts_its_budget_kills_the_application(instance: Instance) -> None:
    instance.env["FAKE_STOP_SECONDS"] = "5"

    result = instance.run(StopBudgetSeconds="1")

    assert result.returncode == 0, result.stderr
    assert "systemctl kill --signal=SIGKILL orders-api.service" in instance.trace.read_text()


def test_sync_never_stops_the_application(instance: Instance) -> None:
    result = instance.run(Mode="sync")

    assert result.returncode == 0, result.stderr
    assert "stop" not in instance.steps()
    assert DrainManifest.model_validate_json(instance.uploaded("manifest.json").read_text()).mode == "sync"


def test_the_next_flush_sends_only_what_changed_since_the_last(instance: Instance) -> None:
    instance.run(Mode="sync")
    later = datetime.now(UTC).timestamp() + 5
    os.utime(instance.logs / "app.log", (later, later))

    instance.run(Mode="sync", RunId="20261126T111533Z")

    manifest = DrainManifest.model_validate_json(
        instance.uploaded("manifest.json", "20261126T111533Z").read_text()
    )
    assert [f.name for f in manifest.files] == ["app.log"]


def test_an_empty_run_id_names_the_run_after_the_current_time(instance: Instance) -> None:
    instance.run(Mode="sync", RunId="")

    manifests = list((instance.s3 / BUCKET / "orders-api" / INSTANCE).glob("*/manifest.json"))
    assert len(manifests) == 1
    assert re.fullmatch(r"[0-9]{8}T[0-9]{6}Z", manifests[0].parent.name)


# --- the parameters the platform and the fleet send ------------------------------------------
class _RecordingRunCommand:
    def __init__(self) -> None:
        self.parameters: dict[str, list[str]] = {}

    def send(
        self, document: str, instance_ids: list[str], parameters: dict[str, list[str]], comment: str
    ) -> str:
        self.parameters = parameters
        return "e8d3c0e4-71f7-4491-898f-c9b35bee5f3b"


def _accepted(name: str, value: str) -> bool:
    spec = CONTENT["parameters"][name]
    allowed = spec.get("allowedValues")
    pattern = spec.get("allowedPattern")
    return (allowed is None or value in allowed) and (
        pattern is None or re.search(pattern, value) is not None
    )


@pytest.mark.parametrize("budget", [LIFECYCLE_BUDGET, SPOT_BUDGET], ids=["lifecycle", "spot"])
def test_the_document_accepts_every_parameter_the_platform_sends(budget: Any) -> None:
    run_command = _RecordingRunCommand()
    now = datetime(2026, 11, 26, 10, 15, 33, tzinfo=UTC)
    drains = Drains(
        store=InMemoryDrainStore(),
        hooks=FakeHooks(),
        run_command=run_command,
        logs=InMemoryLogObjects(),
        notifier=RecordedAlerts(),
        document="canaryfleet-drain",
        log_bucket=BUCKET,
        clock=FixedClock(now),
    )
    target = DrainTarget("orders-api", INSTANCE, "orders-api/", None)

    send_drain_document(drains, budget, [target], "lifecycle", now)

    assert set(run_command.parameters) == set(CONTENT["parameters"])
    for name, values in run_command.parameters.items():
        assert all(_accepted(name, v) for v in values), (name, values)


def test_the_hourly_log_sync_of_the_fleet_runs_this_document_in_sync_mode() -> None:
    fleet = parse_template((REPO / "fleet" / "template.yaml").read_text())
    association = fleet["Resources"]["LogSyncAssociation"]["Properties"]

    assert fleet["Parameters"]["LogSyncDocumentName"]["Default"] == DOCUMENT["Name"]
    assert all(_accepted(name, v) for name, values in association["Parameters"].items() for v in values)
    assert association["Parameters"] == {"Mode": ["sync"]}


def test_an_instance_without_the_applications_unit_says_so_and_still_flushes(instance: Instance) -> None:
    # Given no systemd unit named after the application (the drain stops <application>.service)
    instance.env["FAKE_NO_UNIT"] = "1"

    result = instance.run()

    # Then nothing is stopped or killed, the reason is said, and the logs still go
    assert result.returncode == 0, result.stderr
    assert "no systemd unit orders-api.service on this instance: nothing was stopped" in result.stderr
    assert "killing it" not in result.stderr
    assert "stop" not in instance.steps() and "kill" not in instance.steps()
    assert instance.manifest().files


def test_an_instance_without_the_applications_log_directory_says_so(instance: Instance) -> None:
    shutil.rmtree(instance.logs)

    result = instance.run()

    assert result.returncode == 0, result.stderr
    assert "no log directory" in result.stderr and "no log to flush" in result.stderr
    assert instance.manifest().files == ()
