"""Reading a bundle's zip safely: its directory judged before anything is read, nothing extracted.

Zip slip, zip bombs (sizes, ratios, overlapping entries), links, special files, encrypted
entries and names that mean something else on another system are all refused here, from the
central directory alone; then small files (appspec.yml, rollout.yaml) can be read within a cap,
and every entry decompressed once to check the size it states (check_stated_sizes).
"""

from __future__ import annotations

import bz2
import codecs
import io
import lzma
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import BinaryIO, Protocol, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle.messages import describe, size_text
from canaryfleet.models.problems import short

_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_UNICODE_PATH_EXTRA = 0x7075
# The "version made by" host of an entry (APPNOTE.TXT 4.4.2.2: 0 - MS-DOS and OS/2 (FAT / VFAT /
# FAT32 file systems), 3 - UNIX).
_FAT_HOST = 0
_UNIX_HOST = 3
_DRIVE = re.compile(r"^[A-Za-z]:")
# Unicode's control characters (general category Cc): these 65 code points, fixed by its stability
# policy; one search, not a category look-up per character (100,000 long names take seconds).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The fixed part of a local file header, before its name and extra field (APPNOTE.TXT 4.3.7).
_LOCAL_HEADER_BYTES = 30
# Everything zipfile (and the codecs under it) raises for a corrupt or unsupported archive.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,
    OverflowError,
    struct.error,
    zlib.error,
    lzma.LZMAError,
)


