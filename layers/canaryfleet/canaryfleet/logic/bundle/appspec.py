"""appspec.yml: the AppSpec model of an EC2/on-premises deployment, and its checks against the zip.

The rule: refuse what would fail the deployment on the CodeDeploy agent; where the agent would
deploy but ignore something (a key it does not read, a hook with no scripts), deploy and say so in
the report's ``notes``. Each rule names its source: the AppSpec reference
(docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html and its "files",
"permissions" and "hooks" section pages), or, where the reference is silent, the agent's parser
(github.com/aws/aws-codedeploy-agent, lib/instance_agent/plugins/codedeploy/
application_specification/application_specification.rb, "the agent's parser" below).
"""

from __future__ import annotations

import bisect
import math
import posixpath
import re
import zipfile
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle.messages import kind, name_as_written
from canaryfleet.logic.bundle.rollout_yaml import rollout_yaml_entry
from canaryfleet.logic.bundle.safe_zip import (
    DEFAULT_LIMITS,
    BundleLimits,
    BundleSource,
    OpenedBundle,
    check_stated_sizes,
    opened,
    read_text,
)
from canaryfleet.logic.bundle.strict_yaml import Lines, PlainScalars, load_yaml_with_lines
from canaryfleet.models.problems import short

APPSPEC = "appspec.yml"
#: The other spelling: the agent's Install step falls back to it, its hooks do not (see _missing_appspec).
APPSPEC_YAML = "appspec.yaml"

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
# CodeDeploy allows one hour of script time per lifecycle event (AppSpec "hooks" section: timeout).
_MAX_EVENT_SECONDS = 3600
_IGNORED = "is ignored by CodeDeploy on EC2"
# The keys of a permission's SELinux context the agent reads (context_info.rb:10-16).
_CONTEXT_KEYS = frozenset({"name", "type", "range"})
_RUBY_STRIP = " \t\n\v\f\r\0"  # Ruby's String#strip: ASCII whitespace and NUL
# An integer YAML 1.1 reads as octal (PyYAML's resolver, as the agent's Ruby YAML): 0755, 0_644.
_OCTAL = re.compile(r"0[0-7_]+")
# A quoted timeout the agent's to_i reads as written (script_info.rb:17-18): ASCII digits, and
# ASCII spaces around them (to_i skips those before the digits and stops at those after).
_SECONDS = re.compile(r"[ \t\n\v\f\r]*([0-9]+)[ \t\n\v\f\r]*")
# A plain scalar both YAMLs read as a base-60 integer (Psych's scalar_scanner.rb, INTEGER and
# its sexagesimal branch; YAML 1.1's int type): 5:00, 1:30:00.
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9]){1,2}")
# Digits grouped by commas, which Psych's integer pattern takes (1,200 is 1200) and PyYAML's not.
_GROUPED = re.compile(r"[0-9]{1,3}(,[0-9]{3})+")
# What Ruby's String#to_i reads of any text: the integer after its leading ASCII spaces, or 0.
_TO_I = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+(?:_[0-9]+)*)?")


class BundleReport(BaseModel):
    """What an accepted bundle holds, for the rollout record."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    entries: int = Field(description="Entries in the zip (files and folders).")
    uncompressed_bytes: int = Field(description="Sum of the entries' uncompressed sizes (directory's word).")
    compressed_bytes: int = Field(description="Sum of the entries' compressed sizes.")
    appspec_version: str = Field(description='Always "0.0" for EC2/on-premises.')
    os: str = Field(description='Always "linux": the fleet runs Linux only.')
    hooks: dict[str, list[str]] = Field(description="Lifecycle event -> its scripts, as paths in the bundle.")
    files: list[dict[str, str]] = Field(description="The appspec's files section: source and destination.")
    has_rollout_yaml: bool = Field(description="The bundle carries a rollout.yaml at its root.")
    notes: list[str] = Field(
        default_factory=list,
        description=(
            "What CodeDeploy will ignore or read differently than written, one sentence each, e.g."
            ' "appspec.yml: files[0].overwrite (line 5) is ignored by CodeDeploy on EC2". Empty when'
            " the bundle says exactly what will happen."
        ),
    )


def validate_bundle(source: BundleSource, limits: BundleLimits = DEFAULT_LIMITS) -> BundleReport:
    """Accept a bundle that CodeDeploy can deploy and that is safe to handle, or raise InvalidBundle."""
    with opened(source, limits) as bundle:
        spec, notes, lines = _read_appspec(bundle, limits)
        if bundle.root_folder is not None:
            notes.insert(
                0,
                f"the bundle's files are inside one folder, {name_as_written(bundle.root_folder + '/')}:"
                " CodeDeploy's agent deploys from inside it, as if the zip were made from within the folder",
            )
        if bundle.backslash_names:
            notes.insert(0, _backslash_note(bundle.backslash_names))
        hooks, scripts = _check_hooks(spec, bundle)
        sources = _check_file_sources(spec, bundle)
        notes.extend(_check_install(spec, bundle, sources, lines))
        notes.extend(_link_notes(bundle, sources))
        has_rollout_yaml = rollout_yaml_entry(bundle) is not None
        # Last: it reads the whole zip, the checks above its directory; and the scripts' first lines.
        heads = check_stated_sizes(bundle, [info for _, _, info in scripts], _SHEBANG_BYTES)
        _check_interpreter_lines(scripts, heads)
    return BundleReport(
        entries=bundle.entries,
        uncompressed_bytes=bundle.uncompressed_bytes,
        compressed_bytes=bundle.compressed_bytes,
        appspec_version="0.0",
        os=spec.os,
        hooks=hooks,
        files=[{"source": f.source, "destination": f.destination} for f in spec.files or []],
        has_rollout_yaml=has_rollout_yaml,
        notes=notes,
    )


class _AppSpecPart(BaseModel):
    # Strict: YAML already gives typed values, so a yes/no where a name belongs is a mistake.
    # Extra keys are kept, not refused: the agent's parser reads the keys it knows and ignores the
    # rest, so they become notes.
    model_config = ConfigDict(defer_build=True, frozen=True, extra="allow", strict=True)


class _HookScript(_AppSpecPart):
    # The agent's parser (script_info.rb): location required and non-empty; timeout defaults to
    # 3600 and must be above 0; runas and sudo are read; every other key is ignored.
    location: str = Field(min_length=1)
    timeout: int | None = Field(default=None, ge=1, le=_MAX_EVENT_SECONDS)
    runas: str | None = None
    sudo: bool | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        # The agent reads timeout with Ruby's to_i: "300" is 300 s and deploys (a note says so),
        # but "5m" would be 5 s and "abc" 0 (a failed deployment), so only digits pass. 300.0 is
        # 300; 90.5 would be cut to 90 and 0.5 to 0, so a fraction is refused. Digits are ASCII:
        # to_i reads fullwidth digits and superscripts as 0, and skips only ASCII spaces before them.
        if isinstance(value, str):
            digits = _SECONDS.fullmatch(value)
            if digits is not None:
                return int(digits[1])
            if any(char.isdecimal() and not char.isascii() for char in value):
                raise ValueError(
                    f"must be a number of seconds in the digits 0-9 (got {short(value)}, which CodeDeploy"
                    f" reads as {_ruby_to_i(value)} seconds)"
                )
            if _GROUPED.fullmatch(value):
                raise ValueError(
                    f"must be whole seconds without commas (got {value}: write {value.replace(',', '')})"
                )
            raise ValueError(f"must be a number of seconds, unquoted (got {short(value)})")
        if isinstance(value, float) and math.isfinite(value):
            if value.is_integer():
                return int(value)
            raise ValueError(
                f"must be whole seconds (got {value:g}; CodeDeploy would cut it to {int(value)})"
            )
        return value


def _ruby_to_i(text: str) -> int:
    """What Ruby's String#to_i makes of ``text`` (the agent's reading of a quoted timeout)."""
    digits = _TO_I.match(text)
    return int(digits[1]) if digits is not None and digits[1] else 0


class _FileMapping(_AppSpecPart):
    # The agent's parser (file_info.rb) reads source and destination, both required.
    source: str = Field(min_length=1)
    destination: str = Field(min_length=1)


_ACE_TYPES = {"u": "user", "user": "user", "g": "group", "group": "group"}
_ACE_TYPES |= {"m": "mask", "mask": "mask", "o": "other", "other": "other"}


def _ace(entry: str) -> str:
    """An acls entry as the agent's ace_info.rb (AceInfo#initialize) parses it, or why it refuses it."""
    invalid = (
        f"must be an ACL entry as setfacl writes it, [d:]u|g|m|o:name:rwx (got {short(entry)});"
        ' CodeDeploy refuses it ("Invalid acl entry")'
    )
    parts = entry.split(":")[::-1]  # ace_info.rb:13: split(":", -1).reverse keeps empty parts too
    if not 2 <= len(parts) <= 4:  # :14
        raise ValueError(invalid)
    default, kind = _ace_default_and_type(parts, invalid)
    name = ""
    if parts[1] in ("m", "mask", "o", "other"):  # :44-55
        if kind is None:
            kind = _ACE_TYPES[parts[1]]
        else:
            name = _ACE_TYPES[parts[1]]
    else:  # :56-61
        kind = kind or "user"
        name = parts[1]
    if kind in ("mask", "other") and name:  # :63-65
        raise ValueError(invalid)
    if not default and kind != "mask" and not name:  # :66-68
        raise ValueError(
            f"must name a user or group (got {short(entry)}): CodeDeploy refuses the base ACL entries"
            " (u::, g::, o::); set those with mode"
        )
    _ace_permissions(parts[0], entry)
    return entry


