"""S3RangeReader on moto: zipfile and bundle validation over ranged GETs, with few requests."""

from __future__ import annotations

import functools
import io
import math
import os
import random
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from canaryfleet.adapters.artifacts import S3ArtifactStore
from canaryfleet.adapters.clients import client, reset_clients
from canaryfleet.adapters.s3_range_reader import S3RangeReader
from canaryfleet.errors import ArtifactNotFound, InvalidBundle, TransientAwsError
from canaryfleet.logic.bundle import bundle_policy, validate_bundle
from canaryfleet.models.artifact import ArtifactRef
from canaryfleet.models.policy import PolicyLimits, SetWeight, default_policy
from moto import mock_aws

APPSPEC = """\
version: 0.0
os: linux
files:
  - source: /app
    destination: /opt/big-app
hooks:
  ApplicationStart:
    - location: scripts/start.sh
      timeout: 60
"""


@dataclass(frozen=True)
class Bucket:
    name: str

    def put(self, key: str, body: bytes) -> str | None:
        """Store an object; its version id if the bucket is versioned."""
        version = client("s3").put_object(Bucket=self.name, Key=key, Body=body).get("VersionId")
        return None if version is None else str(version)

    def reader(self, key: str, version_id: str | None = None, **options: int) -> S3RangeReader:
        return S3RangeReader(self.name, key, version_id, **options)


@pytest.fixture(scope="module")
def _aws() -> Iterator[None]:
    # One moto for the module (starting it is the slow part); each test gets its own bucket.
    with mock_aws():
        reset_clients()
        yield
    reset_clients()


@pytest.fixture
def bucket(_aws: None) -> Bucket:
    name = f"artifacts-{uuid.uuid4().hex[:12]}"
    client("s3").create_bucket(Bucket=name)
    return Bucket(name)