class SeekableReader(Protocol):
    """What validation needs of a source: ``io.BytesIO``, an open file, an ``S3RangeReader``."""

    def read(self, size: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...
    def seekable(self) -> bool: ...


BundleSource: TypeAlias = bytes | BinaryIO | SeekableReader


class BundleLimits(BaseModel):
    """How large and how compressed a bundle may be, judged from its zip directory."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    max_entries: int = Field(
        default=100_000,
        ge=1,
        description=(
            "Entries (files and folders). Default 100,000: CodeDeploy documents no file-count quota and"
            " its agent has no entry limit, and a Node app's node_modules alone is often over 10,000."
        ),
    )
    max_uncompressed_bytes: int = Field(
        default=2 * 1024**3,
        ge=1,
        description="Uncompressed size of the bundle and of any entry. Default 2 GiB.",
    )
    max_compression_ratio: float = Field(
        default=200.0, gt=1, description="Uncompressed/compressed, per entry and overall. Default 200."
    )
    ratio_grace_bytes: int = Field(
        default=1024**2,
        ge=0,
        description=(
            "Entries, and bundles, that uncompress to at most this are not judged by ratio: a small file"
            " of repeated bytes compresses beyond any ratio and is harmless. Default 1 MiB."
        ),
    )
    max_central_directory_bytes: int = Field(
        default=64 * 1024**2,
        ge=1,
        description=(
            "The zip's directory is read whole (its records counted before they are parsed). `zip -r`"
            " of 100,000 entries of node_modules takes 13 MiB (npm's layout, names of 61 bytes on"
            " average) to 22 MiB (pnpm's, 152); 64 MiB fits names of 600. Default 64 MiB."
        ),
    )
    max_appspec_bytes: int = Field(default=64 * 1024, ge=1, description="appspec.yml's size. Default 64 KiB.")
    max_rollout_yaml_bytes: int = Field(
        default=16 * 1024, ge=1, description="Size of rollout.yaml. Default 16 KiB."
    )


DEFAULT_LIMITS = BundleLimits()


@dataclass(frozen=True)
class OpenedBundle:
    """A zip whose directory passed every check: its files and folders by normalised path."""

    archive: zipfile.ZipFile
    files: dict[str, zipfile.ZipInfo]  # normalised path -> entry, regular files only
    directories: frozenset[str]  # folders, named by an entry or implied by a path
    entries: int
    uncompressed_bytes: int
    compressed_bytes: int
    # The one top-level folder the agent unpacks the bundle from, if the zip holds its files there.
    root_folder: str | None = None
    # Entries named with backslashes for folders, as written (see _as_unzip_writes).
    backslash_names: tuple[str, ...] = ()
    # The zip's bytes, for reading its entries' data whole (check_stated_sizes).
    reader: SeekableReader | None = None
    # Symbolic links by normalised path (as unpacked), and each one's target as stored.
    links: dict[str, zipfile.ZipInfo] = field(default_factory=dict)
    link_targets: dict[str, str] = field(default_factory=dict)
    # Where each link leads once every link on the way is followed.
    link_resolved: dict[str, str] = field(default_factory=dict)

    def resolve(self, path: str) -> str:
        """``path`` as the instance's file system finds it once unpacked: each link on the way
        replaced by what it points to (see :func:`resolve_links`)."""
        return resolve_links(self.link_targets, path)


class _BoundedReads:
    """Passes reads through, refusing a sized read of more than ``limit`` bytes, and, until
    ``counted`` is called, a read holding more than ``max_entries`` central directory records.

    zipfile reads the whole central directory with one ``read(size)``, the size taken from
    the end record: without this, a forged size would make an S3 source fetch (and hold) most
    of the object. Its other reads are small, or unsized reads of the last 64 KiB. It then makes
    an object of every record before the entries can be counted: 64 MiB of records with one-byte
    names is 1.4 million of them, some 500 MiB of objects, so they are counted in the bytes first.
    """

    def __init__(self, source: SeekableReader, size: int, limits: BundleLimits) -> None:
        self._source = source
        self._size = size
        self._limit = limits.max_central_directory_bytes
        self._max_entries: int | None = limits.max_entries

    def read(self, size: int = -1, /) -> bytes:
        if size > self._limit and self._size - self._source.tell() > self._limit:
            raise InvalidBundle(
                f"the zip's central directory claims {size_text(size)}; at most {size_text(self._limit)}"
                " is read (BundleLimits.max_central_directory_bytes: too many entries or very long names,"
                " or a corrupt zip); ship a folder of many small files, such as node_modules, as one"
                " archive inside the bundle that a hook unpacks"
            )
        data = self._source.read(size)
        if self._max_entries is not None and data.startswith(_CENTRAL_SIGNATURE):
            _count_records(data, self._max_entries)
        return data

    def counted(self) -> None:
        """The directory is read: later reads are entries' data, not counted."""
        self._max_entries = None

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self._source.seek(offset, whence)

    def tell(self) -> int:
        return self._source.tell()

    def seekable(self) -> bool:
        return True


@contextmanager
def _zip_errors(reason: str) -> Iterator[None]:
    try:
        yield
    except _ZIP_ERRORS as exc:
        raise InvalidBundle(f"{reason} ({describe(exc)})") from None


@contextmanager
def opened(source: BundleSource, limits: BundleLimits) -> Iterator[OpenedBundle]:
    """The bundle, open and indexed, or InvalidBundle from its directory alone."""
    reader: SeekableReader = io.BytesIO(source) if isinstance(source, bytes) else source
    reader.seek(0, io.SEEK_END)
    size = reader.tell()
    if size == 0:
        raise InvalidBundle("the bundle is empty (0 bytes); a CodeDeploy bundle is a zip file")
    bounded = _BoundedReads(reader, size, limits)
    try:
        archive = zipfile.ZipFile(bounded)
        bounded.counted()
    except UnicodeDecodeError as exc:
        raw = exc.object[exc.start : exc.end]
        raise InvalidBundle(
            f"an entry name is marked UTF-8 in the zip but is not valid UTF-8 (bytes {short(raw)})"
        ) from None
    except _ZIP_ERRORS as exc:
        other = _other_archive(reader)
        if other is not None:
            raise InvalidBundle(
                f"the bundle is not a zip file: it is {other}; canaryfleet deploys zip bundles"
                " (zip the build's folder from inside it, or use `canaryfleet publish`)"
            ) from None
        raise InvalidBundle(
            f"the bundle is not a zip file, or is truncated or corrupt ({describe(exc)})"
        ) from None
    with archive:
        indexed = replace(_index(archive, limits), reader=bounded)
        yield _with_link_targets(indexed) if indexed.links else indexed


# What a build tool makes when it does not make a zip: each format's leading bytes (gzip: RFC 1952
# 2.3.1; tar: POSIX ustar, "ustar" at offset 257; the others from their published formats).
_OTHER_ARCHIVES = (
    (0, b"\x1f\x8b", "a gzip file (a .tar.gz or .tgz?)"),
    (0, b"BZh", "a bzip2 file (a .tar.bz2?)"),
    (0, b"\xfd7zXZ\x00", "an xz file (a .tar.xz?)"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (257, b"ustar", "a tar archive"),
)


def _other_archive(reader: SeekableReader) -> str | None:
    """What the bundle is instead of a zip, when its first bytes say so."""
    try:
        reader.seek(0)
        head = reader.read(262)
    except Exception:  # a hint only: whatever stops this read (S3 too) leaves the plain reason
        return None
    return next((name for at, magic, name in _OTHER_ARCHIVES if head[at : at + len(magic)] == magic), None)


# A central directory record (APPNOTE.TXT 4.3.12): its signature, and where the lengths of its
# name, extra field and comment are, which follow its 46 fixed bytes.
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_CENTRAL_RECORD_BYTES = 46
_CENTRAL_LENGTHS = struct.Struct("<3H")
_CENTRAL_LENGTHS_AT = 28


def _count_records(directory: bytes, max_entries: int) -> None:
    """Refuse a central directory of more than ``max_entries`` records (its bytes walked, nothing made)."""
    at = count = 0
    while directory.startswith(_CENTRAL_SIGNATURE, at) and len(directory) >= at + _CENTRAL_RECORD_BYTES:
        count += 1
        at += _CENTRAL_RECORD_BYTES + sum(_CENTRAL_LENGTHS.unpack_from(directory, at + _CENTRAL_LENGTHS_AT))
    if count > max_entries:
        raise InvalidBundle(_too_many_entries(count, max_entries))


def _too_many_entries(count: int, max_entries: int) -> str:
    return (
        f"the bundle has {count:,} entries; at most {max_entries:,} are allowed (the limit on files and"
        " folders, BundleLimits.max_entries): ship a folder of many small files, such as node_modules,"
        " as one archive inside the bundle that a hook unpacks, or prune what the instance does not"
        " need (npm prune --omit=dev)"
    )


def _index(archive: zipfile.ZipFile, limits: BundleLimits) -> OpenedBundle:
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise InvalidBundle(_too_many_entries(len(infos), limits.max_entries))
    files: dict[str, zipfile.ZipInfo] = {}
    links: dict[str, zipfile.ZipInfo] = {}
    directories: set[str] = set()
    seen: dict[str, str] = {}
    backslash_names: list[str] = []
    uncompressed = compressed = folder_chars = 0
    for info in infos:
        written = _checked_name(info)
        name = _as_unzip_writes(info, written)
        if name != written:
            backslash_names.append(written)
        mode = info.external_attr >> 16
        _check_entry_kind(info, name, mode)
        path = normalise(name)
        is_dir = name.endswith("/") or stat.S_ISDIR(mode)
        if not path and not is_dir:
            raise InvalidBundle(f"entry name {short(name)} does not name a file")
        if path in seen:
            other = seen[path]
            raise InvalidBundle(
                f"entry {short(name)} appears more than once in the bundle"
                if other == name
                else f"entries {short(other)} and {short(name)} are the same path"
            )
        seen[path] = name
        _check_entry_size(info, name, limits)
        uncompressed += info.file_size
        compressed += info.compress_size
        # A folder entry adds itself ("./", which bsdtar writes first, names the root: unzip makes
        # nothing for it); a file, the folders above it.
        folder_chars += _add_folders(directories, path if is_dir else path.rpartition("/")[0])
        if folder_chars > _MAX_FOLDER_CHARS:
            raise InvalidBundle(_too_many_folders(name))
        if stat.S_ISLNK(mode):
            if is_dir or not path:
                raise InvalidBundle(f"entry {short(name)} is a symbolic link named as a folder")
            links[path] = info
        elif not is_dir:
            files[path] = info
    _check_no_entry_inside(files, links, directories, seen)
    if uncompressed > limits.max_uncompressed_bytes:
        raise InvalidBundle(
            f"the bundle would uncompress to {size_text(uncompressed)}; the limit is"
            f" {size_text(limits.max_uncompressed_bytes)}"
        )
    ratio = uncompressed / max(compressed, 1)
    if uncompressed > limits.ratio_grace_bytes and ratio > limits.max_compression_ratio:
        raise InvalidBundle(
            f"the bundle would uncompress {ratio:,.0f} times its size"
            f" ({size_text(compressed)} to {size_text(uncompressed)}), a zip bomb; the limit is"
            f" {limits.max_compression_ratio:g} times"
        )
    _check_no_overlap(infos, archive.start_dir)
    # unzip warns about backslashes and exits 1; the agent then unpacks the zip again with rubyzip
    # (command_executor.rb, unpack_bundle), which writes each such entry at the root under its
    # literal name: the root then holds more than one folder, so it is never stripped.
    root = None if backslash_names else _single_root_folder({**files, **links}, directories)
    files, directories = _as_unpacked(files, directories, root)
    links, _ = _as_unpacked(links, set(), root)
    return OpenedBundle(
        archive,
        files,
        frozenset(directories),
        len(infos),
        uncompressed,
        compressed,
        root_folder=root,
        backslash_names=tuple(backslash_names),
        links=links,
    )


def _check_no_entry_inside(
    files: dict[str, zipfile.ZipInfo],
    links: dict[str, zipfile.ZipInfo],
    directories: set[str],
    seen: dict[str, str],
) -> None:
    """Refuse a file or a link that other entries use as a folder."""
    clash = next((path for path in files if path in directories), None)
    if clash is not None:
        raise InvalidBundle(f"{short(seen[clash])} is a file, but other entries use it as a folder")
    clash = next((path for path in links if path in directories), None)
    if clash is not None:
        # unzip would write those entries, then fail to make the link where a folder now is.
        raise InvalidBundle(
            f"{short(seen[clash])} is a symbolic link, but other entries are inside it: zip the folder"
            " it points to under its own name"
        )


# The folders the entries' paths name, in characters of their paths: a path of n parts names n - 1
# folders, so a few thousand deep paths under different folders (each within PATH_MAX) would name
# gigabytes of them. 16 million is 100,000 folders of 160 characters each; 100,000 entries that
# name 9 new folders each (900,000, 15 million characters) took 215 MiB to validate.
_MAX_FOLDER_CHARS = 16_000_000


def _add_folders(directories: set[str], folder: str) -> int:
    """Add ``folder`` ('' for the root) and the folders above it; the characters of those added.

    Every folder in ``directories`` has those above it there too, so the walk up stops at the
    first one already known: a path costs its new folders only.
    """
    added = 0
    while folder and folder not in directories:
        directories.add(folder)
        added += len(folder)
        folder = folder.rpartition("/")[0]
    return added


def _too_many_folders(name: str) -> str:
    return (
        f"the bundle's entries name folders whose paths add up to more than"
        f" {_MAX_FOLDER_CHARS:,} characters (at {short(name)}): deep paths under many"
        " different folders; ship such a tree as one archive inside the bundle that a hook unpacks"
    )


def _as_unpacked(
    files: dict[str, zipfile.ZipInfo], directories: set[str], root: str | None
) -> tuple[dict[str, zipfile.ZipInfo], set[str]]:
    """The paths as the agent unpacks them: from inside the zip's one root folder, if it strips it."""
    if root is None:
        return files, directories
    cut = len(root) + 1
    inside = {path[cut:]: info for path, info in files.items()}
    return inside, {path[cut:] for path in directories if path != root}


def _single_root_folder(files: dict[str, zipfile.ZipInfo], directories: set[str]) -> str | None:
    """The folder a zip made of one folder holds everything in, if the agent unpacks from inside it.

    The CodeDeploy agent (command_executor.rb, unpack_bundle): "If the top level of the archive
    is a directory that contains an appspec, strip that": the archive's root has that one
    folder and nothing else, and a name in it matches /appspec/i. That is `zip -r app.zip app/`.
    """
    tops = {path.split("/", 1)[0] for path in (*files, *directories)}
    if len(tops) != 1:
        return None
    (top,) = tops
    if top not in directories:
        return None
    inside = {path.split("/", 2)[1] for path in (*files, *directories) if path.startswith(f"{top}/")}
    return top if any("appspec" in name.lower() for name in inside) else None


def _check_no_overlap(infos: list[zipfile.ZipInfo], directory_offset: int) -> None:
    """Each entry's bytes come after the previous entry's and before the directory.

    Entries that share compressed bytes (several directory records naming one local file,
    or one entry's data quoting the next one's header) make a zip bomb whose directory
    looks harmless: the compressed sizes it claims add up to far more than the zip holds.
    """
    end, previous = 0, ""
    for info in sorted(infos, key=lambda entry: entry.header_offset):
        if info.header_offset < end:
            raise InvalidBundle(
                f"entries {short(previous)} and {short(info.orig_filename)} overlap in the zip: their"
                " bytes are shared, so the zip would unpack to more than its directory admits (a zip bomb)"
            )
        end = info.header_offset + _LOCAL_HEADER_BYTES + info.compress_size
        previous = info.orig_filename
        if end > directory_offset:
            raise InvalidBundle(
                f"entry {short(info.orig_filename)} claims {size_text(info.compress_size)} of compressed"
                " data, more than the zip holds before its directory (corrupt, or a zip bomb)"
            )


# The longest name Linux takes, in bytes: a path (linux/limits.h PATH_MAX, 4096 with its closing
# NUL) and each of its parts (NAME_MAX, 255). Info-ZIP's unzip 6.0, which the agent unpacks with
# (checked here): a name of 4,096 bytes prints "filename too long--truncating" and exits 1, a part
# of 256 bytes "cannot create" (exit 2 or 50); the agent's fallback then, rubyzip (command_executor.rb,
# unpack_bundle), meets the kernel's ENAMETOOLONG. Either way the deployment fails. With -d, as the
# agent runs it, the folder it unpacks into counts too (some 100 bytes under /opt/codedeploy-agent,
# which its configuration can move): these limits are the ones no such folder could lift.
_PATH_MAX_BYTES = 4095
_NAME_MAX_BYTES = 255
# A part of a name that could be longer than NAME_MAX: UTF-8 takes at most 4 bytes a character.
_LONG_PART = re.compile(rf"[^/]{{{_NAME_MAX_BYTES // 4 + 1},}}")


def _checked_name(info: zipfile.ZipInfo) -> str:
    """The entry's name, if it decodes cleanly, Linux can write it, and it stays inside the bundle."""
    name = info.orig_filename
    if not name:
        raise InvalidBundle("the bundle has an entry with an empty name")
    if not info.flag_bits & _UTF8_FLAG and not name.isascii():
        # Without the flag zipfile reads cp437, which maps every byte: encode gives the raw bytes back.
        raw = name.encode("cp437")
        name = _unix_name(info, raw)
    _check_name_length(name)
    if _CONTROL.search(name):
        raise InvalidBundle(f"entry name {short(name)} contains a control character")
    unicode_path = _unicode_path_extra(info.extra)
    if unicode_path is not None and unicode_path != name:
        # Some unzip tools (and Python 3.12+) prefer this extra field to the entry's name.
        raise InvalidBundle(
            f"entry {short(name)} carries a different name ({short(unicode_path)}) in its extra field"
        )
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise InvalidBundle(
            f"entry name {short(name)} is an absolute path; entries must be relative to the root"
        )
    parts = re.split(r"[/\\]", name)
    if ".." in parts:
        raise InvalidBundle(f"entry name {short(name)} contains '..', which would climb out of the bundle")
    # Windows drops trailing dots and spaces: '...' and '.. ' are '..' there.
    if any(part and part != "." and not part.rstrip(". ") for part in parts):
        raise InvalidBundle(
            f"entry name {short(name)} has a part made only of dots and spaces, which Windows reads as '..'"
        )
    if any(_DRIVE.match(part) for part in parts[1:]):
        raise InvalidBundle(
            f"entry name {short(name)} has a drive ('X:') inside it, which Windows reads as an absolute path"
        )
    return name


def _check_name_length(name: str) -> None:
    """Refuse a name longer than Linux writes, before its folders are listed (_index): a name of
    32,000 parts would list 32,000 folders of up to 64 KB each."""
    size = len(name.encode("utf-8"))
    if size > _PATH_MAX_BYTES:
        raise InvalidBundle(
            f"entry name {short(name)} is {size:,} bytes long; Linux takes at most {_PATH_MAX_BYTES:,}"
            " (PATH_MAX), so CodeDeploy's agent cannot unpack it; shorten its path"
        )
    # Split at '/' only: a backslash is part of a name on Linux (where unzip turns it into a '/',
    # the parts only get shorter), and the agent's fallback writes such a name whole.
    for part in _LONG_PART.findall(name) if size > _NAME_MAX_BYTES else ():
        part_size = len(part.encode("utf-8"))
        if part_size > _NAME_MAX_BYTES:
            raise InvalidBundle(
                f"entry name {short(name)} has a part of {part_size:,} bytes ({short(part, 40)}); Linux"
                f" takes at most {_NAME_MAX_BYTES} (NAME_MAX), so CodeDeploy's agent cannot unpack it;"
                " shorten that name"
            )


def _as_unzip_writes(info: zipfile.ZipInfo, name: str) -> str:
    """The name the agent's unzip gives an entry that separates its folders with backslashes.

    Windows PowerShell 5.1's Compress-Archive writes `scripts\\start.sh`, on a DOS/Windows host.
    Info-ZIP's unzip 6.0 (extract.c), which the CodeDeploy agent runs, makes each backslash a
    folder in a name from a FAT host that has no '/', warning that the zip "appears to use
    backslashes as path separators"; names from other hosts keep their backslashes.
    """
    if info.create_system == _FAT_HOST and "\\" in name and "/" not in name:
        return name.replace("\\", "/")
    return name


def _unix_name(info: zipfile.ZipInfo, raw: bytes) -> str:
    """An unflagged non-ASCII name, as the agent's unzip writes it on Linux, if that is unambiguous.

    Info-ZIP's zip 3.0 on Linux (what `zip -r` is on a Linux build machine) stores a name's bytes
    as they are, UTF-8 there, without the UTF-8 flag; Info-ZIP's unzip, which the CodeDeploy agent
    runs, writes a Unix-made entry's name bytes as they are too, so on the instance the file has
    that UTF-8 name. An entry made elsewhere (DOS/Windows) has its names in a code page unzip
    converts, and bytes that are not UTF-8 name no file the hooks could rely on: both refused.
    """
    if info.create_system == _UNIX_HOST:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    raise InvalidBundle(
        f"entry name {short(raw)} is not ASCII and the zip does not mark it as UTF-8, so its encoding is"
        " ambiguous; create the zip with UTF-8 names (Python's zipfile, or zip -UN=UTF8)"
    )


def _unicode_path_extra(extra: bytes) -> str | None:
    """The name in an Info-ZIP Unicode Path extra field (0x7075), if the entry has one."""
    while len(extra) >= 4:
        kind, length = struct.unpack("<HH", extra[:4])
        if kind == _UNICODE_PATH_EXTRA:
            return extra[9 : 4 + length].decode("utf-8", errors="replace")
        extra = extra[4 + length :]
    return None


# The compression methods the CodeDeploy agent's unzip (Info-ZIP 6.0) unpacks, by number
# (APPNOTE.TXT 4.4.5): stored, deflated, Deflate64 and BZIP2. 6.0 has no LZMA, Zstandard, XZ
# or PPMd, and its fallback (rubyzip 1.3) only stored and deflated.
_DEFLATE64 = 9
_AGENT_METHODS = frozenset({0, 8, _DEFLATE64, 12})
_METHOD_NAMES = {
    1: "Shrink",
    2: "Reduce",
    3: "Reduce",
    4: "Reduce",
    5: "Reduce",
    6: "Implode",
    14: "LZMA",
    93: "Zstandard",
    95: "XZ",
    96: "JPEG",
    97: "WavPack",
    98: "PPMd",
    99: "AES encryption",
}


def _check_entry_kind(info: zipfile.ZipInfo, name: str, mode: int) -> None:
    if info.compress_type not in _AGENT_METHODS:
        method = _METHOD_NAMES.get(info.compress_type, "an unknown method")
        raise InvalidBundle(
            f"entry {short(name)} is compressed with {method} (zip method {info.compress_type}), which"
            " CodeDeploy's agent cannot unpack; zip it with Deflate, the usual zip compression"
        )
    if stat.S_ISLNK(mode) and info.create_system != _UNIX_HOST:
        # unzip makes a link only of an entry a Unix zip wrote (its "version made by" host); from
        # any other, it would write the link's target as a file's text.
        raise InvalidBundle(
            f"entry {short(name)} is marked a symbolic link, but its zip was not made on Unix:"
            " zip it again on Linux or macOS, or with the links followed (zip -r without -y)"
        )
    if info.file_size > _MAX_LINK_BYTES and stat.S_ISLNK(mode):
        raise InvalidBundle(
            f"entry {short(name)} is a symbolic link to a path of {info.file_size} bytes; Linux reads"
            f" at most {_MAX_LINK_BYTES}"
        )
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
        raise InvalidBundle(f"entry {short(name)} is a special file (device, pipe or socket)")
    if info.flag_bits & _ENCRYPTED_FLAG:
        raise InvalidBundle(f"entry {short(name)} is encrypted; CodeDeploy cannot unpack encrypted entries")


def _check_entry_size(info: zipfile.ZipInfo, name: str, limits: BundleLimits) -> None:
    if info.file_size > limits.max_uncompressed_bytes:
        raise InvalidBundle(
            f"entry {short(name)} would uncompress to {size_text(info.file_size)}; the limit is"
            f" {size_text(limits.max_uncompressed_bytes)}"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limits.ratio_grace_bytes and ratio > limits.max_compression_ratio:
        raise InvalidBundle(
            f"entry {short(name)} would uncompress {ratio:,.0f} times its size"
            f" ({size_text(info.compress_size)} to {size_text(info.file_size)}), a zip bomb; the limit is"
            f" {limits.max_compression_ratio:g} times"
        )


# Info-ZIP's unzip, which the agent runs, writes an entry's whole compressed stream whatever size
# its headers state: an entry that states 100 bytes and inflates to 10 MiB is unpacked to 10 MiB,
# exit status 0 (unzip 6.0; tests/unit/test_stated_sizes.py runs it where it is installed). The
# sizes and ratios above, judged from the directory, hold only if each entry unpacks to exactly
# what it states; so every file entry is decompressed once, a chunk at a time, and never held.
_STREAM_CHUNK = 4 * 1024 * 1024
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # APPNOTE.TXT 4.3.7: signature ... name and extra lengths
_LOCAL_SIGNATURE = b"PK\x03\x04"


def check_stated_sizes(
    bundle: OpenedBundle, heads_of: Collection[zipfile.ZipInfo] = (), head_bytes: int = 0
) -> dict[zipfile.ZipInfo, bytes]:
    """Refuse an entry that unpacks to more (or less) than its stated size, or fails its CRC-32.

    Reads every file entry's compressed data once, in order (an S3 source: a GET per 4 MiB).
    Returns the first ``head_bytes`` bytes of each entry of ``heads_of`` as it unpacks (for the
    hook scripts' #! lines), so that reading them costs no more reads of the source.
    """
    if bundle.reader is None:
        raise ValueError("the bundle was not opened with opened()")
    window = _Window(bundle.reader)
    wanted = set(heads_of)
    heads: dict[zipfile.ZipInfo, bytes] = {}
    for info in sorted(bundle.archive.infolist(), key=lambda entry: entry.header_offset):
        if not info.is_dir():  # unzip makes a folder of it and writes none of its data
            with _zip_errors(f"entry {short(info.orig_filename)} cannot be read from the zip"):
                head = _check_stream(window, info, head_bytes if info in wanted else 0)
            if info in wanted:
                heads[info] = head
    return heads


class _Window:
    """Reads forward through the zip a piece of ``_STREAM_CHUNK`` at a time, so that many small
    entries in a row cost one read of the source (one GET on S3), not one each."""

    def __init__(self, source: SeekableReader) -> None:
        self._source = source
        self._start = 0
        self._data = b""

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``: what the piece held has from there, else a new piece
        read from there; b"" past the end."""
        if not self._start <= offset < self._start + len(self._data):
            self._source.seek(offset)
            self._data = self._source.read(_STREAM_CHUNK)
            self._start = offset
        at = offset - self._start
        return self._data[at : at + size]

    def read_exactly(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset``, across pieces; fewer only past the end."""
        parts: list[bytes] = []
        while size > 0 and (piece := self.read(offset, size)):
            parts.append(piece)
            offset += len(piece)
            size -= len(piece)
        return b"".join(parts)


def _check_stream(window: _Window, info: zipfile.ZipInfo, head_bytes: int) -> bytes:
    """Check one entry's data (see check_stated_sizes); its first ``head_bytes`` bytes unpacked."""
    name = short(info.orig_filename)
    if info.compress_type == _DEFLATE64:
        raise InvalidBundle(
            f"entry {name} is compressed with Deflate64, which canaryfleet cannot decompress to check"
            " that it unpacks to the size it states; zip it with Deflate, the usual zip compression"
            " (7-Zip: -mm=Deflate)"
        )
    header = window.read_exactly(info.header_offset, _LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
        raise InvalidBundle(f"entry {name} has no local header where the zip's directory puts it (corrupt)")
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
    at = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    unpacker = _Unpacker(info.compress_type)
    written, crc, left = 0, 0, info.compress_size
    head = b""
    while True:
        if unpacker.pending():  # output held back from input already read: no more input yet
            chunk = b""
        elif left > 0:
            chunk = window.read(at, min(_STREAM_CHUNK, left))
            if not chunk:
                raise InvalidBundle(f"the data of entry {name} ends before the zip says it does (corrupt)")
            at += len(chunk)
            left -= len(chunk)
        else:
            break
        data = unpacker.feed(chunk, min(info.file_size - written + 1, _STREAM_CHUNK))
        written += len(data)
        if written > info.file_size:
            raise InvalidBundle(
                f"entry {name} unpacks to more than the {size_text(info.file_size)} it states; CodeDeploy's"
                " unzip would write all of it, past the bundle's size limits (a zip bomb that understates"
                " its size, or a corrupt zip)"
            )
        crc = zlib.crc32(data, crc)
        if len(head) < head_bytes:
            head += data[: head_bytes - len(head)]
    if not unpacker.ended():
        raise InvalidBundle(
            f"the compressed data of entry {name} stops before its end (corrupt, or cut short):"
            " CodeDeploy's unzip fails on it"
        )
    if written != info.file_size:
        raise InvalidBundle(
            f"entry {name} unpacks to {size_text(written)}, not the {size_text(info.file_size)} it states"
            " (corrupt)"
        )
    if crc != info.CRC:
        raise InvalidBundle(f"entry {name} fails its CRC-32 check: its data is corrupt")
    return head


class _Unpacker:
    """One entry's stored, deflated or BZIP2 data, decompressed at most a given size at a time."""

    def __init__(self, method: int) -> None:
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS) if method == zipfile.ZIP_DEFLATED else None
        self._bunzip = bz2.BZ2Decompressor() if method == zipfile.ZIP_BZIP2 else None

    def pending(self) -> bool:
        """Whether input already fed holds output not yet returned."""
        if self._inflate is not None:
            return bool(self._inflate.unconsumed_tail) and not self._inflate.eof
        if self._bunzip is not None:
            return not self._bunzip.needs_input and not self._bunzip.eof
        return False

    def feed(self, chunk: bytes, most: int) -> bytes:
        """At most ``most`` bytes of output from ``chunk`` and what input is held back."""
        if self._inflate is not None:
            return self._inflate.decompress(self._inflate.unconsumed_tail + chunk, most)
        if self._bunzip is not None:
            return b"" if self._bunzip.eof else self._bunzip.decompress(chunk, most)
        return chunk  # stored: the data is the file

    def ended(self) -> bool:
        """Whether the compressed stream reached its end (stored data has none to reach)."""
        if self._inflate is not None:
            return self._inflate.eof
        if self._bunzip is not None:
            return self._bunzip.eof
        return True


# Linux's limits for a symbolic link: its target is at most PATH_MAX - 1 bytes (4,095), and a
# path's resolution follows at most 40 links (ELOOP: "Too many symbolic links were encountered in
# resolving pathname", path_resolution(7); MAXSYMLINKS).
_MAX_LINK_BYTES = 4095
_MAX_LINK_HOPS = 40
# The steps (path parts) following every link of a bundle may take: a build's links take a few
# each, 100,000 of them well under this; links made to be slow (long targets, long chains) stop.
_LINK_STEPS = 2_000_000


class _ClimbsOut(InvalidBundle):
    """A path whose links lead above the bundle's root."""


class _LinksLoop(InvalidBundle):
    """A path that follows more links than Linux does (ELOOP)."""


def _with_link_targets(bundle: OpenedBundle) -> OpenedBundle:
    """The bundle with its links' targets read and checked, or InvalidBundle.

    CodeDeploy's agent unpacks a Linux bundle with unzip (linux_util.rb, extract_zip), which makes
    each link a link, and installs a link as a link with the same target (install_instruction.rb,
    CopyCommand: FileUtils.symlink(File.readlink(source), destination)); a link to a folder is
    copied as the folder's files (installer.rb, generate_directory_copy follows it). So a link
    must point inside the bundle by a relative path: an absolute one, or one that climbs out,
    names whatever the instance has there. A link whose resolution loops, or a folder link that
    leads back to a folder it is in (the agent's copy would never end), is refused.
    """
    assert bundle.reader is not None
    if bundle.backslash_names:
        # unzip exits 1 on them, and the agent unpacks the zip again with rubyzip (~> 1.3.0, its
        # gemspec), whose Entry#create_symlink only prints "WARNING: skipped symlink".
        raise InvalidBundle(
            f"the bundle has symbolic links and names written with backslashes"
            f" ({short(bundle.backslash_names[0])}): CodeDeploy's agent unpacks such a zip a second"
            " time with rubyzip, which skips links; zip it with '/' in its names"
        )
    window = _Window(bundle.reader)
    targets: dict[str, str] = {}
    for path, info in sorted(bundle.links.items(), key=lambda item: item[1].header_offset):
        label = f"symbolic link {short(info.orig_filename)}"
        with _zip_errors(f"{label} cannot be read from the zip"):
            data = _check_stream(window, info, _MAX_LINK_BYTES + 1)
        try:
            target = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidBundle(f"{label} points to a path that is not UTF-8") from None
        if not target:
            raise InvalidBundle(f"{label} has an empty target")
        if "\0" in target:
            raise InvalidBundle(f"{label}'s target holds a NUL character")
        if target.startswith("/"):
            raise InvalidBundle(
                f"{label} points to {short(target)}, an absolute path: on the instance it would name"
                " whatever is there, not the bundle's file; make it relative, or zip with the links"
                " followed (zip -r without -y)"
            )
        targets[path] = target
    linked = replace(bundle, link_targets=targets)
    resolved: dict[str, str] = {}
    budget = [_LINK_STEPS]
    for path, target in targets.items():
        try:
            resolved[path] = resolve_links(targets, path, budget)
        except (_ClimbsOut, _LinksLoop) as exc:
            label = f"symbolic link {short(bundle.links[path].orig_filename)} (to {short(target)})"
            said = (
                "leads through links that loop: each link must end at a file or a folder"
                if isinstance(exc, _LinksLoop)
                else "points outside the bundle: a link must point to a path inside the bundle"
            )
            raise InvalidBundle(f"{label} {said}") from None
    linked = replace(linked, link_resolved=resolved)
    _check_no_folder_cycle(linked)
    return linked


def resolve_links(targets: dict[str, str], path: str, budget: list[int] | None = None) -> str:
    """``path`` (normalised, inside the bundle) with every link on the way replaced by its target,
    as Linux resolves it: a '..' after a link goes up from where the link points, not from the
    link. InvalidBundle when it climbs above the bundle's root or follows more than 40 links.

    ``budget``: the steps left for the whole bundle's links, spent here (a few per link in a
    real build; links made to be slow to follow run it out, and the bundle is refused).
    """
    parts: list[str] = []
    pending = list(reversed(path.split("/"))) if path else []
    hops = 0
    while pending:
        name = pending.pop()
        if budget is not None:
            budget[0] -= 1
            if budget[0] < 0:
                raise InvalidBundle(
                    f"the bundle's symbolic links take more than {_LINK_STEPS:,} steps to follow (at"
                    f" {short(path)}): zip it with the links followed (zip -r without -y)"
                )
        if name in ("", "."):
            continue
        if name == "..":
            if not parts:
                raise _ClimbsOut(
                    f"the path {short(path)} climbs out of the bundle through its links: a link must"
                    " point inside the bundle"
                )
            parts.pop()
            continue
        parts.append(name)
        target = targets.get("/".join(parts))
        if target is not None:
            hops += 1
            if hops > _MAX_LINK_HOPS:
                raise _LinksLoop(
                    f"the path {short(path)} follows more than {_MAX_LINK_HOPS} symbolic links (they loop)"
                )
            parts.pop()
            pending.extend(reversed(target.split("/")))
    return "/".join(parts)


def _check_no_folder_cycle(bundle: OpenedBundle) -> None:
    """Refuse folder links that lead back to a folder they are in: copying the folder, as the agent
    does for a files source, would follow them for ever."""
    children: dict[str, list[str]] = {}
    for folder in bundle.directories:
        children.setdefault(folder.rpartition("/")[0], []).append(folder)
    via: dict[tuple[str, str], str] = {}
    for path, target in bundle.link_resolved.items():
        if target in bundle.directories or target == "":
            parent = path.rpartition("/")[0]
            children.setdefault(parent, []).append(target)
            via[(parent, target)] = path
    # Depth first from the root, without recursion: a folder met again while still open is a cycle.
    state: dict[str, int] = {}  # 1: open, 2: done
    stack: list[tuple[str, int]] = [("", 0)]
    state[""] = 1
    while stack:
        folder, index = stack[-1]
        below = children.get(folder, [])
        if index == len(below):
            state[folder] = 2
            stack.pop()
            continue
        stack[-1] = (folder, index + 1)
        child = below[index]
        if state.get(child) == 1:
            link = via.get((folder, child), child)
            raise InvalidBundle(
                f"symbolic link {short(link)} (to {short(bundle.link_targets.get(link, ''))}) leads back"
                " to a folder it is in: the agent copies a linked folder's files, and would never end"
            )
        if child not in state:
            state[child] = 1
            stack.append((child, 0))


def normalise(path: str) -> str:
    """Bundle path without empty or '.' segments: './a//b/' -> 'a/b'."""
    return "/".join(part for part in path.split("/") if part not in ("", "."))


def read_text(
    bundle: OpenedBundle, info: zipfile.ZipInfo, label: str, max_bytes: int, *, for_the_agent: bool = False
) -> str:
    """A small UTF-8 file of the bundle, never more than ``max_bytes`` of it read.

    ``for_the_agent``: the CodeDeploy agent reads the file too (appspec.yml), so a UTF-8 byte
    order mark, which only canaryfleet's YAML skips, is refused.
    """
    if info.compress_type == _DEFLATE64:
        # The agent's unzip reads Deflate64 (so other entries may use it); Python's zipfile cannot.
        raise InvalidBundle(
            f"{label} is compressed with Deflate64, which canaryfleet cannot read to check it; zip it"
            " with Deflate, the usual zip compression (7-Zip: -mm=Deflate)"
        )
    if info.file_size > max_bytes:
        raise InvalidBundle(
            f"{label} is {size_text(info.file_size)}; at most {size_text(max_bytes)} is allowed"
        )
    with _zip_errors(f"{label} cannot be read from the zip"), bundle.archive.open(info) as member:
        # One byte more than allowed: a header that understates the size cannot make us hold more.
        data = member.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidBundle(f"{label} is larger than {size_text(max_bytes)}")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Windows PowerShell 5.1 writes UTF-16 with `>` and Out-File; the agent reads UTF-8.
        raise InvalidBundle(
            f"{label} is UTF-16 text (it starts with a UTF-16 byte order mark, as Windows PowerShell"
            " 5.1's Out-File and '>' write files); CodeDeploy reads it as UTF-8: save it as UTF-8"
        )
    if for_the_agent and data.startswith(codecs.BOM_UTF8):
        # The agent parses the text with Ruby's YAML.load (application_specification.rb:28, parse),
        # whose Psych keeps the BOM in the first key: it reads only {"version"=>0.0} and fails with
        # "unsupported operating system ()" (aws/aws-codedeploy-agent issue #100).
        raise InvalidBundle(
            f"{label} starts with a UTF-8 byte order mark (BOM), as Windows PowerShell 5.1's Out-File"
            " -Encoding utf8 writes files; CodeDeploy's agent then reads only its first key and fails"
            ' the deployment ("unsupported operating system"): save it as UTF-8 without a BOM'
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBundle(f"{label} is not UTF-8 text (invalid byte at offset {exc.start})") from None
