"""Generated hostile bundles: every one is refused with InvalidBundle and a reason for a person.

Each strategy builds bundles that break one rule of the rollout issue (or one trick of zip
and YAML: zip slip, bombs by ratio, by count and by overlap, duplicate or undecodable names,
aliases that expand, empty files) around an otherwise valid bundle, so that the rule under
test is the only reason to refuse it.
"""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle import HOOK_EVENTS, BundleLimits, validate_bundle
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.unit.hostile_bundles import (
    APPSPEC,
    overlapping_bomb,
    set_utf8_flag,
    valid_bundle,
    with_raw_name,
    zip_of,
)

HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)
SEPARATOR = st.sampled_from(["/", "\\"])


def refused(data: bytes, limits: BundleLimits | None = None) -> str:
    """The reason ``data`` is refused (the test fails if it is accepted)."""
    with pytest.raises(InvalidBundle) as raised:
        validate_bundle(data, limits or BundleLimits())
    reason = raised.value.reason
    assert reason and len(reason) < 400, "a reason a person reads"
    return reason


def test_the_valid_bundle_the_cases_start_from_is_accepted() -> None:
    validate_bundle(valid_bundle())


# --- zip slip --------------------------------------------------------------------------------------
@st.composite
def climbing_names(draw: st.DrawFn) -> str:
    """A path with a '..' part somewhere, separated by / or \\."""
    before = draw(st.lists(SEGMENT, max_size=3))
    after = draw(st.lists(SEGMENT, min_size=1, max_size=3))
    parts = [*before, *([".."] * draw(st.integers(1, 4))), *after]
    return "".join(part + draw(SEPARATOR) for part in parts[:-1]) + parts[-1]


@st.composite
def absolute_names(draw: st.DrawFn) -> str:
    root = draw(st.sampled_from(["/", "\\", "//", "\\\\server\\share\\", "C:", "C:\\", "c:/", "Z:"]))
    return root + draw(SEPARATOR).join(draw(st.lists(SEGMENT, min_size=1, max_size=3)))


@st.composite
def windows_climbing_names(draw: st.DrawFn) -> str:
    """A part that Windows reads as '..' (dots and spaces), or a drive inside the path."""
    tricky = draw(
        st.one_of(st.text(alphabet=". ", min_size=2, max_size=5).filter(lambda p: p != ".."), st.just("C:"))
    )
    assume(tricky.strip() != "" or " " in tricky)
    return f"app{draw(SEPARATOR)}{tricky}{draw(SEPARATOR)}{draw(SEGMENT)}"


@HYPOTHESIS
@given(name=climbing_names())
def test_an_entry_that_climbs_out_with_dotdot_is_refused(name: str) -> None:
    assert "contains '..'" in refused(valid_bundle((name, b"x")))


@HYPOTHESIS
@given(name=absolute_names())
def test_an_entry_with_an_absolute_path_is_refused(name: str) -> None:
    assert "is an absolute path" in refused(valid_bundle((name, b"x")))


@HYPOTHESIS
@given(name=windows_climbing_names())
def test_an_entry_that_windows_reads_as_climbing_or_absolute_is_refused(name: str) -> None:
    reason = refused(valid_bundle((name, b"x")))

    assert "which Windows reads as" in reason or "contains '..'" in reason


# --- zip bombs -------------------------------------------------------------------------------------
@HYPOTHESIS
@given(megabytes=st.integers(2, 6), byte=st.binary(min_size=1, max_size=1))
def test_an_entry_that_uncompresses_beyond_the_ratio_is_refused(megabytes: int, byte: bytes) -> None:
    reason = refused(valid_bundle(("app/bomb.bin", byte * megabytes * 1024**2)))

    assert "a zip bomb" in reason and "times its size" in reason


@HYPOTHESIS
@given(count=st.integers(2, 40), limit=st.integers(1, 30))
def test_a_bundle_with_more_entries_than_allowed_is_refused(count: int, limit: int) -> None:
    assume(count + 2 > limit)
    data = valid_bundle(*((f"app/{index}.txt", b"") for index in range(count)))

    reason = refused(data, BundleLimits(max_entries=limit))

    assert f"the bundle has {count + 2:,} entries; at most {limit:,} are allowed" in reason


