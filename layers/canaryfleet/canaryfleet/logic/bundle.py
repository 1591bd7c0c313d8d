"""May this build bundle be deployed? (a CodeDeploy zip for the EC2/on-premises platform)

Only the zip's central directory and two small files inside it (``appspec.yml`` and the
optional ``rollout.yaml``) are read; nothing is extracted, so a hostile zip costs no more
than its directory. Every rejection is an :class:`InvalidBundle` carrying one reason
written for the person who built the bundle.
"""

from __future__ import annotations

import io
import lzma
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, Protocol, TypeAlias

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from canaryfleet.errors import InvalidBundle
from canaryfleet.models.policy import Approval, Bake, OnTimeout, PolicyLimits, RolloutPolicy, SetWeight

APPSPEC = "appspec.yml"
ROLLOUT_YAML = "rollout.yaml"

#: Lifecycle events of an EC2/on-premises deployment that run the appspec's scripts.
HOOK_EVENTS: tuple[str, ...] = (
    "ApplicationStop",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
)
# CodeDeploy allows one hour of script time per lifecycle event.
_MAX_EVENT_SECONDS = 3600
_MAX_YAML_DEPTH = 64
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_UNICODE_PATH_EXTRA = 0x7075
_DRIVE = re.compile(r"^[A-Za-z]:")
# The fixed part of a local file header, before its name and extra field (APPNOTE.TXT 4.3.7).
_LOCAL_HEADER_BYTES = 30
_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")
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

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_entries: int = Field(default=10_000, ge=1, description="Entries (files and folders). Default 10,000.")
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
        default=8 * 1024**2,
        ge=1,
        description="The zip's directory is read whole; 8 MiB fits 10,000 long names. Default 8 MiB.",
    )
    max_appspec_bytes: int = Field(default=64 * 1024, ge=1, description="appspec.yml's size. Default 64 KiB.")
    max_rollout_yaml_bytes: int = Field(
        default=16 * 1024, ge=1, description="Size of rollout.yaml. Default 16 KiB."
    )


class BundleReport(BaseModel):
    """What an accepted bundle holds, for the rollout record."""

    model_config = ConfigDict(frozen=True)

    entries: int = Field(description="Entries in the zip (files and folders).")
    uncompressed_bytes: int = Field(description="Sum of the entries' uncompressed sizes (directory's word).")
    compressed_bytes: int = Field(description="Sum of the entries' compressed sizes.")
    appspec_version: str = Field(description='Always "0.0" for EC2/on-premises.')
    os: str = Field(description="linux or windows.")
    hooks: dict[str, list[str]] = Field(description="Lifecycle event -> its scripts, as paths in the bundle.")
    files: list[dict[str, str]] = Field(description="The appspec's files section: source and destination.")
    has_rollout_yaml: bool = Field(description="The bundle carries a rollout.yaml at its root.")


_DEFAULT_LIMITS = BundleLimits()


def validate_bundle(source: BundleSource, limits: BundleLimits = _DEFAULT_LIMITS) -> BundleReport:
    """Accept a bundle that CodeDeploy can deploy and that is safe to handle, or raise InvalidBundle."""
    with _opened(source, limits) as bundle:
        spec = _read_appspec(bundle, limits)
        if spec.os == "windows":
            _check_windows_names(bundle)
        hooks = _check_hooks(spec, bundle)
        _check_file_sources(spec, bundle)
        has_rollout_yaml = _rollout_yaml_entry(bundle) is not None
    return BundleReport(
        entries=bundle.entries,
        uncompressed_bytes=bundle.uncompressed_bytes,
        compressed_bytes=bundle.compressed_bytes,
        appspec_version="0.0",
        os=spec.os,
        hooks=hooks,
        files=[{"source": f.source, "destination": f.destination} for f in spec.files or []],
        has_rollout_yaml=has_rollout_yaml,
    )


