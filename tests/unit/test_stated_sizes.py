"""Entries that unpack to another size than their headers state (logic.bundle.safe_zip).

The bundle's size and ratio limits are judged from the sizes the zip states. Info-ZIP's unzip,
which the CodeDeploy agent runs, writes an entry's whole compressed stream whatever size is
stated, so a zip that understates its sizes would fill the instance's disk past every limit:
each entry is decompressed once to check it, a chunk at a time.
"""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle import validate_bundle

from tests.unit.hostile_bundles import with_stated

APPSPEC = b"version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n"


def zipped(data: bytes, method: int = zipfile.ZIP_DEFLATED, level: int | None = None) -> bytes:
    """A valid bundle with ``data`` as big.bin, compressed with ``method``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        archive.writestr("appspec.yml", APPSPEC)
        archive.writestr("start.sh", b"#!/bin/sh\n")
        archive.writestr("big.bin", data, compress_type=method)
    return buffer.getvalue()


def stating(data: bytes, *, size: int | None = None, crc: int | None = None) -> bytes:
    return with_stated(data, "big.bin", size=size, crc=crc)


@pytest.mark.parametrize(
    "method",
    [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_STORED],
    ids=["deflated", "bzip2", "stored"],
)
def test_an_entry_that_unpacks_to_more_than_it_states_is_refused(method: int) -> None:
    # Given big.bin, 3 MiB of data, stated as 100 bytes (the ratio and size checks see 100 bytes)
    data = stating(zipped(b"A" * 3 * 1024 * 1024, method), size=100)

    # When the bundle is validated
    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(data)

    # Then it is refused for what unzip would write
    assert refused.value.reason == (
        "entry 'big.bin' unpacks to more than the 100 bytes it states; CodeDeploy's unzip would write"
        " all of it, past the bundle's size limits (a zip bomb that understates its size, or a corrupt zip)"
    )


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2], ids=["deflated", "bzip2"])
def test_an_entry_that_unpacks_to_less_than_it_states_is_refused(method: int) -> None:
    data = stating(zipped(b"B" * 1000, method), size=1001)

    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(data)

    assert refused.value.reason == (
        "entry 'big.bin' unpacks to 1,000 bytes, not the 1,001 bytes it states (corrupt)"
    )


def test_an_entry_whose_data_fails_its_crc_is_refused() -> None:
    content = b"release 2.0.0\n" * 100
    data = stating(zipped(content), crc=zlib.crc32(content) ^ 1)

    with pytest.raises(InvalidBundle) as refused:
        validate_bundle(data)

    assert refused.value.reason == "entry 'big.bin' fails its CRC-32 check: its data is corrupt"


def test_a_bomb_that_understates_its_size_is_refused_holding_only_a_chunk() -> None:
    # Given 128 MiB of zeros (about 128 KiB deflated) stated as 1 KiB
    stream = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = b"\0" * (1024 * 1024)
    body = b"".join(stream.compress(zeros) for _ in range(128)) + stream.flush()
    honest = zipped(b"\0" * 1024)
    data = _with_raw_deflate(honest, body)

    # When it is validated, with its allocations traced
    tracemalloc.start()
    try:
        with pytest.raises(InvalidBundle, match=r"unpacks to more than the 1\.0 KiB it states"):
            validate_bundle(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then it is refused without unpacking it: far less than the bomb was ever held
    assert peak < 32 * 1024 * 1024


def test_an_honest_large_entry_is_accepted_without_being_held_whole() -> None:
    # Given 48 MiB of data that deflates about 2:1, stated as it is
    sixteen = bytes(range(16)) * 16
    data = zipped(random.Random(7).randbytes(48 * 1024 * 1024).translate(sixteen), level=1)

    tracemalloc.start()
    try:
        report = validate_bundle(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert report.uncompressed_bytes > 48 * 1024 * 1024
    assert peak < 32 * 1024 * 1024, "decompressed a chunk at a time, never whole"


def _with_raw_deflate(honest: bytes, body: bytes) -> bytes:
    """``honest`` rebuilt with big.bin's compressed data replaced by ``body`` (sizes as stated)."""
    with zipfile.ZipFile(io.BytesIO(honest)) as archive:
        infos = {info.filename: (info, archive.read(info)) for info in archive.infolist()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (info, content) in infos.items():
            if name != "big.bin":
                archive.writestr(info, content)
    data = buffer.getvalue()
    # Append big.bin by hand: local header, data, then a central directory with it added.
    cut = data.find(b"PK\x01\x02")
    entries, directory, end = (
        data[:cut],
        data[cut : data.find(b"PK\x05\x06")],
        data[data.find(b"PK\x05\x06") :],
    )
    info = infos["big.bin"][0]
    big = b"big.bin"
    local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, info.CRC, len(body), info.file_size, len(big), 0
    )
    central = struct.pack(
        "<4s6H3L5H2L",
        b"PK\x01\x02",
        20,
        20,
        0,
        8,
        0,
        0,
        info.CRC,
        len(body),
        info.file_size,
        len(big),
        0,
        0,
        0,
        0,
        0o100644 << 16,
        len(entries),
    )
    count, size = struct.unpack_from("<H", end, 10)[0] + 1, len(directory) + len(central) + len(big)
    offset = len(entries) + len(local) + len(big) + len(body)
    new_end = end[:8] + struct.pack("<HHLL", count, count, size, offset) + end[20:]
    return entries + local + big + body + directory + central + big + new_end


@pytest.mark.skipif(shutil.which("unzip") is None, reason="Info-ZIP's unzip is not installed here")
def test_unzip_writes_what_an_entry_unpacks_to_whatever_it_states(tmp_path: Path) -> None:
    # The rule's ground: unzip 6.0, as the agent runs it, on an entry stating 100 bytes of 3 MiB
    (tmp_path / "bundle.zip").write_bytes(stating(zipped(b"A" * 3 * 1024 * 1024), size=100))

    unpacked = subprocess.run(
        ["unzip", "-o", "bundle.zip", "-d", "out"], cwd=tmp_path, capture_output=True, check=False
    )

    assert unpacked.returncode == 0
    assert (tmp_path / "out" / "big.bin").stat().st_size == 3 * 1024 * 1024


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
def test_empty_files_as_zip_tools_write_them_are_accepted(method: int) -> None:
    # Given an empty big.bin: stored, or a compressed stream of nothing
    data = zipped(b"", method)

    assert validate_bundle(data).entries == 3


def test_a_deflated_entry_whose_stream_stops_before_its_end_is_refused() -> None:
    # Given big.bin stated as deflated with no compressed bytes at all, on which unzip fails
    # ("invalid compressed data to inflate", exit status 2), and one cut in the middle
    empty = _with_raw_deflate(zipped(b""), b"")
    stream = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    content = random.Random(5).randbytes(50_000)
    whole = stream.compress(content) + stream.flush()
    cut = _with_raw_deflate(zipped(content), whole[: len(whole) // 2])

    for data in (empty, cut):
        with pytest.raises(InvalidBundle) as refused:
            validate_bundle(data)

        assert refused.value.reason == (
            "the compressed data of entry 'big.bin' stops before its end (corrupt, or cut short):"
            " CodeDeploy's unzip fails on it"
        )
