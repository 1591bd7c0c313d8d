"""Figure 9: checking an uploaded bundle, every entry decompressed once (safe_zip.check_stated_sizes).

CodeDeploy's unzip writes what an entry unpacks to, whatever size the zip states, so start_rollout
decompresses each entry once to hold the bundle to its size limits. A bundle of
``profile.bundle_mib`` MiB unpacked (files of a build's sizes, compressing about 2:1) is put in a
moto S3 bucket and validated through the ``S3RangeReader`` start_rollout uses, to count its GETs;
the check is timed on the same bytes in memory (moto copies the whole object for every ranged GET,
which AWS does not).

Baseline, in the same run: every entry read with Python's zipfile from the same bytes, what any
check that opens each file costs. The GETs are counted against one per entry, what reading each
entry alone through ranged GETs would make. The last measure scales this
machine's seconds per MiB to the largest bundle the limits allow (2 GiB unpacked) on the
function's share of a vCPU (Lambda: 1,769 MB is one vCPU; start_rollout has 1,024 MB), CPU only,
against the function's 120-s timeout.
"""

from __future__ import annotations

import io
import math
import os
import random
import time
import zipfile

import boto3
from moto import mock_aws

from bench.profiles import Profile
from bench.results import Measure, at_most, measure, ratio_at_most

BUCKET = "bench-bundles"
KEY = "hello-app/9.9.9.zip"
APPSPEC = b"version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n"
FULL_VCPU_MB = 1769
FUNCTION_MB = 1024
FUNCTION_TIMEOUT_SECONDS = 120
LARGEST_MIB = 2048  # BundleLimits.max_uncompressed_bytes
CHUNK_MIB = 4  # safe_zip._STREAM_CHUNK


def build_bundle(mib: int, seed: int = 9) -> tuple[bytes, int]:
    """A valid bundle of about ``mib`` MiB unpacked, and its number of entries."""
    rng = random.Random(seed)
    sixteen = bytes(range(16)) * 16  # 16 symbols: deflate about 2:1
    buffer = io.BytesIO()
    entries = 2
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("appspec.yml", APPSPEC)
        archive.writestr("start.sh", b"#!/bin/sh\n")
        left = mib * 1024 * 1024
        while left > 0:
            size = min(left, rng.choice((2_000, 20_000, 200_000, 2_000_000)))
            archive.writestr(f"app/lib/f{entries}.bin", rng.randbytes(size).translate(sixteen))
            left -= size
            entries += 1
    return buffer.getvalue(), entries


def _read_every_entry(data: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            archive.read(info)


def measure_bundle_check(profile: Profile) -> list[Measure]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from canaryfleet.adapters.s3_range_reader import S3RangeReader  # noqa: PLC0415 (after the region)
    from canaryfleet.logic.bundle import validate_bundle  # noqa: PLC0415

    data, entries = build_bundle(profile.bundle_mib)
    checks, baselines = [], []
    for _ in range(3):  # alternated, the best of each kept; from memory: the CPU the check costs
        started = time.perf_counter()
        report = validate_bundle(data)
        checks.append(time.perf_counter() - started)
        started = time.perf_counter()
        _read_every_entry(data)
        baselines.append(time.perf_counter() - started)
    with mock_aws():  # the GETs the check makes through the reader start_rollout uses (not timed:
        s3 = boto3.client("s3", region_name="us-east-1")  # moto copies the object for every GET)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
        reader = S3RangeReader(BUCKET, KEY)
        validate_bundle(reader)
        gets = reader.requests
    check, baseline = min(checks), min(baselines)
    unpacked_mib = report.uncompressed_bytes / 1024**2
    per_mib = check / unpacked_mib
    largest = per_mib * LARGEST_MIB * FULL_VCPU_MB / FUNCTION_MB
    details = {
        "unpacked_mib": round(unpacked_mib, 1),
        "zip_mib": round(len(data) / 1024**2, 1),
        "entries": entries,
        "checks_seconds": [round(s, 3) for s in checks],
        "baselines_seconds": [round(s, 3) for s in baselines],
    }
    most_gets = math.ceil(len(data) / (CHUNK_MIB * 1024**2)) + 3  # and the tail, the directory, a spare
    return [
        measure(
            9,
            f"bundle check, {unpacked_mib:.0f} MiB unpacked",
            "s",
            check,
            baseline,
            "zipfile reading every entry",
            ratio_at_most(1.5, "<= 1.5x reading every entry"),
            details,
        ),
        measure(
            9,
            "GETs for that check from S3",
            "GETs",
            gets,
            entries,
            "one per entry",
            at_most(most_gets, f" (one per {CHUNK_MIB} MiB of zip, and the directory's)"),
            {"bytes_fetched": reader.bytes_fetched, "zip_bytes": len(data)},
        ),
        measure(
            9,
            "check of a 2 GiB bundle at 1,024 MB (CPU, scaled)",
            "s",
            largest,
            FUNCTION_TIMEOUT_SECONDS,
            "start_rollout's timeout",
            at_most(FUNCTION_TIMEOUT_SECONDS / 2, " s, half the timeout"),
            {"seconds_per_mib_here": round(per_mib, 5)},
        ),
    ]