def bundle_policy(
    source: BundleSource,
    base: RolloutPolicy,
    limits: PolicyLimits,
    bundle_limits: BundleLimits = _DEFAULT_LIMITS,
) -> RolloutPolicy:
    """The rollout policy for this bundle: ``base``, overridden by the bundle's rollout.yaml if any.

    rollout.yaml may set ``steps`` and ``deployment_timeout_seconds``. Steps it sets must stay
    within ``limits``; steps it leaves alone are the base policy's and are not judged again.
    """
    with _opened(source, bundle_limits) as bundle:
        entry = _rollout_yaml_entry(bundle)
        if entry is None:
            return base
        text = _read_text(bundle, entry, ROLLOUT_YAML, bundle_limits.max_rollout_yaml_bytes)
    document = _load_yaml(text, ROLLOUT_YAML)
    if not isinstance(document, dict):
        raise InvalidBundle(
            f"{ROLLOUT_YAML} must be a YAML mapping with steps and/or deployment_timeout_seconds;"
            f" it is {_kind(document)}"
        )
    unknown = sorted(str(key) for key in document if key not in ("steps", "deployment_timeout_seconds"))
    if unknown:
        raise InvalidBundle(
            f"{ROLLOUT_YAML} has unknown keys {', '.join(unknown)}; it may set only steps"
            " and deployment_timeout_seconds"
        )
    try:
        policy = RolloutPolicy.model_validate(base.model_dump() | document)
    except ValidationError as exc:
        raise InvalidBundle(f"{ROLLOUT_YAML} is not a valid rollout policy: {_problems(exc)}") from None
    if "steps" in document:
        beyond = _beyond_limits(policy, limits)
        if beyond:
            raise InvalidBundle(f"{ROLLOUT_YAML} goes beyond the platform's limits: {'; '.join(beyond)}")
    return policy


def _beyond_limits(policy: RolloutPolicy, limits: PolicyLimits) -> list[str]:
    problems: list[str] = []
    for index, step in enumerate(policy.steps):
        where = f"steps[{index}]"
        if isinstance(step, SetWeight) and step.weight > limits.max_canary_weight:
            problems.append(
                f"{where} sets weight {step.weight}%, above the maximum canary weight"
                f" {limits.max_canary_weight}%"
            )
        elif isinstance(step, Bake) and step.duration_seconds < limits.min_bake_seconds:
            problems.append(
                f"{where} bakes for {step.duration_seconds} s, less than the minimum"
                f" {limits.min_bake_seconds} s"
            )
        elif (
            isinstance(step, Approval)
            and step.on_timeout is OnTimeout.PROMOTE
            and not limits.allow_promote_on_timeout
        ):
            problems.append(f"{where} promotes on timeout, which the platform does not allow")
    if limits.require_approval and not any(isinstance(step, Approval) for step in policy.steps):
        problems.append("there is no approval step, and the platform requires one")
    return problems


# --- the zip ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Bundle:
    archive: zipfile.ZipFile
    files: dict[str, zipfile.ZipInfo]  # normalised path -> entry, regular files only
    directories: frozenset[str]  # folders, named by an entry or implied by a path
    entries: int
    uncompressed_bytes: int
    compressed_bytes: int


class _BoundedReads:
    """Passes reads through, refusing a sized read of more than ``limit`` bytes.

    zipfile reads the whole central directory with one ``read(size)``, the size taken from
    the end record: without this, a forged size would make an S3 source fetch (and hold) most
    of the object. Its other reads are small, or unsized reads of the last 64 KiB.
    """

    def __init__(self, source: SeekableReader, size: int, limit: int) -> None:
        self._source = source
        self._size = size
        self._limit = limit

    def read(self, size: int = -1, /) -> bytes:
        if size > self._limit and self._size - self._source.tell() > self._limit:
            raise InvalidBundle(
                f"the zip's central directory claims {_bytes(size)}; at most {_bytes(self._limit)}"
                " is read (too many entries, or a corrupt zip)"
            )
        return self._source.read(size)

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
        raise InvalidBundle(f"{reason} ({_describe(exc)})") from None