def test_a_bundle_of_a_hundred_thousand_and_one_empty_entries_is_refused_by_default() -> None:
    data = zip_of([("appspec.yml", APPSPEC), *((f"f/{index}", b"") for index in range(100_000))])

    assert "the bundle has 100,001 entries; at most 100,000" in refused(data)


@HYPOTHESIS
@given(copies=st.integers(2, 200))
def test_entries_that_share_their_compressed_bytes_are_refused(copies: int) -> None:
    reason = refused(overlapping_bomb(copies, kernel_bytes=200_000))

    assert "overlap in the zip" in reason and "zip bomb" in reason


def test_an_overlap_bomb_that_passes_every_ratio_check_is_still_refused() -> None:
    data = overlapping_bomb(300)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    claimed = sum(info.file_size for info in infos) / sum(info.compress_size for info in infos)
    assert claimed < BundleLimits().max_compression_ratio < sum(info.file_size for info in infos) / len(data)

    assert "overlap in the zip" in refused(data)


# --- duplicated names ------------------------------------------------------------------------------
@st.composite
def same_path_twice(draw: st.DrawFn) -> tuple[str, str]:
    """One path, and another spelling of it ('./', doubled or trailing separators)."""
    parts = draw(st.lists(SEGMENT, min_size=1, max_size=3))
    path = "/".join(parts)
    other = draw(st.sampled_from([path, f"./{path}", path.replace("/", "//"), "/".join([".", *parts])]))
    return path, other


@HYPOTHESIS
@given(names=same_path_twice())
def test_a_path_that_appears_twice_is_refused(names: tuple[str, str]) -> None:
    first, second = names

    reason = refused(valid_bundle(("app/" + first, b"one"), ("app/" + second, b"two")))

    assert "appears more than once" in reason or "are the same path" in reason


@HYPOTHESIS
@given(parts=st.lists(SEGMENT.filter(lambda s: s.upper() != s), min_size=1, max_size=3))
def test_paths_that_differ_only_by_case_are_two_files_on_the_linux_fleet(parts: list[str]) -> None:
    path = "app/" + "/".join(parts)

    validate_bundle(valid_bundle((path, b"1"), (path.upper(), b"2")))


@HYPOTHESIS
@given(parts=st.lists(SEGMENT.filter(lambda s: s.upper() != s), min_size=1, max_size=3))
def test_a_windows_bundle_is_refused_before_its_paths_are_compared(parts: list[str]) -> None:
    # The fleet runs Linux only: case-insensitive Windows paths never reach an instance.
    path = "app/" + "/".join(parts)
    windows = APPSPEC.replace(b"os: linux", b"os: windows")
    data = zip_of([("appspec.yml", windows), ("scripts/start.sh", b""), (path, b"1"), (path.upper(), b"2")])

    assert "is windows, but canaryfleet's fleet runs Linux only" in refused(data)


# --- names that do not decode --------------------------------------------------------------------
def _invalid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@HYPOTHESIS
@given(raw=st.binary(min_size=4, max_size=4).filter(_invalid_utf8))
def test_an_entry_name_marked_utf8_that_is_not_utf8_is_refused(raw: bytes) -> None:
    assume(b"/" not in raw and b"\\" not in raw)
    data = with_raw_name(valid_bundle(("app/XXXX.txt", b"")), b"XXXX", raw)

    assert "is not valid UTF-8" in refused(set_utf8_flag(data, on=True))


@HYPOTHESIS
@given(raw=st.binary(min_size=4, max_size=4).filter(_invalid_utf8))
def test_a_non_utf8_entry_name_not_marked_utf8_is_refused(raw: bytes) -> None:
    assume(b"/" not in raw and b"\\" not in raw and all(byte >= 0x20 for byte in raw))
    data = with_raw_name(valid_bundle(("app/XXXX.txt", b"")), b"XXXX", raw)

    assert "the zip does not mark it as UTF-8" in refused(set_utf8_flag(data, on=False))


