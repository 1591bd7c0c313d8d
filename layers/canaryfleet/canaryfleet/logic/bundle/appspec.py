"""appspec.yml: the AppSpec model of an EC2/on-premises deployment, and its checks against the zip."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle.messages import clip, kind, problems, short
from canaryfleet.logic.bundle.rollout_yaml import rollout_yaml_entry
from canaryfleet.logic.bundle.safe_zip import (
    DEFAULT_LIMITS,
    BundleLimits,
    BundleSource,
    OpenedBundle,
    normalise,
    opened,
    read_text,
)
from canaryfleet.logic.bundle.strict_yaml import load_yaml

APPSPEC = "appspec.yml"

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
_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")


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


def validate_bundle(source: BundleSource, limits: BundleLimits = DEFAULT_LIMITS) -> BundleReport:
    """Accept a bundle that CodeDeploy can deploy and that is safe to handle, or raise InvalidBundle."""
    with opened(source, limits) as bundle:
        spec = _read_appspec(bundle, limits)
        if spec.os == "windows":
            _check_windows_names(bundle)
        hooks = _check_hooks(spec, bundle)
        _check_file_sources(spec, bundle)
        has_rollout_yaml = rollout_yaml_entry(bundle) is not None
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
        raise ValueError(f"must be 0.0 (got {short(value)})")

    @field_validator("hooks", mode="before")
    @classmethod
    def _known_events(cls, value: object) -> object:
        if isinstance(value, dict):
            for event in value:
                if event not in HOOK_EVENTS:
                    raise ValueError(
                        f"{short(event)} is not a lifecycle event that runs scripts"
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
                    f"files destination {short(mapping.destination)} must be an absolute path"
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


def _read_appspec(bundle: OpenedBundle, limits: BundleLimits) -> _AppSpec:
    entry = bundle.files.get(APPSPEC)
    if entry is None:
        raise InvalidBundle(_missing_appspec(bundle))
    document = load_yaml(read_text(bundle, entry, APPSPEC, limits.max_appspec_bytes), APPSPEC)
    if not isinstance(document, dict):
        raise InvalidBundle(
            f"{APPSPEC} must be a YAML mapping (version, os, files, hooks); it is {kind(document)}"
        )
    try:
        return _AppSpec.model_validate(document)
    except ValidationError as exc:
        raise InvalidBundle(f"{APPSPEC} is not a valid EC2/on-premises AppSpec: {problems(exc)}") from None


def _missing_appspec(bundle: OpenedBundle) -> str:
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
    return normalise(path)


def _check_windows_names(bundle: OpenedBundle) -> None:
    """Windows paths ignore case: two entries that differ only by case would be one file."""
    seen: dict[str, str] = {}
    for path in sorted([*bundle.files, *bundle.directories]):
        other = seen.setdefault(path.casefold(), path)
        if other != path:
            raise InvalidBundle(
                f"entries {short(other)} and {short(path)} differ only by case; on a windows"
                " instance they are the same path"
            )


def _check_hooks(spec: _AppSpec, bundle: OpenedBundle) -> dict[str, list[str]]:
    hooks: dict[str, list[str]] = {}
    for event, scripts in (spec.hooks or {}).items():
        hooks[event] = []
        for script in scripts:
            path = _bundle_path(script.location, spec.os)
            if path not in bundle.files:
                raise InvalidBundle(
                    f"hook script {clip(script.location)} named in {APPSPEC} ({event}) is not in the bundle"
                )
            hooks[event].append(path)
    return hooks


def _check_file_sources(spec: _AppSpec, bundle: OpenedBundle) -> None:
    for mapping in spec.files or []:
        path = _bundle_path(mapping.source, spec.os)
        if path and path not in bundle.files and path not in bundle.directories:
            raise InvalidBundle(
                f"files source {clip(mapping.source)} named in {APPSPEC} is not in the bundle"
            )