@contextmanager
def _opened(source: BundleSource, limits: BundleLimits) -> Iterator[_Bundle]:
    reader: SeekableReader = io.BytesIO(source) if isinstance(source, bytes) else source
    reader.seek(0, io.SEEK_END)
    size = reader.tell()
    if size == 0:
        raise InvalidBundle("the bundle is empty (0 bytes); a CodeDeploy bundle is a zip file")
    try:
        archive = zipfile.ZipFile(_BoundedReads(reader, size, limits.max_central_directory_bytes))
    except UnicodeDecodeError as exc:
        raw = exc.object[exc.start : exc.end]
        raise InvalidBundle(
            f"an entry name is marked UTF-8 in the zip but is not valid UTF-8 (bytes {_short(raw)})"
        ) from None
    except _ZIP_ERRORS as exc:
        raise InvalidBundle(
            f"the bundle is not a zip file, or is truncated or corrupt ({_describe(exc)})"
        ) from None
    with archive:
        yield _index(archive, limits)


def _index(archive: zipfile.ZipFile, limits: BundleLimits) -> _Bundle:
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise InvalidBundle(
            f"the bundle has {len(infos):,} entries; at most {limits.max_entries:,} are allowed"
        )
    files: dict[str, zipfile.ZipInfo] = {}
    directories: set[str] = set()
    seen: dict[str, str] = {}
    uncompressed = compressed = 0
    for info in infos:
        name = _checked_name(info)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise InvalidBundle(f"entry {_short(name)} is a symbolic link; bundles may not contain links")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise InvalidBundle(f"entry {_short(name)} is a special file (device, pipe or socket)")
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise InvalidBundle(
                f"entry {_short(name)} is encrypted; CodeDeploy cannot unpack encrypted entries"
            )
        path = _normalise(name)
        is_dir = info.is_dir() or stat.S_ISDIR(mode)
        if not path and not is_dir:
            raise InvalidBundle(f"entry name {_short(name)} does not name a file")
        if path in seen:
            other = seen[path]
            raise InvalidBundle(
                f"entry {_short(name)} appears more than once in the bundle"
                if other == name
                else f"entries {_short(other)} and {_short(name)} are the same path"
            )
        seen[path] = name
        _check_entry_size(info, name, limits)
        uncompressed += info.file_size
        compressed += info.compress_size
        parts = path.split("/")
        directories.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
        if is_dir:
            directories.add(path)
        else:
            files[path] = info
    clash = next((path for path in files if path in directories), None)
    if clash is not None:
        raise InvalidBundle(f"{_short(seen[clash])} is a file, but other entries use it as a folder")
    if uncompressed > limits.max_uncompressed_bytes:
        raise InvalidBundle(
            f"the bundle would uncompress to {_bytes(uncompressed)}; the limit is"
            f" {_bytes(limits.max_uncompressed_bytes)}"
        )
    ratio = uncompressed / max(compressed, 1)
    if uncompressed > limits.ratio_grace_bytes and ratio > limits.max_compression_ratio:
        raise InvalidBundle(
            f"the bundle would uncompress {ratio:,.0f} times its size"
            f" ({_bytes(compressed)} to {_bytes(uncompressed)}), a zip bomb; the limit is"
            f" {limits.max_compression_ratio:g} times"
        )
    _check_no_overlap(infos, archive.start_dir)
    return _Bundle(archive, files, frozenset(directories), len(infos), uncompressed, compressed)


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
                f"entries {_short(previous)} and {_short(info.orig_filename)} overlap in the zip: their"
                " bytes are shared, so the zip would unpack to more than its directory admits (a zip bomb)"
            )
        end = info.header_offset + _LOCAL_HEADER_BYTES + info.compress_size
        previous = info.orig_filename
        if end > directory_offset:
            raise InvalidBundle(
                f"entry {_short(info.orig_filename)} claims {_bytes(info.compress_size)} of compressed"
                " data, more than the zip holds before its directory (corrupt, or a zip bomb)"
            )