@HYPOTHESIS
@given(name=st.text(min_size=1, max_size=4).filter(lambda s: not s.isascii() and 4 <= len(s.encode()) <= 12))
def test_a_utf8_entry_name_not_marked_utf8_from_unix_is_read_as_utf8_or_refused(name: str) -> None:
    # Info-ZIP's zip on Linux writes UTF-8 names without the flag, and its unzip writes them back
    # as they are: the entry is that name, or refused for what the name itself holds.
    raw = name.encode()
    assume(b"/" not in raw and b"\\" not in raw)
    placeholder = b"X" * len(raw)
    data = with_raw_name(valid_bundle(("app/" + placeholder.decode() + ".txt", b"")), placeholder, raw)

    try:
        validate_bundle(set_utf8_flag(data, on=False))
    except InvalidBundle as exc:
        assert "does not mark it as UTF-8" not in exc.reason


# --- appspec.yml: aliases that expand, and other YAML ---------------------------------------------
@st.composite
def laughing_appspecs(draw: st.DrawFn) -> str:
    """An appspec with anchors whose aliases expand ``width ** depth`` times."""
    width, depth = draw(st.integers(2, 12)), draw(st.integers(2, 12))
    style = draw(st.sampled_from(["flow", "block", "merge"]))
    lines = ["version: 0.0", "os: linux", 'l0: &l0 "lol"']
    for level in range(1, depth + 1):
        previous = f"*l{level - 1}"
        if style == "flow":
            lines.append(f"l{level}: &l{level} [{', '.join([previous] * width)}]")
        elif style == "block":
            lines.append(f"l{level}: &l{level}")
            lines.extend(f"  - {previous}" for _ in range(width))
        else:
            lines.append(f"l{level}: &l{level}")
            lines.append(f"  <<: {'*l1' if level > 1 else '{k: v}'}")
            lines.append(f"  k{level}: {previous}")
    return "\n".join(lines) + "\n"


@HYPOTHESIS
@given(appspec=laughing_appspecs())
def test_an_appspec_whose_aliases_expand_is_refused_before_expanding(appspec: str) -> None:
    reason = refused(zip_of([("appspec.yml", appspec.encode()), ("scripts/start.sh", b"")]))

    assert "appspec.yml uses a YAML alias" in reason and "aliases are not allowed" in reason


@HYPOTHESIS
@given(depth=st.integers(65, 400))
def test_an_appspec_nested_too_deep_is_refused(depth: int) -> None:
    appspec = "version: 0.0\nos: linux\nx: " + "[" * depth + "]" * depth + "\n"

    assert "nesting deeper than 64 levels" in refused(zip_of([("appspec.yml", appspec.encode())]))


# --- empty files -----------------------------------------------------------------------------------
def test_a_zero_byte_bundle_is_refused() -> None:
    assert refused(b"") == "the bundle is empty (0 bytes); a CodeDeploy bundle is a zip file"


def test_a_zero_byte_appspec_is_refused() -> None:
    data = zip_of([("appspec.yml", b""), ("scripts/start.sh", b"")])

    assert "appspec.yml must be a YAML mapping (version, os, files, hooks); it is empty" in refused(data)


def test_a_zero_byte_hook_script_is_a_file_like_any_other() -> None:
    validate_bundle(zip_of([("appspec.yml", APPSPEC), ("scripts/start.sh", b"")]))


# --- the rules of the rollout issue -------------------------------------------------------------
@HYPOTHESIS
@given(data=st.binary(max_size=300).filter(lambda d: not d.startswith(b"PK")))
def test_bytes_that_are_not_a_zip_are_refused(data: bytes) -> None:
    assume(data)

    assert "not a zip file" in refused(data)


@HYPOTHESIS
@given(names=st.lists(SEGMENT.map(lambda s: f"{s}.yml"), min_size=1, max_size=3, unique=True), nested=SEGMENT)
def test_a_bundle_without_appspec_at_its_root_is_refused(names: list[str], nested: str) -> None:
    assume("appspec.yml" not in names)
    data = zip_of([*((name, b"x: 1\n") for name in names), (f"{nested}/appspec.yml", APPSPEC)])

    assert "the bundle has no appspec.yml at its root" in refused(data)


@HYPOTHESIS
@given(
    text=st.sampled_from(["version: [0.0", "os: 'linux", "a: b: c", "- x\ny: 1", "\t- tab", "{", "key: @at"])
)
def test_an_appspec_that_is_not_yaml_is_refused(text: str) -> None:
    assert "appspec.yml is not valid YAML" in refused(zip_of([("appspec.yml", text.encode())]))


