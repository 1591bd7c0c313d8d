"""Figure 10: the drain document's log flush with the real AWS CLI, against moto's S3 server.

An instance's drain (and its hourly sync) sends every log file changed since the last flush,
with a manifest last. The document of template.yaml runs here as Run Command would run it (bash,
python3 and `aws`), in sync mode so that nothing is stopped, on ``profile.flush_files`` logs of
64 KiB; the AWS CLI is version 1 from PyPI (`make bench` installs it in .venv-awscli: version 2,
which Amazon Linux 2023 ships, is not on PyPI), sending to moto's S3 server on this machine.

Baseline, in the same run: the same document with batches of one byte, so that each file goes in
an AWS CLI run of its own, as the document sent them before. Both sides alternate, the best of
``profile.flush_repeats`` kept. An `aws` on PATH before the real one counts the CLI runs.

S3 here answers in a millisecond or two, so the figure is mostly the CLI's own start and
transfer work; on AWS each PUT's round trip adds to the per-file side, one after the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from bench.histories import BenchError
from bench.profiles import Profile
from bench.results import Measure, at_most, measure, ratio_at_most
from canaryfleet_local.drain_document import OffInstance, drain_script, run_document
from canaryfleet_local.parsing import parse_template

REPO = Path(__file__).resolve().parent.parent
AWS_CLI = REPO / ".venv-awscli" / "bin" / "aws"
BUCKET = "bench-logs"
APPLICATION = "orders-api"
INSTANCE = "i-0bench0000000000"
FILE_BYTES = 64 * 1024
# Batches of one byte: every file's snapshot fills a batch, so each goes in a CLI run of its own.
ONE_FILE_PER_RUN = "1"
_COUNTING_AWS = """#!/bin/sh
echo run >> "$BENCH_CLI_RUNS"
exec "{cli}" "$@"
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Instance:
    """One instance's folder (``OffInstance``) with its logs, the counting `aws` and a `systemctl`."""

    def __init__(self, root: Path, files: int, endpoint: str) -> None:
        self.off = OffInstance(root, APPLICATION, INSTANCE)
        logs = self.off.logs / "workers"
        logs.mkdir(parents=True)
        for n in range(files):
            (logs / f"worker-{n:03}.log").write_bytes(os.urandom(FILE_BYTES))
        self.off.tool("aws", _COUNTING_AWS.format(cli=AWS_CLI))
        self.off.tool("systemctl", "#!/bin/sh\nexit 0\n")
        self.env = {
            **os.environ,
            **self.off.environment(os.environ["PATH"]),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            # The CLI's defaults (ten transfers at once), whatever this machine's ~/.aws says.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def flush(self, script: str, run_id: str, batch_bytes: str | None) -> tuple[float, int]:
        """One sync run of the document: its seconds and its AWS CLI runs. A new marker each time:
        every file counts as changed."""
        (self.off.root / "state" / "last-log-flush").unlink(missing_ok=True)
        runs = self.off.root / f"cli-runs-{run_id}"
        env = {**self.env, "BENCH_CLI_RUNS": str(runs)}
        if batch_bytes is not None:
            env["CANARYFLEET_FLUSH_BATCH_BYTES"] = batch_bytes
        values = {
            "Mode": "sync",
            "RunId": run_id,
            "LogBucket": BUCKET,
            "StopBudgetSeconds": "5",
            "FlushFirst": "false",
            "InFlightSeconds": "0",
        }
        started = time.perf_counter()
        result = run_document(script, values, env)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise BenchError(f"the drain document's flush failed: {result.stderr[-2000:]}")
        return seconds, len(runs.read_text().splitlines())


def _check_in_s3(s3: Any, run_id: str, files: int) -> None:
    """Every file in S3 as the run's manifest describes it, or the measure is void."""
    prefix = f"{APPLICATION}/{INSTANCE}/{run_id}/"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + "manifest.json")["Body"].read())
    if len(manifest["files"]) != files or manifest["skipped"]:
        raise BenchError(f"run {run_id}: the manifest lists {len(manifest['files'])} of {files} files")
    for entry in manifest["files"]:
        body = s3.get_object(Bucket=BUCKET, Key=prefix + entry["name"])["Body"].read()
        if hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise BenchError(f"run {run_id}: {entry['name']} in S3 is not what the manifest says")


def measure_log_flush(profile: Profile) -> list[Measure]:
    if not AWS_CLI.exists():
        raise BenchError(f"{AWS_CLI} is missing: `make bench` installs the AWS CLI there")
    script = drain_script(parse_template((REPO / "template.yaml").read_text()))
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        s3.create_bucket(Bucket=BUCKET)
        batched: list[float] = []
        per_file: list[float] = []
        runs: dict[str, int] = {}
        with tempfile.TemporaryDirectory(prefix="bench-flush-") as folder:
            instance = _Instance(Path(folder), profile.flush_files, endpoint)
            for _ in range(profile.flush_repeats):
                for side, batch_bytes, samples in (
                    ("batched", None, batched),
                    ("per_file", ONE_FILE_PER_RUN, per_file),
                ):
                    run_id = f"20261207T{len(batched) + len(per_file):06}Z"  # a prefix per run
                    seconds, cli_runs = instance.flush(script, run_id, batch_bytes)
                    _check_in_s3(s3, run_id, profile.flush_files)
                    samples.append(seconds)
                    runs[side] = cli_runs
    finally:
        server.stop()
    files = profile.flush_files
    details = {
        "files": files,
        "file_bytes": FILE_BYTES,
        "batched_seconds": [round(s, 3) for s in batched],
        "per_file_seconds": [round(s, 3) for s in per_file],
        "aws_cli": "version 1 (PyPI), against moto's S3 server on this machine",
    }
    return [
        measure(
            10,
            f"log flush of {files} changed files, one instance",
            "s",
            min(batched),
            min(per_file),
            "the same document, one AWS CLI run per file",
            ratio_at_most(0.2, "<= 1/5 of one run per file"),
            details,
        ),
        measure(
            10,
            "AWS CLI runs for that flush",
            "runs",
            runs["batched"],
            runs["per_file"],
            "one per file, and the manifest's",
            at_most(2, " (the files', the manifest's)"),
        ),
    ]