def _checked_name(info: zipfile.ZipInfo) -> str:
    """The entry's name, if it decodes cleanly and stays inside the bundle."""
    name = info.orig_filename
    if not name:
        raise InvalidBundle("the bundle has an entry with an empty name")
    if not info.flag_bits & _UTF8_FLAG and not name.isascii():
        # Without the flag zipfile reads cp437, which maps every byte: encode gives the raw bytes back.
        raw = name.encode("cp437")
        raise InvalidBundle(
            f"entry name {_short(raw)} is not ASCII and the zip does not mark it as UTF-8, so its encoding is"
            " ambiguous; create the zip with UTF-8 names (Python's zipfile, or zip -UN=UTF8)"
        )
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise InvalidBundle(f"entry name {_short(name)} contains a control character")
    unicode_path = _unicode_path_extra(info.extra)
    if unicode_path is not None and unicode_path != name:
        # Some unzip tools (and Python 3.12+) prefer this extra field to the entry's name.
        raise InvalidBundle(
            f"entry {_short(name)} carries a different name ({_short(unicode_path)}) in its extra field"
        )
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise InvalidBundle(
            f"entry name {_short(name)} is an absolute path; entries must be relative to the root"
        )
    parts = re.split(r"[/\\]", name)
    if ".." in parts:
        raise InvalidBundle(f"entry name {_short(name)} contains '..', which would climb out of the bundle")
    # Windows drops trailing dots and spaces: '...' and '.. ' are '..' there.
    if any(part and part != "." and not part.rstrip(". ") for part in parts):
        raise InvalidBundle(
            f"entry name {_short(name)} has a part made only of dots and spaces, which Windows reads as '..'"
        )
    if any(_DRIVE.match(part) for part in parts[1:]):
        raise InvalidBundle(
            f"entry name {_short(name)} has a drive ('X:') inside it, which Windows reads as an absolute path"
        )
    return name


def _unicode_path_extra(extra: bytes) -> str | None:
    """The name in an Info-ZIP Unicode Path extra field (0x7075), if the entry has one."""
    while len(extra) >= 4:
        kind, length = struct.unpack("<HH", extra[:4])
        if kind == _UNICODE_PATH_EXTRA:
            return extra[9 : 4 + length].decode("utf-8", errors="replace")
        extra = extra[4 + length :]
    return None