@st.composite
def invalid_appspecs(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid appspec with one thing wrong, and what the reason must say."""
    document: dict[str, Any] = yaml.safe_load(APPSPEC)
    case = draw(st.sampled_from(["version", "os", "files", "hook-event", "hook-key", "timeout", "unknown"]))
    if case == "version":
        document["version"] = draw(st.sampled_from([1, 0.1, "0.0", "zero", None, True]))
        return document, "version"
    if case == "os":
        document["os"] = draw(st.sampled_from(["Linux", "macos", "", 7, None]))
        return document, "os"
    if case == "files":
        document["files"] = [{"source": "/", "destination": draw(st.sampled_from(["opt/app", "", "app"]))}]
        return document, "files"
    if case == "hook-event":
        event = draw(
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=3, max_size=20)
        )
        assume(event not in HOOK_EVENTS)
        document["hooks"][event] = [{"location": "scripts/start.sh"}]
        return document, "is not a lifecycle event that runs scripts"
    if case == "hook-key":
        # A misspelt location: the agent finds no location and fails.
        document["hooks"]["ApplicationStart"][0] = {draw(st.sampled_from(["locaton", "path", "script"])): "x"}
        return document, "hooks.ApplicationStart[0].location (line "
    if case == "timeout":
        document["hooks"]["ApplicationStart"][0]["timeout"] = draw(
            st.one_of(st.integers(max_value=0), st.integers(3601))
        )
        return document, "timeout"
    document["permissions"] = [{draw(st.sampled_from(["owner", "mode", "objet"])): "x"}]
    return document, "permissions[0].object"


@HYPOTHESIS
@given(case=invalid_appspecs())
def test_an_appspec_that_is_not_a_valid_ec2_appspec_is_refused(case: tuple[dict[str, Any], str]) -> None:
    document, said = case
    data = zip_of([("appspec.yml", yaml.safe_dump(document).encode()), ("scripts/start.sh", b"")])

    reason = refused(data)

    assert reason.startswith("appspec.yml is not a valid EC2/on-premises AppSpec") and said in reason


@HYPOTHESIS
@given(event=st.sampled_from(HOOK_EVENTS), script=SEGMENT)
def test_a_hook_script_missing_from_the_bundle_is_refused(event: str, script: str) -> None:
    appspec = f"version: 0.0\nos: linux\nhooks:\n  {event}:\n    - location: hooks/{script}.sh\n"

    reason = refused(zip_of([("appspec.yml", appspec.encode()), ("hooks/other-script.sh", b"")]))

    assert reason == f"hook script hooks/{script}.sh named in appspec.yml ({event}) is not in the bundle"


@HYPOTHESIS
@given(name=SEGMENT, target=st.sampled_from(["/etc/shadow", "../../root", "../" * 9 + "etc", "./../.."]))
def test_a_symbolic_link_out_of_the_bundle_is_refused(name: str, target: str) -> None:
    link = zipfile.ZipInfo(f"app/{name}")
    link.external_attr = (0o120777) << 16

    reason = refused(valid_bundle((link, target.encode())))

    assert reason.startswith(f"symbolic link 'app/{name}' ")
    assert "an absolute path" in reason or "points outside the bundle" in reason


@HYPOTHESIS
@given(limit=st.integers(1, 10_000))
def test_a_bundle_larger_uncompressed_than_allowed_is_refused(limit: int) -> None:
    data = valid_bundle(("app/data.bin", bytes(range(256)) * 50))  # 12.5 KiB that barely compresses

    reason = refused(data, BundleLimits(max_uncompressed_bytes=limit))

    assert "would uncompress to" in reason and "the limit is" in reason


# --- work that grows faster than the bundle ---------------------------------------------------------
def peak_memory(work: Callable[[], object]) -> int:
    """The most memory ``work`` held at once, in bytes (Python's allocations, as tracemalloc sees)."""
    tracemalloc.start()
    try:
        work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def glob_bundle(pattern: str, name: str) -> bytes:
    """A bundle installing its root to /opt/app, with one permission's ``pattern``, and a file ``name``."""
    appspec = f"""\
version: 0.0
os: linux
files:
  - source: /
    destination: /opt/app
permissions:
  - object: /opt/app
    pattern: "{pattern}"
    mode: 644
hooks:
  ApplicationStart:
    - location: scripts/start.sh
"""
    return zip_of([("appspec.yml", appspec.encode()), ("scripts/start.sh", b"#!/bin/sh\n"), (name, b"x")])


def refusal(data: bytes) -> Callable[[], object]:
    return lambda: refused(data)


def test_a_pattern_whose_matching_doubles_at_every_star_is_matched_in_little_memory() -> None:
    # Given the audit's bundle: a permission's pattern *a*a*a*a*a*a*a*a*a*ab and a file of a's.
    # The agent's matches_simple_glob (copied as it was) kept a list that doubled at each star:
    # with 28 a's, 20 s and 2.9 GB for a 518-byte bundle; 18 a's keep the old failure quick.
    data = glob_bundle("*a" * 10 + "b", "a" * 18)
    validate_bundle(glob_bundle("*.log", "a.log"))  # pydantic's schemas built before measuring

    # When it is validated
    peak = peak_memory(lambda: validate_bundle(data))

    # Then it is accepted holding next to nothing (the unfixed matcher: 30 MiB here)
    assert peak < 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("a/" * 2047 + "ff", "is 4,096 bytes long; Linux takes at most 4,095 (PATH_MAX)"),
        ("a/" * 32_000 + "f", "is 64,001 bytes long; Linux takes at most 4,095 (PATH_MAX)"),
        ("app/" + "x" * 256, f"has a part of 256 bytes ('{'x' * 36}...); Linux takes at most 255 (NAME_MAX)"),
        ("x" * 256 + "/start.sh", f"has a part of 256 bytes ('{'x' * 36}...); Linux takes at most 255"),
        ("app/" + "é" * 128, f"has a part of 256 bytes ('{'é' * 36}...); Linux takes at most 255"),
    ],
    ids=["path of 4,096 bytes", "path of 32,000 folders", "file name of 256", "folder name of 256", "utf-8"],
)
def test_an_entry_name_longer_than_linux_takes_is_refused_naming_the_entry(name: str, said: str) -> None:
    # Given an entry whose name unzip cannot write on the instance (see safe_zip._PATH_MAX_BYTES)
    # When the bundle is validated
    reason = refused(valid_bundle((name, b"x")))

    # Then the reason names the entry, shortened, and the limit
    assert reason.startswith(f"entry name {name[:10]!r}"[:-1]) and said in reason
    assert "so CodeDeploy's agent cannot unpack it" in reason