@functools.cache
def large_bundle(entries: int = 5_000, blob_bytes: int = 16 * 1024**2) -> bytes:
    """appspec.yml and its script first, then a large incompressible blob, then many small files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("appspec.yml", APPSPEC)
        archive.writestr("scripts/start.sh", "#!/bin/sh\n")
        archive.writestr("rollout.yaml", "steps: [{kind: set_weight, weight: 10}, {kind: approval}]\n")
        archive.writestr(zipfile.ZipInfo("app/lib/blob.bin"), os.urandom(blob_bytes), zipfile.ZIP_STORED)
        for index in range(entries):
            archive.writestr(f"app/static/assets/{index:05d}/file-with-a-long-name.txt", f"asset {index}\n")
    return buffer.getvalue()


def test_given_a_large_bundle_of_many_entries_when_validated_from_s3_then_it_is_read_once_in_few_requests(
    bucket: Bucket,
) -> None:
    data = large_bundle()
    bucket.put("big-app/1.0.0.zip", data)
    reader = bucket.reader("big-app/1.0.0.zip")

    report = validate_bundle(reader)

    assert report.entries == 5_004
    assert report.hooks == {"ApplicationStart": ["scripts/start.sh"]}
    # The tail, the rest of the central directory, the block holding appspec.yml; then every
    # entry's data, checked against its stated size, read forward 4 MiB at a time.
    assert reader.requests <= 4 + math.ceil(len(data) / (4 * 1024**2))
    assert reader.bytes_fetched < len(data) + 1024**2


def test_given_a_bundle_validated_once_when_its_policy_is_read_then_no_further_request_is_made(
    bucket: Bucket,
) -> None:
    bucket.put("big-app/1.0.0.zip", large_bundle())
    reader = bucket.reader("big-app/1.0.0.zip")
    validate_bundle(reader)
    requests = reader.requests

    policy = bundle_policy(reader, default_policy(), PolicyLimits())

    assert policy.steps[0] == SetWeight(weight=10)
    assert reader.requests == requests


def test_given_random_seeks_and_reads_when_served_from_s3_then_the_bytes_match_the_object(
    bucket: Bucket,
) -> None:
    data = os.urandom(300_000)
    bucket.put("app/random.bin", data)
    reader = bucket.reader("app/random.bin", block_size=4096, max_blocks=8)
    local = io.BytesIO(data)
    moves = random.Random(7)

    for _ in range(200):
        offset, whence = moves.choice(
            [
                (moves.randrange(len(data)), io.SEEK_SET),
                (-moves.randrange(1, 5000), io.SEEK_END),
                (10, io.SEEK_CUR),
            ]
        )
        size = (
            moves.choice([-1, 0, 1, 100, 5000, 20_000]) if whence != io.SEEK_SET else moves.randrange(10_000)
        )
        assert reader.seek(offset, whence) == local.seek(offset, whence)
        assert reader.read(size) == local.read(size)
        assert reader.tell() == local.tell()


def test_given_a_read_past_the_end_then_it_returns_nothing_and_seeking_before_the_start_fails(
    bucket: Bucket,
) -> None:
    bucket.put("app/small.bin", b"0123456789")
    reader = bucket.reader("app/small.bin")

    reader.seek(100)

    assert reader.read(5) == b""
    assert reader.size == 10
    with pytest.raises(OSError, match="negative seek position"):
        reader.seek(-11, io.SEEK_END)


def test_given_blocks_already_read_when_read_again_then_no_request_is_made(bucket: Bucket) -> None:
    bucket.put("app/data.bin", os.urandom(64 * 1024))
    reader = bucket.reader("app/data.bin", block_size=4096)
    reader.seek(1000)
    reader.read(10_000)
    requests = reader.requests

    reader.seek(2000)
    reader.read(5_000)

    assert reader.requests == requests


def test_given_a_full_cache_when_an_evicted_block_is_read_again_then_it_is_fetched_again(
    bucket: Bucket,
) -> None:
    bucket.put("app/data.bin", os.urandom(64 * 1024))
    reader = bucket.reader("app/data.bin", block_size=1024, max_blocks=2)
    for block in (0, 1, 2):
        reader.seek(block * 1024)
        reader.read(1)
    requests = reader.requests

    reader.seek(0)
    reader.read(1)

    assert reader.requests == requests + 1


def test_given_a_version_id_when_the_key_was_overwritten_then_the_named_version_is_read(
    bucket: Bucket,
) -> None:
    client("s3").put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
    first = bucket.put("app/1.0.0.zip", b"first version")
    bucket.put("app/1.0.0.zip", b"second version, longer")

    reader = bucket.reader("app/1.0.0.zip", version_id=first)

    assert reader.read() == b"first version"


def test_given_no_version_id_when_the_object_changes_mid_read_then_reading_fails_rather_than_mixing(
    bucket: Bucket,
) -> None:
    bucket.put("app/1.0.0.zip", os.urandom(20_000))
    reader = bucket.reader("app/1.0.0.zip", block_size=1024)
    assert reader.size == 20_000
    bucket.put("app/1.0.0.zip", os.urandom(20_000))

    with pytest.raises(ClientError) as raised:
        reader.read(10)

    assert raised.value.response["Error"]["Code"] == "PreconditionFailed"


def test_given_an_empty_object_when_validated_then_it_is_rejected_as_empty(bucket: Bucket) -> None:
    bucket.put("app/1.0.0.zip", b"")
    reader = bucket.reader("app/1.0.0.zip")

    with pytest.raises(InvalidBundle, match=r"the bundle is empty \(0 bytes\)"):
        validate_bundle(reader)
    assert reader.requests == 1


def test_given_a_missing_object_when_read_then_the_s3_error_is_not_mistaken_for_a_bad_bundle(
    bucket: Bucket,
) -> None:
    with pytest.raises(ArtifactNotFound, match="NoSuchKey") as raised:
        validate_bundle(bucket.reader("app/none.zip"))

    assert isinstance(raised.value.__cause__, ClientError)


def test_given_a_missing_object_when_its_metadata_is_read_then_it_is_not_found(bucket: Bucket) -> None:
    # HEAD answers 404 with no error document: botocore names it "404"
    artifact = ArtifactRef(bucket=bucket.name, key="app/none.zip", application="app", version="none")

    with pytest.raises(ArtifactNotFound, match="404"):
        S3ArtifactStore().metadata(artifact)


def test_given_access_denied_then_the_s3_error_is_raised_as_it_is(bucket: Bucket) -> None:
    # S3 answers AccessDenied for a missing object to a caller without s3:ListBucket, and for a
    # missing grant: neither is told apart here, so it stays the error it is (retried, then
    # dead-lettered), never a rejection of the build.
    with Stubber(client("s3")) as stub:
        stub.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(ClientError) as raised:
            validate_bundle(bucket.reader("app/none.zip"))

    assert raised.value.response["Error"]["Code"] == "AccessDenied"


def test_given_s3_answers_416_for_an_empty_object_then_its_size_is_zero(bucket: Bucket) -> None:
    with Stubber(client("s3")) as stub:
        stub.add_client_error("get_object", service_error_code="InvalidRange", http_status_code=416)
        reader = bucket.reader("app/empty.zip")

        assert (reader.size, reader.read()) == (0, b"")


def test_given_s3_is_throttling_when_read_then_the_error_is_transient(bucket: Bucket) -> None:
    with Stubber(client("s3")) as stub:
        stub.add_client_error("get_object", service_error_code="SlowDown", http_status_code=503)

        with pytest.raises(TransientAwsError, match="SlowDown"):
            validate_bundle(bucket.reader("app/1.0.0.zip"))