def _ace_default_and_type(parts: list[str], invalid: str) -> tuple[bool, str | None]:
    # ace_info.rb:18-42: a default prefix (d:) and the type (u, g, m, o), when the entry has them.
    default = len(parts) == 4
    if default and parts[3] not in ("d", "default"):
        raise ValueError(invalid)
    if len(parts) < 3:
        return default, None
    if parts[2] in ("d", "default"):
        if default:
            raise ValueError(invalid)
        return True, None
    if parts[2] not in _ACE_TYPES:
        raise ValueError(invalid)
    return default, _ACE_TYPES[parts[2]]


def _ace_permissions(perms: str, entry: str) -> None:
    # ace_info.rb:70-93: one digit 0-7, or any of r, w, x and -.
    bad = next((char for char in perms if char not in "rwx-"), None)
    if bad is not None and not (len(perms) == 1 and "0" <= perms <= "7"):
        raise ValueError(
            f"must give its permissions as r, w, x and -, or as one digit 0-7 (got {short(entry)}, with"
            f" {bad!r}); CodeDeploy refuses any other character"
        )


def _range_problem(written: str) -> str | None:
    """Why the agent's range_info.rb (RangeInfo#initialize) refuses an SELinux range, if it does."""
    try:
        parts = _range_parts(written, ":")
        sensitivities = [_range_level(part, "s") for part in _range_parts(parts[0], "-")]
        if len(sensitivities) == 2 and sensitivities[1] < sensitivities[0]:  # :15-17
            return "its high sensitivity is below its low one"
        if len(parts) == 2:
            pieces = parts[1].split(",")
            while pieces and not pieces[-1]:  # Ruby's split(",") drops empty parts at the end
                pieces.pop()
            categories: list[int] = []
            for piece in pieces:  # :84-96
                if "." in piece:
                    low, high = (_range_level(end, "c") for end in _range_parts(piece, "."))
                    if high < low:
                        return f"category range {piece} runs backwards"
                    categories.extend(range(low, high + 1))
                else:
                    categories.append(_range_level(piece, "c"))
            if len(set(categories)) != len(categories):
                return "it lists a category more than once"
    except ValueError as exc:
        return str(exc)
    return None


def _range_parts(text: str, separator: str) -> list[str]:
    # range_info.rb ensure_parts: one part, or two around the first separator, none of them empty.
    parts = text.split(separator, 1)
    if not all(parts):
        raise ValueError(f"{text!r} has an empty part")
    return parts


def _range_level(text: str, letter: str) -> int:
    # range_info.rb getSensitivityNumber (s0, s15) and get_category_number (c0 to c1023).
    digits = text[1:]
    if len(text) < 2 or not text.startswith(letter) or not all("0" <= char <= "9" for char in digits):
        word = "sensitivity" if letter == "s" else "category"
        raise ValueError(f"{text!r} is not a {word} ({letter} and a number)")
    if letter == "c" and int(digits) > 1023:
        raise ValueError(f"category {text} is above c1023")
    return int(digits)