@pytest.mark.parametrize(
    "name",
    ["a/" * 2047 + "f", "app/" + "x" * 255, "app/" + "é" * 127 + "x"],
    ids=["path of 4,095 bytes", "part of 255", "part of 255 in utf-8"],
)
def test_an_entry_name_as_long_as_linux_takes_is_accepted(name: str) -> None:
    assert validate_bundle(valid_bundle((name, b"x"))).entries == 3


def test_a_name_of_thousands_of_folders_is_refused_before_they_are_listed() -> None:
    # Given one entry of 8,000 folders: listing each of them (a/, a/a/, ...) would hold 64 MB of
    # folder names, 32,000 of them 1.25 GB
    data = valid_bundle(("a/" * 8_000 + "f", b""))

    # When it is validated, Then it is refused holding next to nothing
    assert peak_memory(refusal(data)) < 8 * 1024 * 1024


def test_deep_paths_under_many_folders_are_refused_before_gigabytes_of_folders() -> None:
    # Given entries within PATH_MAX, each 2,040 folders deep under a folder of its own: each names
    # 4 million characters of new folders, 4,000 of them 17 GB (a 16 MB zip)
    entries = [(f"r{index}/" + "a/" * 2_040 + "f", b"") for index in range(8)]

    # When it is validated
    reason = refused(valid_bundle(*entries))

    # Then it is refused as soon as the folders' names pass the limit, naming the entry it was at
    assert reason.startswith(
        "the bundle's entries name folders whose paths add up to more than 16,000,000 characters"
        " (at 'r3/a/a/a/"
    )


def test_many_files_deep_in_one_folder_are_accepted_each_folder_counted_once() -> None:
    # Given 1,000 files in one folder 2,000 folders deep: 4 million characters of folders, named
    # 1,000 times over (4 billion, past the limit, if each file's were counted)
    deep = "a/" * 2_000
    data = valid_bundle(*((f"{deep}f{index}", b"") for index in range(1_000)))

    # When it is validated, Then it is accepted
    assert validate_bundle(data).entries == 1_002
