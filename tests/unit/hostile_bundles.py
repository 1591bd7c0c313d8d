"""Hostile bundles, built byte by byte where zipfile would refuse to write them."""

from __future__ import annotations

import io
import random
import struct
import warnings
import zipfile
from collections.abc import Iterable

APPSPEC = b"""version: 0.0
os: linux
hooks:
  ApplicationStart:
    - location: scripts/start.sh
"""

Entry = tuple[str | zipfile.ZipInfo, bytes | str]


def zip_of(entries: Iterable[Entry], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are written on purpose
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return buffer.getvalue()


def valid_bundle(*extra: Entry) -> bytes:
    """appspec.yml and its one script, plus ``extra``."""
    return zip_of([("appspec.yml", APPSPEC), ("scripts/start.sh", b"#!/bin/sh\n"), *extra])


def with_raw_name(data: bytes, old: bytes, new: bytes) -> bytes:
    """The same zip with an entry's name bytes swapped (local header and directory alike)."""
    assert len(old) == len(new) and data.count(old) == 2, (old, new)
    return data.replace(old, new)


def set_utf8_flag(data: bytes, on: bool) -> bytes:
    """Every entry's general-purpose flag bit 11 (names are UTF-8) set or cleared."""
    patched = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        while at >= 0:
            (flags,) = struct.unpack_from("<H", data, at + offset)
            struct.pack_into("<H", patched, at + offset, flags | 0x800 if on else flags & ~0x800)
            at = data.find(signature, at + 4)
    return bytes(patched)


def _central_records(data: bytes) -> tuple[int, list[bytes]]:
    end = data.rfind(b"PK\x05\x06")
    size, offset = struct.unpack_from("<II", data, end + 12)
    directory = data[offset : offset + size]
    records, at = [], 0
    while at < len(directory):
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", directory, at + 28)
        record_end = at + 46 + name_length + extra_length + comment_length
        records.append(directory[at:record_end])
        at = record_end
    return offset, records


def overlapping_bomb(copies: int, kernel_bytes: int = 1_500_000) -> bytes:
    """A valid bundle plus ``copies`` directory records that all name one compressed entry.

    The kernel compresses about 100 times, under any ratio limit, and each record's sizes are
    honest; but the zip holds the kernel once, so it unpacks to ``copies`` times more than it is.
    """
    rng = random.Random(7)
    kernel = b"".join(b"a" * 99 + bytes([rng.randrange(256)]) for _ in range(kernel_bytes // 100))
    data = valid_bundle(("app/kernel.bin", kernel))
    offset, records = _central_records(data)
    kernel_record = next(r for r in records if b"app/kernel.bin" in r)
    # Same length as app/kernel.bin, so that the record's name length stays right.
    copies_records = [
        kernel_record.replace(b"app/kernel.bin", f"app/{i:06d}.bin".encode()) for i in range(copies)
    ]
    directory = b"".join([*records, *copies_records])
    count = len(records) + copies
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(directory), offset, 0)
    return data[:offset] + directory + end


def with_stated(data: bytes, name: str, *, size: int | None = None, crc: int | None = None) -> bytes:
    """The zip with entry ``name``'s stated size or CRC-32 changed alike in its local header and
    in the central directory (APPNOTE.TXT 4.3.7 and 4.3.12), as a tool that writes them would."""
    patched = bytearray(data)
    # (signature, CRC-32 at, uncompressed size at, name length at, name at)
    for signature, crc_at, size_at, length_at, name_at in (
        (b"PK\x03\x04", 14, 22, 26, 30),
        (b"PK\x01\x02", 16, 24, 28, 46),
    ):
        at = data.find(signature)
        while at >= 0:
            (name_length,) = struct.unpack_from("<H", data, at + length_at)
            if data[at + name_at : at + name_at + name_length] == name.encode():
                if size is not None:
                    struct.pack_into("<I", patched, at + size_at, size)
                if crc is not None:
                    struct.pack_into("<I", patched, at + crc_at, crc)
            at = data.find(signature, at + 4)
    return bytes(patched)