class _Permission(_AppSpecPart):
    """The keys the CodeDeploy agent reads for a Linux permission (the agent's parser)."""

    object: str = Field(min_length=1)
    pattern: str | None = None
    except_: list[str] | None = Field(default=None, alias="except")
    type: list[Literal["file", "directory"]] | None = None
    owner: str | None = None
    group: str | None = None
    mode: str | int | None = None
    acls: list[Annotated[str, AfterValidator(_ace)]] | None = None
    context: dict[str, Any] | None = None

    @field_validator("context")
    @classmethod
    def _selinux(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # The agent's context_info.rb:10-16: type is required ("invalid context type"), name is
        # optional, and a range must parse as range_info.rb reads it. The parser lets a context go
        # without a range, but the Install step then fails on any object the permission sets: it
        # writes its plan before running it (installer.rb:42-45, instructions.to_json), and
        # ChangeContextCommand#to_h reads the range's get_range without checking that there is one
        # (install_instruction.rb:376-378: NoMethodError on nil). A permission that sets nothing
        # needs no context, so a context without a range is refused whatever it selects.
        if value is None:
            return value
        if value.get("type") is None:
            raise ValueError(
                f"must have a type, the SELinux type to set (got {short(value)}); CodeDeploy refuses a"
                " context without one"
            )
        written = value.get("range")
        if written is None:
            raise ValueError(
                f"must have a range, the SELinux range to set, as s0 (got {short(value)}); CodeDeploy's"
                " agent fails the deployment at Install when a context without one applies to any file"
                " or folder"
            )
        if not isinstance(written, str):
            raise ValueError(f"range must be text, as s0-s0:c0.c1023 (got {short(written)})")
        problem = _range_problem(written)
        if problem is not None:
            raise ValueError(
                f"range {short(written)} is not an SELinux range CodeDeploy reads ({problem}); write"
                " s#[-s#][:c#[.c#],...], as s0-s0:c0.c1023"
            )
        return value

    @field_validator("owner", "group", mode="before")
    @classmethod
    def _a_name(cls, value: Any, info: ValidationInfo) -> Any:
        # The AppSpec reference, "permissions" section: "The name of the owner" / "of the group";
        # the agent looks them up by name (install_instruction.rb, ChangeOwnerCommand:
        # Etc.getpwnam(@owner), Etc.getgrnam(@group)). A number fails there: as a YAML number
        # ("no implicit conversion of Integer into String"), or as digits that name no account
        # (shadow-utils refuses an all-digit user or group name).
        numeric = isinstance(value, int) and not isinstance(value, bool)
        if numeric or (isinstance(value, str) and value.isdigit()):
            raise ValueError(
                f"must be a {'user' if info.field_name == 'owner' else 'group'} name (got {short(value)});"
                " CodeDeploy looks it up by name, and a numeric id names no account: write the name,"
                " as ec2-user"
            )
        return value

    @field_validator("mode", mode="before")
    @classmethod
    def _chmod_digits(cls, value: Any) -> Any:
        # The agent's mode_info.rb: the value as text, padded with zeros to three characters, must
        # be at most four characters, each 0 to 7 ("Permissions modes must be between one and four
        # characters long"; "contains an invalid character"). The AppSpec reference: no symbols (u+x).
        if isinstance(value, bool) or not isinstance(value, str | int):
            return value  # the type check says what is wrong
        digits = str(value).rjust(3, "0")
        if len(digits) > 4 or not all("0" <= char <= "7" for char in digits):
            raise ValueError(
                f"must be one to four octal digits, as chmod takes them (got {short(value)}); CodeDeploy"
                " refuses any other mode"
            )
        return value


class _AppSpec(_AppSpecPart):
    version: float
    os: str
    files: list[_FileMapping] | None = None
    permissions: list[_Permission] | None = None
    # A hook left empty (None) is skipped by the agent's parser ("Ignore empty hooks").
    hooks: dict[str, list[_HookScript] | None] | None = None
    # AppSpec reference, "files" section: DISALLOW, OVERWRITE or RETAIN; the agent refuses others.
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

    @field_validator("os", mode="before")
    @classmethod
    def _linux(cls, value: object) -> object:
        # The agent accepts only its own platform's os (platform/linux_util.rb supported_oses is
        # ["linux"]), and canaryfleet's fleet is Amazon Linux 2023 with bash user data and a shell
        # drain document: a windows bundle would fail on every instance.
        if value == "linux":
            return value
        if value == "windows":
            raise ValueError(
                "is windows, but canaryfleet's fleet runs Linux only (Amazon Linux 2023 instances, whose"
                " CodeDeploy agent deploys only os: linux); build the bundle for linux"
            )
        raise ValueError(f"must be linux (got {short(value)})")


def _read_appspec(bundle: OpenedBundle, limits: BundleLimits) -> tuple[_AppSpec, list[str], Lines]:
    # A link is read where it points, as the agent's File.read does.
    entry = bundle.files.get(bundle.resolve(APPSPEC))
    if entry is None:
        raise InvalidBundle(_missing_appspec(bundle))
    text = read_text(bundle, entry, APPSPEC, limits.max_appspec_bytes, for_the_agent=True)
    plain: PlainScalars = {}
    beyond: list[str] = []
    document, lines = load_yaml_with_lines(text, APPSPEC, plain, for_the_agent=True, notes=beyond)
    if not isinstance(document, dict):
        raise InvalidBundle(
            f"{APPSPEC} must be a YAML mapping (version, os, files, hooks); it is {kind(document)}"
        )
    other_platform = _ecs_or_lambda_appspec(document, lines)
    if other_platform is not None:
        raise InvalidBundle(other_platform)
    unclear = [*_unquoted_octal_modes(plain, lines), *_clock_timeouts(plain, lines)]
    if unclear:
        raise _not_valid("; ".join(unclear))
    try:
        spec = _AppSpec.model_validate(document)
    except ValidationError as exc:
        raise _not_valid(_problems(exc, document, lines)) from None
    problems = _beyond_the_agent(spec, lines)
    if problems:
        raise _not_valid("; ".join(problems))
    notes = [*beyond, *_ignored(spec, document, lines)]
    if APPSPEC_YAML in bundle.files:
        # Both present: the agent reads appspec.yml for the install and for every hook.
        notes.append(f"{APPSPEC_YAML} is ignored: CodeDeploy reads {APPSPEC} when a bundle has both")
    return spec, notes, lines


def _ecs_or_lambda_appspec(document: dict[Any, Any], lines: Lines) -> str | None:
    """Why an Amazon ECS or AWS Lambda AppSpec is refused; None for any other document.

    CodeDeploy User Guide, "AppSpec 'resources' section (Amazon ECS and AWS Lambda deployments
    only)" (reference-appspec-file-structure-resources.html; its ECS example writes the key
    ``Resources``, its Lambda example ``resources``), and "AppSpec 'os' section (EC2/On-Premises
    deployments only)": a file with the one and without the other is written for another compute
    platform. Checked as an EC2/on-premises AppSpec it only said "os is required".
    """
    key = next((k for k in document if isinstance(k, str) and k.lower() == "resources"), None)
    if key is None or "os" in document:
        return None
    return (
        f"{APPSPEC} is an Amazon ECS or AWS Lambda AppSpec: it has {_where((key,), lines)}, a section"
        " only ECS and Lambda deployments read, and no os; canaryfleet deploys EC2/on-premises bundles,"
        f" whose {APPSPEC} has version: 0.0, os: linux, and files and hooks sections"
    )


def _unquoted_octal_modes(plain: PlainScalars, lines: Lines) -> list[str]:
    """Modes written with a leading zero and no quotes, which YAML reads as octal numbers.

    AppSpec reference, "permissions" section: "If the value includes a leading zero, you must
    surround it with double-quotes, or remove the leading zero so that only three digits remain."
    The agent's YAML reads ``mode: 0755`` as the number 493 (a mode it refuses) and ``0644`` as
    420, which it applies: neither is what was written.
    """
    problems: list[str] = []
    for path, text in plain.items():
        if len(path) == 3 and path[0] == "permissions" and path[2] == "mode" and _OCTAL.fullmatch(text):
            written = text.replace("_", "")
            number, digits = int(written, 8), written.lstrip("0").rjust(3, "0")
            problems.append(
                f"{_where(path, lines)} is {text} without quotes, which YAML (CodeDeploy's too) reads as"
                f' the number {number}, not the mode {text}; write "{text}" in double quotes, or {digits}'
            )
    return problems


def _clock_timeouts(plain: PlainScalars, lines: Lines) -> list[str]:
    """Timeouts written like a clock (``timeout: 5:00``), which YAML reads as base-60 numbers.

    The agent's Psych multiplies each part by 60 to the power of its distance from the third
    (``60 ** (e - 2).abs``, scalar_scanner.rb): 5:00 is 18,000 seconds to CodeDeploy (five hours,
    past the AppSpec reference's hour per lifecycle event), while PyYAML reads 300. Neither is
    surely what was meant, so the bundle says it in seconds.
    """
    problems: list[str] = []
    for path, text in plain.items():
        if len(path) == 4 and path[0] == "hooks" and path[3] == "timeout" and _SEXAGESIMAL.fullmatch(text):
            parts = [int(part.replace("_", "")) for part in text.lstrip("+-").split(":")]
            seconds = sum(n * 60 ** abs(e - 2) for e, n in enumerate(parts))
            problems.append(
                f"{_where(path, lines)} is {text}, which CodeDeploy's agent reads as {seconds} seconds"
                " (YAML takes it for a base-60 number); write the timeout in whole seconds"
            )
    return problems


def _beyond_the_agent(spec: _AppSpec, lines: Lines) -> list[str]:
    """What types alone cannot say: lifecycle events, absolute destinations, an hour per event."""
    problems: list[str] = []
    for index, mapping in enumerate(spec.files or []):
        # AppSpec reference, "files" section: destination is a path on the instance (absolute).
        if not mapping.destination.startswith("/"):
            where = _where(("files", index, "destination"), lines)
            problems.append(
                f"{where} must be an absolute path on a linux instance (got {short(mapping.destination)})"
            )
    for event, scripts in (spec.hooks or {}).items():
        if event not in HOOK_EVENTS and scripts is not None:
            # The agent refuses events it does not know ("contains unknown lifecycle events"), after
            # dropping those left empty (application_specification.rb:78-79, parse_hooks; so not []).
            problems.append(
                f"{_where(('hooks', event), lines)}: {short(event)} is not a lifecycle event that runs"
                f" scripts (one of {', '.join(HOOK_EVENTS)})"
            )
            continue
        seconds = sum(script.timeout or 0 for script in scripts or [])
        if seconds > _MAX_EVENT_SECONDS:
            problems.append(
                f"{_where(('hooks', event), lines)}: the timeouts of {event}'s scripts add up to {seconds} s;"
                f" CodeDeploy allows {_MAX_EVENT_SECONDS} s per lifecycle event"
            )
    return problems


def _ignored(spec: _AppSpec, document: dict[Any, Any], lines: Lines) -> list[str]:
    """What the agent will deploy without reading, or read differently than written."""
    notes: list[str] = []

    def keys(part: BaseModel, path: tuple[str | int, ...]) -> None:
        for key in part.model_extra or {}:
            notes.append(f"{APPSPEC}: {_where((*path, str(key)), lines)} {_IGNORED}")

    keys(spec, ())
    for index, mapping in enumerate(spec.files or []):
        keys(mapping, ("files", index))
    for index, permission in enumerate(spec.permissions or []):
        keys(permission, ("permissions", index))
        for key in permission.context or {}:
            if key in _CONTEXT_KEYS:
                continue
            where = _where(("permissions", index, "context", str(key)), lines)
            # context_info.rb:13-16 reads name, type and range; the AppSpec reference's example
            # writes the SELinux user as user, which the agent drops (semanage runs without -s).
            instead = "; CodeDeploy's agent reads the SELinux user from name" if key == "user" else ""
            notes.append(f"{APPSPEC}: {where} {_IGNORED}{instead}")
    raw_hooks = document.get("hooks") or {}
    for event, scripts in (spec.hooks or {}).items():
        if scripts is None and event not in HOOK_EVENTS:
            notes.append(
                f"{APPSPEC}: {_where(('hooks', event), lines)} is not a lifecycle event that runs scripts,"
                " but lists none; CodeDeploy ignores it"
            )
        elif not scripts:
            notes.append(
                f"{APPSPEC}: {_where(('hooks', event), lines)} lists no scripts;"
                " CodeDeploy runs nothing for it"
            )
        for index, script in enumerate(scripts or []):
            keys(script, ("hooks", event, index))
            written = raw_hooks[event][index].get("timeout")
            if isinstance(written, str):
                notes.append(
                    f"{APPSPEC}: {_where(('hooks', event, index, 'timeout'), lines)} is quoted"
                    f" ({short(written)}); CodeDeploy reads it as {script.timeout} seconds"
                )
    return notes


# How pydantic's error types read in the AppSpec's terms.
_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _problems(exc: ValidationError, document: dict[Any, Any], lines: Lines, most: int = 5) -> str:
    """Pydantic's errors in the AppSpec's terms: 'hooks.ApplicationStart[0].timeout (line 7): ...'."""
    said: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        path = _in_document(error["loc"], document, keep_last=error["type"] == "missing")
        what = _say(error["type"], error["msg"], error.get("ctx") or {}, error.get("input"))
        found = said.setdefault(_where(path, lines) if path else "", [])
        if what not in found:
            found.append(what)
    # A union (owner: name or number) reports once per member: one sentence joins them.
    problems = [_sentence(where, _joined(whats)) for where, whats in said.items()]
    extra = len(problems) - most
    return "; ".join(problems[:most]) + (f"; and {extra} more" if extra > 0 else "")


_BOUNDS = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le")}
_SAID_AS_IS = {
    "missing": "is required",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
}


def _sentence(where: str, what: str) -> str:
    """'files[0].destination (line 5) is required', 'hooks (line 4): ... is not a lifecycle event'."""
    if not where:
        return what
    return f"{where} {what}" if what.startswith(("is ", "must ")) else f"{where}: {what}"


def _joined(whats: list[str]) -> str:
    """A union (owner: name or number) fails once per member: 'must be text or a whole number (got [1])'."""
    got = whats[0][whats[0].rfind(" (got ") :] if " (got " in whats[0] else ""
    if len(whats) > 1 and got and all(what.startswith("must be ") and what.endswith(got) for what in whats):
        return (
            "must be " + " or ".join(what.removeprefix("must be ").removesuffix(got) for what in whats) + got
        )
    return " or ".join(whats)


def _say(kind_of_error: str, message: str, context: dict[str, Any], value: object) -> str:
    if kind_of_error in _SAID_AS_IS:
        return _SAID_AS_IS[kind_of_error]
    if kind_of_error == "value_error":
        return message.removeprefix("Value error, ")
    if kind_of_error in _EXPECTED:
        expected = _EXPECTED[kind_of_error]
    elif kind_of_error in _BOUNDS:
        word, key = _BOUNDS[kind_of_error]
        expected = f"{word} {context[key]}"
    elif kind_of_error == "literal_error":
        expected = str(context["expected"])
    else:
        return f"{message.replace('Input should be', 'must be')} (got {short(value)})"
    return f"must be {expected} (got {short(value)})"


def _in_document(loc: tuple[str | int, ...], document: object, *, keep_last: bool) -> tuple[str | int, ...]:
    """The error's location as a path in the document: pydantic's own steps (union members) dropped."""
    path: list[str | int] = []
    here = document
    for index, part in enumerate(loc):
        # pydantic names fields by their alias ("except"), as the file does.
        found, inside = _step(here, part)
        if found:
            here = inside
        elif not (keep_last and index == len(loc) - 1):
            continue
        path.append(part)
    return tuple(path)


def _step(here: object, part: str | int) -> tuple[bool, object]:
    if isinstance(here, dict) and part in here:
        return True, here[part]
    if isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
        return True, here[part]
    return False, None


def _not_valid(reason: str) -> InvalidBundle:
    """The refusal of an appspec.yml the agent would not deploy, for ``reason``."""
    return InvalidBundle(f"{APPSPEC} is not a valid EC2/on-premises AppSpec: {reason}")


def _where(path: tuple[str | int, ...], lines: Lines) -> str:
    """'hooks.ApplicationStart[0].timeout (line 7)': the line of the nearest part the file has.

    A key is shown as written, or as its repr where that would hide part of it: a double-quoted
    YAML key can hold any character ("\\e", "\\n"), and notes and reasons reach a terminal, an
    email and Slack as one line of printable text.
    """
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else ("." if name else "") + name_as_written(part)
    for end in range(len(path), 0, -1):
        line = lines.get(tuple(part if isinstance(part, int) else str(part) for part in path[:end]))
        if line is not None:
            return f"{name} (line {line})"
    return name


def _missing_appspec(bundle: OpenedBundle) -> str:
    reason = f"the bundle has no {APPSPEC} at its root"
    if APPSPEC_YAML in bundle.files:
        # The AppSpec reference: the file "must be named appspec.yml" for EC2/on-premises. The agent
        # (command_executor.rb, app_spec_real_path) installs from appspec.yaml when appspec.yml is
        # missing, but runs every hook from the name in the deployment (hook_executor.rb,
        # parse_app_spec: appspec.yml unless told otherwise), so the deployment fails at BeforeInstall.
        return (
            f"{reason}: it has {APPSPEC_YAML}, which CodeDeploy on EC2 does not use for lifecycle hooks"
            f" (its AppSpec reference requires {APPSPEC}; the agent would install from {APPSPEC_YAML} and"
            f" then fail at BeforeInstall); rename it to {APPSPEC}"
        )
    nested = sorted(path for path in bundle.files if path.endswith(f"/{APPSPEC}"))
    if nested and bundle.backslash_names:
        # safe_zip: the agent's second unpacking leaves more than the folder at the root.
        return (
            f"{reason}: found {name_as_written(nested[0])}, in a zip whose names use backslashes, which"
            " CodeDeploy's agent does not unpack from inside its folder; zip the folder's contents, not"
            " the folder"
        )
    if nested:
        return f"{reason}: found {name_as_written(nested[0])}; zip the folder's contents, not the folder"
    return reason


def _backslash_note(names: tuple[str, ...]) -> str:
    """What the agent makes of names with backslashes (safe_zip._as_unzip_writes, unpack_bundle)."""
    # repr shows each backslash twice; the person reads the name as they wrote it.
    example = short(names[0]).replace("\\\\", "\\")
    which = (
        f"{len(names)} entries, e.g. {example}, separate their"
        if len(names) > 1
        else f"entry {example} separates its"
    )
    return (
        f"{which} folders with backslashes, as Windows PowerShell 5.1's"
        " Compress-Archive writes them: CodeDeploy's agent unpacks them into folders, then, because"
        " its unzip warns about them, unpacks the zip again with its fallback, which also writes each"
        " of them at the root under its literal name; a zip with forward slashes (PowerShell 7, 7-Zip,"
        " zip) avoids both"
    )


# The agent runs a hook as one command line it does not quote: the script's path joined to the
# deployment archive (hook_executor.rb:159, 234), after "sudo", "su RUNAS -c" or both
# (linux_util.rb:11-29), through Open3.popen3 (hook_executor.rb:174), which hands a line with any
# of these to /bin/sh and splits the rest at spaces. A location or runas holding one runs another
# command than the script, or fails to find it.
_SHELL_WORD_BREAKERS = frozenset(" \t\n\r\v\f;&|<>()$`'\"\\*?[")


def _shell_breaker(text: str) -> str | None:
    return next((char for char in text if char in _SHELL_WORD_BREAKERS), None)


def _check_shell_words(event: str, script: _HookScript, location: str) -> None:
    # Spaces around a runas only widen the gaps between the command line's words.
    runas = (script.runas or "").strip(_RUBY_STRIP)
    for what, text in (("location", location), ("runas", runas)):
        breaker = _shell_breaker(text)
        if breaker is not None:
            raise InvalidBundle(
                f"hook script {name_as_written(script.location)} ({event}) has {breaker!r} in its {what}:"
                " CodeDeploy's agent runs the script as one unquoted command line, which the shell"
                " splits or reads there, so the script would not run as written; rename it"
                + (" or the user" if what == "runas" else "")
            )


#: A hook script, as (lifecycle event, location as written, its entry in the zip).
_Script = tuple[str, str, zipfile.ZipInfo]


def _check_hooks(spec: _AppSpec, bundle: OpenedBundle) -> tuple[dict[str, list[str]], list[_Script]]:
    """Each event's scripts as paths in the bundle, and the scripts, or why the agent cannot run one."""
    hooks: dict[str, list[str]] = {}
    found: list[_Script] = []
    for event, scripts in (spec.hooks or {}).items():
        if scripts is None:
            continue
        hooks[event] = []
        for script in scripts:
            # The agent strips a location as Ruby's String#strip does (application_specification.rb:83):
            # ASCII whitespace and NUL only, so a no-break space stays part of the name.
            location = script.location.strip(_RUBY_STRIP)
            what = f"hook script {name_as_written(script.location)} named in {APPSPEC} ({event})"
            path = _in_bundle(location, bundle, what)
            if path is None or path not in bundle.files:
                raise InvalidBundle(f"{what} is not in the bundle")
            _check_shell_words(event, script, location)
            hooks[event].append(path)
            found.append((event, script.location, bundle.files[path]))
    return hooks, found


def _check_file_sources(spec: _AppSpec, bundle: OpenedBundle) -> list[str]:
    """Each files mapping's source as a path in the bundle ('' for its root), or why it is none."""
    sources: list[str] = []
    for mapping in spec.files or []:
        # The agent takes a source as written (application_specification.rb:70), so not stripped.
        what = f"files source {name_as_written(mapping.source)} named in {APPSPEC}"
        path = _in_bundle(mapping.source, bundle, what)
        if path is None or (path and path not in bundle.files and path not in bundle.directories):
            raise InvalidBundle(f"{what} is not in the bundle")
        sources.append(path)
    return sources


# Notes about links, at most this many named (a node_modules tree may hold hundreds).
_LINK_NOTES = 5


def _link_notes(bundle: OpenedBundle, sources: list[str]) -> list[str]:
    """What the bundle's links become on the instance, where that is not the file they name here.

    The agent installs a link to a file as a link with the same target (install_instruction.rb,
    CopyCommand), read from where it is installed: one whose target is outside the files source it
    is copied with points next to the destination instead. A link to nothing is unpacked as is.
    """
    dangling: list[str] = []
    outside: list[str] = []
    for path, target in sorted(bundle.link_targets.items()):
        resolved = bundle.link_resolved[path]
        if resolved == "" or resolved in bundle.directories:
            continue  # a folder link: the agent copies the folder's files
        written = name_as_written(path)
        if resolved not in bundle.files:
            dangling.append(f"{written} (to {short(target)})")
        for source in sources:
            inside = source in ("", path) or path.startswith(f"{source}/")
            if inside and not (source == "" or resolved.startswith(f"{source}/")):
                outside.append(f"{written} (to {short(target)}, files source {name_as_written(source)})")
    notes = []
    if dangling:
        notes.append(f"symbolic links to nothing in the bundle, unpacked as they are: {_some(dangling)}")
    if outside:
        notes.append(
            "symbolic links installed as links whose target is outside the files source they are"
            f" copied with, so on the instance they point next to its destination: {_some(outside)}"
        )
    return notes


def _some(said: list[str]) -> str:
    more = f" and {len(said) - _LINK_NOTES} more" if len(said) > _LINK_NOTES else ""
    return ", ".join(said[:_LINK_NOTES]) + more


def _in_bundle(written: str, bundle: OpenedBundle, what: str) -> str | None:
    """The bundle path the instance's file system finds for a location or source, or None if none.

    The agent joins it to the folder it unpacked the bundle in (File.join: hook_executor.rb:234,
    installer.rb:62) and the file system resolves it: empty and '.' parts are skipped, '..' goes
    back one folder, and a symbolic link is replaced by where it points (safe_zip's
    resolve_links, so a '..' after it goes up from there). A name followed by '/', '.' or '..'
    must be a folder, else the look-up fails (ENOTDIR, ENOENT). A '..' above the bundle's root is
    refused, on purpose: it names the agent's own files (the deployment's folder holds the
    bundle, its logs and the unpacked archive), not the build's.
    """
    parts: list[str] = []
    names = written.split("/")
    for index, name in enumerate(names):
        if name == "..":
            if not parts:
                raise InvalidBundle(
                    f"{what} climbs out of the bundle: its '..' goes above the bundle's root, to"
                    " CodeDeploy's own folder for the deployment; name the file by its path inside the"
                    " bundle"
                )
            parts.pop()
        elif name not in ("", "."):
            parts.append(name)
            if "/".join(parts) in bundle.link_targets:
                resolved = bundle.resolve("/".join(parts))
                parts = resolved.split("/") if resolved else []
        if index < len(names) - 1 and parts and "/".join(parts) not in bundle.directories:
            return None  # a name the path goes on from is no folder of the bundle
    return "/".join(parts)


# The kernel reads a script's #! line from its first 256 bytes (BINPRM_BUF_SIZE, Linux 5.1 and
# later: Amazon Linux 2023 runs 6.1).
_SHEBANG_BYTES = 256


def _check_interpreter_lines(scripts: list[_Script], heads: dict[zipfile.ZipInfo, bytes]) -> None:
    """Refuse a hook script whose #! line ends in a carriage return (saved with Windows line endings).

    The kernel strips only spaces and tabs from the end of a #! line (fs/binfmt_script.c), so the
    carriage return stays in the interpreter's name ('/bin/bash' and CR, which no system has) or in
    its argument. The agent runs a script by
    its path (hook_executor.rb:159, 174; linux_util.rb:11-29): run directly, the exec fails
    (Errno::ENOENT, hook_executor.rb:147-149); under su or sudo, bash or sudo fails to run it. Either
    way the deployment fails at that hook. Checked on Linux only: canaryfleet refuses os: windows.
    """
    for event, location, info in scripts:
        head = heads.get(info, b"")
        _check_byte_order_mark(event, location, head)
        line, newline, _ = head.partition(b"\n")
        read_whole = newline or len(head) < _SHEBANG_BYTES  # else the kernel reads only part of it
        if line.startswith(b"#!") and line.endswith(b"\r") and read_whole:
            raise InvalidBundle(
                f"hook script {name_as_written(location)} ({event}) has Windows line endings (CRLF) on"
                " its #! line: the agent cannot run it (Linux takes the carriage return as part of the"
                " interpreter's name or argument); convert it to LF (dos2unix, or git's"
                " core.autocrlf=false / .gitattributes `*.sh text eol=lf`)"
            )


_UTF8_BOM = b"\xef\xbb\xbf"
# What Amazon Linux 2023's /bin/sh is (bash), and the shells that run a script as it would.
_SHELLS = frozenset({b"sh", b"bash"})


def _check_byte_order_mark(event: str, location: str, head: bytes) -> None:
    """Refuse a hook script whose #! line follows a UTF-8 byte order mark, for an interpreter
    other than the shell (saved by Windows PowerShell 5.1's ``Out-File -Encoding utf8``, or an
    older Notepad).

    The kernel reads a #! only at the file's first byte (fs/binfmt_script.c), so exec fails with
    ENOEXEC, and the agent's Ruby then runs the file with /bin/sh, as it does a script with no
    #! line: a Python or Node script is read as shell and fails at its hook. A shell script
    still runs (its first line, the mark and the #!, fails as a command), so it is accepted.
    """
    if not head.startswith(_UTF8_BOM + b"#!"):
        return
    words = head[len(_UTF8_BOM) + 2 :].partition(b"\n")[0].split()
    if words and words[0].rsplit(b"/", 1)[-1] == b"env":
        words = [w for w in words[1:] if not w.startswith(b"-")]
    program = words[0].rsplit(b"/", 1)[-1] if words else b""
    if program in _SHELLS:
        return
    raise InvalidBundle(
        f"hook script {name_as_written(location)} ({event}) starts with a UTF-8 byte order mark"
        " before its #! line: Linux does not see the #!, and the agent runs the file with /bin/sh"
        f" instead of {short(program.decode(errors='replace'))}; save it as UTF-8 without a BOM"
    )


# The Install step, as the agent's Installer#generate_instructions (installer.rb:59-96) plans it
# before copying anything: what it refuses there that the bundle alone decides. Every file the
# bundle installs is planned as a copy whatever the instance holds, unless file_exists_behavior is
# RETAIN (installer.rb:118-132: an existing file is then left, so planned or not by the instance);
# the folders it makes (mkdir) depend on what the instance already has, so they are not judged.
_RETAIN = "RETAIN"
# Planning more copies and matches than this is not checked (an appspec of thousands of mappings
# of a large bundle); what is checked is still refused only where the agent fails.
_INSTALL_CHECK_BUDGET = 200_000
# Nor names matched against patterns past this many steps (see _simple_glob), about 5 s on a
# laptop: 100,000 names of 21 characters against *.log and *.tmp take 8.4 million, but a pattern
# of 64 KiB against one name of 255 characters can take 16 million.
_GLOB_STEP_BUDGET = 20_000_000


class _OverBudget(Exception):
    pass


class _Budget:
    """What the Install check may still do before it stops checking: paths it plans or looks at,
    and steps of matching names against patterns."""

    def __init__(self) -> None:
        self.paths = _INSTALL_CHECK_BUDGET
        self.glob_steps = _GLOB_STEP_BUDGET
        # Each pattern's runs of stars (see _simple_glob), read once per check.
        self.star_runs: dict[str, dict[int, int]] = {}

    def spend(self, paths: int) -> None:
        self.paths -= paths
        if self.paths < 0:
            raise _OverBudget

    def spend_glob(self, steps: int) -> None:
        self.glob_steps -= steps
        if self.glob_steps < 0:
            raise _OverBudget


def _check_install(spec: _AppSpec, bundle: OpenedBundle, sources: list[str], lines: Lines) -> list[str]:
    """The Install step's refusals the bundle alone decides; notes for those that depend on the
    folders an instance already has. ``sources``: each mapping's source in the bundle."""
    if spec.file_exists_behavior == _RETAIN or not spec.files:
        return []
    budget = _Budget()
    try:
        tree = _Tree(bundle)
        copies = _planned_copies(spec, tree, sources, lines, budget)
        _check_permissions(spec, copies, lines, budget)
        folders = _brought_folders(spec, tree, sources, budget)
        return [
            *_files_where_folders_go(spec, copies, folders, lines),
            *_folder_permissions_twice(spec, copies, folders, lines, budget),
        ]
    except _OverBudget:
        return []


class _Tree:
    """The bundle as the agent's generate_directory_copy walks it once unpacked (installer.rb:
    98-112): a folder's entries (Dir.entries), each entered if File.directory? holds for it, which
    follows a symbolic link, else copied (a file, or a link to anything but a folder)."""

    def __init__(self, bundle: OpenedBundle) -> None:
        self.bundle = bundle
        self.children: dict[str, list[str]] = {}
        for path in [*bundle.files, *bundle.links, *bundle.directories]:
            if path:
                self.children.setdefault(path.rpartition("/")[0], []).append(path)
        self._walked: dict[str, list[tuple[str, str, bool]]] = {}

    def is_folder(self, path: str) -> bool:
        """Whether the unpacked path is a folder, or a link that leads to one."""
        if path in self.bundle.links:
            path = self.bundle.link_resolved[path]
        return path == "" or path in self.bundle.directories

    def walk(self, folder: str, budget: _Budget) -> list[tuple[str, str, bool]]:
        """What copying ``folder`` meets, each (its bundle path, its path under the destination,
        whether it is entered as a folder), a linked folder's entries under the link's name.
        safe_zip refuses a folder link leading back into itself, so the walk ends. Walked (and
        spent from the budget) once per folder."""
        if folder in self._walked:
            return self._walked[folder]
        met: list[tuple[str, str, bool]] = []
        pending = [(folder, "")]
        while pending:
            real, relative = pending.pop()
            entries = self.children.get(real, [])
            budget.spend(len(entries))
            cut = len(real) + 1 if real else 0
            prefix = f"{relative}/" if relative else ""
            for path in entries:
                here = prefix + path[cut:]
                entered = self.is_folder(path)
                met.append((path, here, entered))
                if entered:
                    pending.append((self.bundle.link_resolved.get(path, path), here))
        self._walked[folder] = met
        return met


def _brought_folders(spec: _AppSpec, tree: _Tree, sources: list[str], budget: _Budget) -> dict[str, int]:
    """Each folder a mapping of a bundle folder installs (its destination, and each folder inside
    the source, a linked one too, at its place under it), and the first mapping that brings it.

    The agent makes such a folder when the instance does not have it (installer.rb:98-112,
    generate_directory_copy's mkdir), which is every new instance unless its image has the folder:
    the cleanup of the deployment before removes the folders that one made (installer.rb:29-37).
    """
    brought: dict[str, int] = {}
    for index, (mapping, source) in enumerate(zip(spec.files or [], sources, strict=True)):
        destination = _expanded(mapping.destination)
        if destination is None or ".." in mapping.destination.split("/"):
            continue
        if not tree.is_folder(source):
            continue  # a file: its folder is the destination, which the agent makes only if missing
        inside = [relative for _, relative, entered in tree.walk(source, budget) if entered]
        for folder in [destination, *(posixpath.join(destination, relative) for relative in inside)]:
            brought.setdefault(folder, index)
    return brought


def _files_where_folders_go(
    spec: _AppSpec, copies: dict[str, tuple[int, str]], folders: dict[str, int], lines: Lines
) -> list[str]:
    """A file installed where a mapping installs a folder: install_instruction.rb:83-95 refuses a
    copy and a mkdir of one path, in either order; where the instance already has the folder, the
    copy meets an existing path (installer.rb:116-126), which DISALLOW refuses too."""
    notes: list[str] = []
    for target, (index, path) in copies.items():
        first = folders.get(target)
        if first is None:
            continue
        clash = (
            f"{_where(('files', index), lines)} installs the file {short(path)} at {short(target)}, where"
            f" {_where(('files', first), lines)} installs a folder"
        )
        if spec.file_exists_behavior == "DISALLOW":
            raise _not_valid(
                f"{clash}: CodeDeploy's agent refuses a file and a folder at one path, and with"
                " file_exists_behavior DISALLOW a folder already there fails it too; map them apart"
            )
        notes.append(
            f"{clash}: on an instance without that folder (a new instance, unless its image has it)"
            " CodeDeploy's agent refuses"
            " a file and a folder at one path and fails the deployment at Install; map them apart"
        )
    return notes


def _folder_permissions_twice(
    spec: _AppSpec,
    copies: dict[str, tuple[int, str]],
    folders: dict[str, int],
    lines: Lines,
    budget: _Budget,
) -> list[str]:
    """installer.rb:87-92 and install_instruction.rb:157-164 for the folders the agent makes: a
    permission of type directory on a folder above them sets each one its pattern and except
    select, and set_permissions (install_instruction.rb:99-103) refuses a second on one folder.
    A note, not a refusal: the agent makes, and so sets, only the folders the instance lacks."""
    made = sorted(folders)
    selected: dict[str, int] = {}
    notes: list[str] = []
    for index, permission in enumerate(spec.permissions or []):
        written = permission.object.strip(_RUBY_STRIP)
        found = _expanded(written)
        types = permission.type if permission.type is not None else ["file", "directory"]
        if found is None or "directory" not in types or found in copies or ".." in written.split("/"):
            continue
        inside = _under(made, found)
        budget.spend(len(inside) + 1)
        for folder in inside:
            if not _selects(permission, found, folder, budget):
                continue
            if folder in selected:
                this, other = (
                    _where(("permissions", index), lines),
                    _where(("permissions", selected[folder]), lines),
                )
                mapping = _where(("files", folders[folder]), lines)
                notes.append(
                    f"{this} and {other} both set permissions on the folder {short(folder)}, which {mapping}"
                    " installs: on an instance without it (a new instance, unless its image has it)"
                    " CodeDeploy's agent refuses permissions set twice on one folder and fails the"
                    " deployment at Install; narrow one of them with pattern, except or type"
                )
                break  # one note per permission
            selected[folder] = index
    return notes


def _expanded(path: str) -> str | None:
    """Ruby's File.expand_path of an absolute path (install_instruction.rb:185, sanitize_dir_path).

    None where the agent's result is not this: a relative path is read from the agent's working
    directory, and one that starts with // keeps Ruby's own reading of its leading slashes.
    """
    if not path.startswith("/") or path.startswith("//") or "\0" in path:
        return None
    return posixpath.normpath(path)


def _under(paths: list[str], folder: str) -> list[str]:
    """The sorted ``paths`` inside ``folder`` ('' or '/' for all of them)."""
    if folder in ("", "/"):
        return paths
    prefix = folder + "/"
    start = bisect.bisect_left(paths, prefix)
    end = bisect.bisect_left(paths, folder + "0")  # '0' sorts right after '/'
    return paths[start:end]


def _planned_copies(
    spec: _AppSpec, tree: _Tree, sources: list[str], lines: Lines, budget: _Budget
) -> dict[str, tuple[int, str]]:
    """Each destination path the agent plans to copy to, and the mapping and bundle path it is from.

    installer.rb:61-73: File.join(archive, source) names a folder (source / or . is the whole
    bundle, a link to a folder is one), whose entries are copied to destination/their path in it
    (generate_directory_copy: files, links to anything but a folder, a linked folder's entries), or
    a file, copied to destination/File.basename of the source as written (a link's own name, not
    its target's); install_instruction.rb:83-85 expands each destination and refuses one planned
    twice ("two source files ... for the same destination").
    """
    copies: dict[str, tuple[int, str]] = {}
    for index, (mapping, source) in enumerate(zip(spec.files or [], sources, strict=True)):
        destination = _expanded(mapping.destination)
        if destination is None:
            continue
        if tree.is_folder(source):
            planned = [
                (path, relative) for path, relative, entered in tree.walk(source, budget) if not entered
            ]
        elif source in tree.bundle.files:
            planned = [(source, mapping.source.rstrip("/").rpartition("/")[2])]
            budget.spend(1)
        else:
            continue  # not in the bundle as the agent names it: its copy fails (see _check_file_sources)
        for path, relative in planned:
            target = posixpath.join(destination, relative)
            if target in copies:
                first, other = copies[target]
                raise _not_valid(
                    f"{_where(('files', index), lines)}"
                    f" installs {short(path)} at {short(target)}, where {_where(('files', first), lines)}"
                    f" already installs {short(other)}: CodeDeploy's agent refuses two source files for the"
                    " same destination and fails the deployment at Install; map only one of them there"
                )
            copies[target] = (index, path)
    return copies


def _check_permissions(
    spec: _AppSpec, copies: dict[str, tuple[int, str]], lines: Lines, budget: _Budget
) -> None:
    """installer.rb:75-94 for the files the bundle installs, refusing where the agent fails.

    A permission whose object is a file it installs is checked against files only
    (linux_permission_info.rb:25-40, validate_file_permission and validate_file_acl); one whose
    object is a folder above such files sets each file its pattern and except select
    (install_instruction.rb:138-149, find_matches, which refuses a default ACL on them). The agent
    refuses a second permission on one file (install_instruction.rb:99-103, set_permissions).
    """
    if any(".." in mapping.destination.split("/") for mapping in spec.files or []):
        # The agent makes the folders of such a destination as the instance resolves its '..' (through
        # links), and finds a permission's folder under it by name (installer.rb:87): it may not match.
        return
    installed = sorted(copies)
    permitted: dict[str, int] = {}
    for index, permission in enumerate(spec.permissions or []):
        written = permission.object.strip(_RUBY_STRIP)  # application_specification.rb:107
        found = _expanded(written)
        types = permission.type if permission.type is not None else ["file", "directory"]
        if found is None or "file" not in types:
            continue  # a relative object is the agent's working directory's; folders are the instance's
        default = _default_ace(permission.acls)
        if found in copies:  # installer.rb:80-86, copying_file?
            _check_file_object(index, permission, found, default, lines)
            files = [found]
        elif ".." not in written.split("/"):  # installer.rb:87-92: a folder, made or already there
            inside = _under(installed, found)
            budget.spend(len(inside) + 1)
            files = [name for name in inside if _selects(permission, found, name, budget)]
            if files and default is not None:
                raise _not_valid(_default_acl_on_file(index, permission, default, files[0], lines))
        else:
            continue  # File.directory? resolves its '..' on the instance (through links)
        for name in files:
            if name in permitted:
                where, first = (
                    _where(("permissions", index), lines),
                    _where(("permissions", permitted[name]), lines),
                )
                raise _not_valid(
                    f"{where} sets permissions on"
                    f" {short(name)}, which {first} already sets: CodeDeploy's agent refuses permissions set"
                    " twice on one file and fails the deployment at Install; narrow one of them with"
                    " pattern, except or type"
                )
            permitted[name] = index


def _check_file_object(
    index: int, permission: _Permission, found: str, default: tuple[int, str] | None, lines: Lines
) -> None:
    # linux_permission_info.rb:25-31 (validate_file_permission), then :36-40 (validate_file_acl).
    pattern = "**" if permission.pattern is None else permission.pattern
    why = f"{short(permission.object)} is a file the bundle installs" + (
        f" ({short(found)})" if found != permission.object else ""
    )
    if pattern != "**":
        where = _where(("permissions", index, "pattern"), lines)
        raise _not_valid(
            f"{where} is {short(pattern)}, but the object"
            f" {why}: CodeDeploy's agent refuses a pattern on a file and fails the deployment at Install;"
            " drop pattern, or make object the folder"
        )
    if permission.except_:
        where = _where(("permissions", index, "except"), lines)
        raise _not_valid(
            f"{where} is set, but the object {why}:"
            " CodeDeploy's agent refuses except on a file and fails the deployment at Install; drop"
            " except, or make object the folder"
        )
    if default is not None:
        raise _not_valid(_default_acl_on_file(index, permission, default, found, lines))


def _default_ace(acls: list[str] | None) -> tuple[int, str] | None:
    """The first default entry (d:) of acls, as AclInfo#get_default_ace finds it (acl_info.rb:18-30)."""
    for position, entry in enumerate(acls or []):
        default, _ = _ace_default_and_type(entry.split(":")[::-1], entry)  # already read by _ace
        if default:
            return position, entry
    return None


def _default_acl_on_file(
    index: int, permission: _Permission, default: tuple[int, str], name: str, lines: Lines
) -> str:
    position, entry = default
    where = _where(("permissions", index, "acls", position), lines)
    return (
        f"{where} is a default ACL entry"
        f" ({short(entry)}), and the permission on {short(permission.object)} sets the file {short(name)}"
        " the bundle installs: CodeDeploy's agent sets default ACLs on folders only and fails the"
        " deployment at Install; give this permission type: [directory], and set the files' ACLs in"
        " another permission"
    )


def _selects(permission: _Permission, folder: str, name: str, budget: _Budget) -> bool:
    """Whether linux_permission_info.rb:45-76 (matches_pattern?, not matches_except?) selects ``name``."""
    relative = name[len(folder.rstrip("/")) + 1 :]
    pattern = "**" if permission.pattern is None else permission.pattern
    if pattern != "**" and not _simple_glob(relative, pattern, budget):
        return False
    return not any(_simple_glob(relative, item, budget) for item in permission.except_ or [])


# A run of stars in a pattern.
_STARS = re.compile(r"\*+")


def _simple_glob(name: str, pattern: str, budget: _Budget) -> bool:
    """linux_permission_info.rb:79-110, matches_simple_glob: '*' for any characters, within one name.

    The agent keeps what is left of the pattern after each character of the name (its options) in
    a list that gains two at every '*' and is never de-duplicated: "*a*a*a*a*a*a*a*a*a*ab" against
    a name of 28 a's made it millions long here (20 s and 2.9 GB). Only which rests the list holds
    matters (the agent asks include? of it), so here they are a set of where each starts in the
    pattern, at most one more than its length; each rest looked at, and each run of stars read, is
    a step of ``budget``.
    """
    if "/" in name:
        return False
    ends = budget.star_runs.get(pattern)
    if ends is None:
        ends = budget.star_runs[pattern] = _star_runs(pattern)
        budget.spend_glob(len(ends) + 1)

    def expand(start: int) -> tuple[int, ...]:
        # expand: the rest with its leading stars but one, and without them (a star matching nothing).
        end = ends.get(start)
        return (start,) if end is None else (end - 1, end)

    rests = set(expand(0))
    # The rest "*" (the pattern's last character, if a star) matches whatever the name has left.
    any_rest = len(pattern) - 1 if pattern.endswith("*") else -1
    for char in name:
        budget.spend_glob(len(rests))
        following: set[int] = set()
        for start in rests:
            head = pattern[start : start + 1]
            if head == "*":
                following.update(expand(start))
            elif head == char:
                following.update(expand(start + 1))
        rests = following
        if any_rest in rests:
            return True
    return len(pattern) in rests


def _star_runs(pattern: str) -> dict[int, int]:
    """Where each run of stars in ``pattern`` ends, from its first star and from its last: a rest
    starts at one of those or past the run (expand keeps its last star), never inside it."""
    ends: dict[int, int] = {}
    for stars in _STARS.finditer(pattern):
        ends[stars.start()] = ends[stars.end() - 1] = stars.end()
    return ends