def _check_entry_size(info: zipfile.ZipInfo, name: str, limits: BundleLimits) -> None:
    if info.file_size > limits.max_uncompressed_bytes:
        raise InvalidBundle(
            f"entry {_short(name)} would uncompress to {_bytes(info.file_size)}; the limit is"
            f" {_bytes(limits.max_uncompressed_bytes)}"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limits.ratio_grace_bytes and ratio > limits.max_compression_ratio:
        raise InvalidBundle(
            f"entry {_short(name)} would uncompress {ratio:,.0f} times its size"
            f" ({_bytes(info.compress_size)} to {_bytes(info.file_size)}), a zip bomb; the limit is"
            f" {limits.max_compression_ratio:g} times"
        )


def _normalise(path: str) -> str:
    """Bundle path without empty or '.' segments: './a//b/' -> 'a/b'."""
    return "/".join(part for part in path.split("/") if part not in ("", "."))


def _read_text(bundle: _Bundle, info: zipfile.ZipInfo, label: str, max_bytes: int) -> str:
    if info.file_size > max_bytes:
        raise InvalidBundle(f"{label} is {_bytes(info.file_size)}; at most {_bytes(max_bytes)} is allowed")
    with _zip_errors(f"{label} cannot be read from the zip"), bundle.archive.open(info) as member:
        # One byte more than allowed: a header that understates the size cannot make us hold more.
        data = member.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidBundle(f"{label} is larger than {_bytes(max_bytes)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBundle(f"{label} is not UTF-8 text (invalid byte at offset {exc.start})") from None


def _rollout_yaml_entry(bundle: _Bundle) -> zipfile.ZipInfo | None:
    entry = bundle.files.get(ROLLOUT_YAML)
    if entry is None and "rollout.yml" in bundle.files:
        # A policy that would be silently ignored is worse than a rejected bundle.
        raise InvalidBundle("the bundle has rollout.yml; canaryfleet reads only rollout.yaml, rename it")
    return entry


# --- YAML ---------------------------------------------------------------------------------------
class _AliasNotAllowed(ComposerError):
    pass


class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader without aliases (no billion laughs), duplicate keys or deep nesting."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # check_event parses the next event into current_event.
        if self.check_event(AliasEvent):
            event = self.current_event
            raise _AliasNotAllowed(None, None, f"alias *{event.anchor}", event.start_mark)
        if self._depth >= _MAX_YAML_DEPTH:
            mark = self.current_event.start_mark
            raise ComposerError(None, None, f"nesting deeper than {_MAX_YAML_DEPTH} levels", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                key = self.construct_object(key_node)
                if key in seen:
                    raise ConstructorError(None, None, f"duplicate key {_short(key)}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


def _load_yaml(text: str, label: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except _AliasNotAllowed as exc:
        raise InvalidBundle(
            f"{label} uses a YAML alias ({exc.problem}{_at(exc.problem_mark)}); aliases are not allowed"
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise InvalidBundle(f"{label} is not valid YAML: {exc.problem}{_at(exc.problem_mark)}") from None
    except yaml.YAMLError as exc:
        raise InvalidBundle(f"{label} is not valid YAML: {exc}") from None


def _at(mark: yaml.Mark | None) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


# --- appspec.yml --------------------------------------------------------------------------------
class _AppSpecPart(BaseModel):
    # Strict: YAML already gives typed values, so a quoted number or a yes/no is a mistake.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class _HookScript(_AppSpecPart):
    location: str = Field(min_length=1)
    timeout: int | None = Field(default=None, ge=1, le=_MAX_EVENT_SECONDS)
    runas: str | None = None


class _FileMapping(_AppSpecPart):
    source: str = Field(min_length=1)
    destination: str = Field(min_length=1)


class _Permission(_AppSpecPart):
    """The keys the CodeDeploy agent reads for a Linux permission."""

    object: str = Field(min_length=1)
    pattern: str | None = None
    except_: list[str] | None = Field(default=None, alias="except")
    type: list[Literal["file", "directory"]] | None = None
    owner: str | int | None = None
    group: str | int | None = None
    mode: str | int | None = None
    acls: list[str] | None = None
    context: dict[str, Any] | None = None


class _AppSpec(_AppSpecPart):
    version: float
    os: Literal["linux", "windows"]
    files: list[_FileMapping] | None = None
    permissions: list[_Permission] | None = None
    hooks: dict[str, list[_HookScript]] | None = None
    # Documented by CodeDeploy for EC2/on-premises next to `files`.
    file_exists_behavior: Literal["DISALLOW", "OVERWRITE", "RETAIN"] | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_zero(cls, value: object) -> object:
        # The agent compares version with the number 0.0: the string "0.0" fails on the instance.
        if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
            return 0.0
        if value == "0.0":
            raise ValueError('must be the number 0.0, unquoted: CodeDeploy agents reject the string "0.0"')
        raise ValueError(f"must be 0.0 (got {_short(value)})")

    @field_validator("hooks", mode="before")
    @classmethod
    def _known_events(cls, value: object) -> object:
        if isinstance(value, dict):
            for event in value:
                if event not in HOOK_EVENTS:
                    raise ValueError(
                        f"{_short(event)} is not a lifecycle event that runs scripts"
                        f" (one of {', '.join(HOOK_EVENTS)})"
                    )
        return value

    @model_validator(mode="after")
    def _fits_the_instance(self) -> _AppSpec:
        for mapping in self.files or []:
            absolute = (
                mapping.destination.startswith("/")
                if self.os == "linux"
                else bool(_WINDOWS_ABSOLUTE.match(mapping.destination))
            )
            if not absolute:
                raise ValueError(
                    f"files destination {_short(mapping.destination)} must be an absolute path"
                    f" on a {self.os} instance"
                )
        if self.os == "windows" and self.permissions:
            raise ValueError("permissions apply to Linux instances only; this appspec's os is windows")
        for event, scripts in (self.hooks or {}).items():
            seconds = sum(script.timeout or 0 for script in scripts)
            if seconds > _MAX_EVENT_SECONDS:
                raise ValueError(
                    f"the timeouts of {event}'s scripts add up to {seconds} s; CodeDeploy allows"
                    f" {_MAX_EVENT_SECONDS} s per lifecycle event"
                )
        return self


def _read_appspec(bundle: _Bundle, limits: BundleLimits) -> _AppSpec:
    entry = bundle.files.get(APPSPEC)
    if entry is None:
        raise InvalidBundle(_missing_appspec(bundle))
    document = _load_yaml(_read_text(bundle, entry, APPSPEC, limits.max_appspec_bytes), APPSPEC)
    if not isinstance(document, dict):
        raise InvalidBundle(
            f"{APPSPEC} must be a YAML mapping (version, os, files, hooks); it is {_kind(document)}"
        )
    try:
        return _AppSpec.model_validate(document)
    except ValidationError as exc:
        raise InvalidBundle(f"{APPSPEC} is not a valid EC2/on-premises AppSpec: {_problems(exc)}") from None


def _missing_appspec(bundle: _Bundle) -> str:
    reason = f"the bundle has no {APPSPEC} at its root"
    if "appspec.yaml" in bundle.files:
        return f"{reason}: it has appspec.yaml, but CodeDeploy on EC2 reads only {APPSPEC}"
    nested = sorted(path for path in bundle.files if path.endswith(f"/{APPSPEC}"))
    if nested:
        return f"{reason}: found {nested[0]}; zip the folder's contents, not the folder"
    return reason


def _bundle_path(location: str, os: str) -> str:
    path = location.strip()
    if os == "windows":
        path = path.replace("\\", "/")
    return _normalise(path)


def _check_windows_names(bundle: _Bundle) -> None:
    """Windows paths ignore case: two entries that differ only by case would be one file."""
    seen: dict[str, str] = {}
    for path in sorted([*bundle.files, *bundle.directories]):
        other = seen.setdefault(path.casefold(), path)
        if other != path:
            raise InvalidBundle(
                f"entries {_short(other)} and {_short(path)} differ only by case; on a windows"
                " instance they are the same path"
            )


def _check_hooks(spec: _AppSpec, bundle: _Bundle) -> dict[str, list[str]]:
    hooks: dict[str, list[str]] = {}
    for event, scripts in (spec.hooks or {}).items():
        hooks[event] = []
        for script in scripts:
            path = _bundle_path(script.location, spec.os)
            if path not in bundle.files:
                raise InvalidBundle(
                    f"hook script {_clip(script.location)} named in {APPSPEC} ({event}) is not in the bundle"
                )
            hooks[event].append(path)
    return hooks


def _check_file_sources(spec: _AppSpec, bundle: _Bundle) -> None:
    for mapping in spec.files or []:
        path = _bundle_path(mapping.source, spec.os)
        if path and path not in bundle.files and path not in bundle.directories:
            raise InvalidBundle(
                f"files source {_clip(mapping.source)} named in {APPSPEC} is not in the bundle"
            )


# --- messages -------------------------------------------------------------------------------------
def _problems(exc: ValidationError, most: int = 5) -> str:
    """Pydantic errors as a person reads them: 'steps[1].bake.duration_seconds: ...'."""
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
        if error["type"] == "extra_forbidden":
            what = "unknown key"
        elif error["type"] == "missing":
            what = "required"
        elif error["type"] == "value_error":
            what = error["msg"].removeprefix("Value error, ")
        else:
            what = f"{error['msg']} (got {_short(error['input'])})"
        problems.append(f"{where.lstrip('.')}: {what}" if where else what)
    extra = len(problems) - most
    return "; ".join(problems[:most]) + (f"; and {extra} more" if extra > 0 else "")


def _short(value: object, width: int = 100) -> str:
    """repr(value), clipped: reasons end up in Step Functions causes, which are limited in size."""
    return _clip(repr(value), width)


def _clip(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _describe(exc: Exception) -> str:
    return _clip(str(exc) or type(exc).__name__, 200)


def _kind(value: object) -> str:
    return "empty" if value is None else f"a {type(value).__name__}"


def _bytes(count: int) -> str:
    if count < 1024:
        return f"{count:,} bytes"
    size, unit = count / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:,.1f} {unit}"
