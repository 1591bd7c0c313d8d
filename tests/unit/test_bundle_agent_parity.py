"""The bundle check against what CodeDeploy's agent does with the bundle on the instance: refused
where the agent fails (a hook script it cannot run, a path out of the bundle), accepted where it
installs (paths with '..' inside the bundle, node_modules, empty folders).
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle import BundleLimits, validate_bundle
from canaryfleet.logic.bundle.archive import zip_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.hostile_bundles import APPSPEC, valid_bundle, zip_of
from tests.unit.test_bundle_validation import bundle, dump, hooks_of, spec
from tests.unit.test_hostile_bundles import refused

CRLF_ADVICE = (
    "has Windows line endings (CRLF) on its #! line: the agent cannot run it (Linux takes the carriage"
    " return as part of the interpreter's name or argument); convert it to LF (dos2unix, or git's"
    " core.autocrlf=false / .gitattributes `*.sh text eol=lf`)"
)


def with_start_script(text: bytes, appspec: str | None = None) -> bytes:
    """The base bundle, its ApplicationStart script (scripts/start.sh) replaced by ``text``."""
    return bundle(appspec, extra=[("scripts/start.sh", text)], without=["scripts/start.sh"])


# --- 1. a #! line saved with Windows line endings -------------------------------------------------
@pytest.mark.parametrize(
    "script",
    [
        b"#!/bin/bash\r\nset -e\r\nexec python3 /opt/app/server.py\r\n",
        b"#!/usr/bin/env bash\r\nexec python3 /opt/app/server.py\n",
        b"#!/bin/bash -e\r\n",
        b"#!/bin/sh\r",  # one line, no newline: the kernel reads it to the end of the file
    ],
    ids=["crlf file", "env", "with an argument", "no newline"],
)
@pytest.mark.parametrize("runas", [None, "root"], ids=["exec", "runas"])
def test_a_hook_script_whose_shebang_line_ends_in_crlf_is_refused_in_the_operators_words(
    script: bytes, runas: str | None
) -> None:
    # Given a start script checked out with git's autocrlf (the agent: Errno::ENOENT, or with runas
    # bash's "cannot execute: required file not found")
    start: dict[str, Any] = {"location": "scripts/start.sh"} | ({"runas": runas} if runas else {})
    data = with_start_script(script, spec(hooks=hooks_of(ApplicationStart=[start])))

    # When it is validated
    # Then it is refused, naming the script, its event, and the way to fix it
    assert refused(data) == f"hook script scripts/start.sh (ApplicationStart) {CRLF_ADVICE}"


@pytest.mark.parametrize(
    "script",
    [
        b"#!/bin/bash\necho started\r\n",  # CRLF after the #! line: bash runs it (echo prints the \r)
        b"echo started\r\n",  # no #! line: Ruby's exec hands it to /bin/sh (ENOEXEC)
        b"",
    ],
    ids=["crlf after the shebang", "no shebang", "empty"],
)
def test_a_hook_script_whose_shebang_line_is_unix_or_absent_is_accepted(script: bytes) -> None:
    # Given a start script the kernel runs (or hands to a shell) without a \r in its interpreter
    # When it is validated
    report = validate_bundle(with_start_script(script))

    # Then it is accepted
    assert report.hooks["ApplicationStart"] == ["scripts/start.sh"]


def test_a_crlf_shebang_in_a_file_no_hook_runs_is_not_judged() -> None:
    # Given an application file with a CRLF #! line that no hook names
    data = bundle(extra=[("app/tool.sh", b"#!/bin/bash\r\necho hi\r\n")])

    # When it is validated / Then it is accepted: the agent only copies it
    assert validate_bundle(data).files == [{"source": "/app", "destination": "/opt/app"}]


def test_a_crlf_script_of_a_zip_made_from_its_folder_is_found_where_the_agent_unpacks_it() -> None:
    # Given `zip -r app.zip app/`: the agent runs the scripts from inside app/ (unpack_bundle)
    data = zip_of([("app/appspec.yml", APPSPEC), ("app/scripts/start.sh", b"#!/bin/sh\r\n")])

    # When it is validated / Then the script inside the folder is judged
    assert refused(data) == f"hook script scripts/start.sh (ApplicationStart) {CRLF_ADVICE}"


def test_a_windows_appspec_is_refused_for_its_os_and_its_scripts_are_not_judged() -> None:
    # Given an os: windows appspec whose script has CRLF (PowerShell runs it on Windows)
    data = with_start_script(b"#!/bin/bash\r\n", spec(os="windows"))

    # When it is validated / Then the reason is the fleet's os, not the line endings
    reason = refused(data)
    assert "canaryfleet's fleet runs Linux only" in reason and "CRLF" not in reason


@pytest.mark.parametrize(
    "script",
    [b"\xef\xbb\xbf#!/usr/bin/env python3\nprint('started')\n", b"\xef\xbb\xbf#!/usr/bin/node\n"],
    ids=["env python3", "node"],
)
def test_a_hook_script_saved_with_a_byte_order_mark_is_refused_when_sh_cannot_run_it(script: bytes) -> None:
    # Given a start script saved by Windows PowerShell 5.1 (Out-File -Encoding utf8): the kernel
    # does not see its #!, and the agent's Ruby runs it with /bin/sh (ENOEXEC)
    data = with_start_script(script)

    # When it is validated / Then it is refused, naming the script, its interpreter and the fix
    reason = refused(data)
    assert reason.startswith("hook script scripts/start.sh (ApplicationStart) starts with a UTF-8 byte order")
    assert "instead of 'python3'" in reason or "instead of 'node'" in reason
    assert reason.endswith("save it as UTF-8 without a BOM")


@pytest.mark.parametrize("script", [b"\xef\xbb\xbf#!/bin/bash\necho started\n", b"\xef\xbb\xbf#!/bin/sh\n"])
def test_a_shell_script_saved_with_a_byte_order_mark_is_accepted_as_sh_still_runs_it(script: bytes) -> None:
    assert validate_bundle(with_start_script(script)).hooks["ApplicationStart"] == ["scripts/start.sh"]


# --- 2. '..' in a location or source --------------------------------------------------------------
def test_a_hook_location_with_dotdot_inside_the_bundle_is_the_script_it_resolves_to() -> None:
    # Given locations the agent's File.join and the file system resolve to the bundle's scripts
    hooks = {
        "ApplicationStop": [{"location": "scripts/../scripts/stop.sh"}],
        "ApplicationStart": [{"location": "app/../scripts/./start.sh"}],
    }

    # When the bundle is validated
    report = validate_bundle(bundle(spec(hooks=hooks)))

    # Then it is accepted, and each script is reported by its path in the bundle
    assert report.hooks == {"ApplicationStop": ["scripts/stop.sh"], "ApplicationStart": ["scripts/start.sh"]}


@pytest.mark.parametrize(
    "source", ["scripts/../app/server.py", "app/../app", "scripts/..", "/scripts/../app/"]
)
def test_a_files_source_with_dotdot_inside_the_bundle_is_accepted(source: str) -> None:
    # Given a files source whose '..' stays in the bundle (installer.rb:62, File.join)
    files = [{"source": source, "destination": "/opt/app"}]

    # When the bundle is validated / Then it is accepted as written
    assert validate_bundle(bundle(spec(files=files))).files == files


@pytest.mark.parametrize(
    ("hooks", "files", "named"),
    [
        (
            hooks_of(ApplicationStart=[{"location": "../scripts/start.sh"}]),
            None,
            "hook script ../scripts/start.sh",
        ),
        (
            hooks_of(ApplicationStart=[{"location": "scripts/../../x.sh"}]),
            None,
            "hook script scripts/../../x.sh",
        ),
        (None, [{"source": "..", "destination": "/opt/app"}], "files source .."),
        (None, [{"source": "app/../../etc", "destination": "/opt/app"}], "files source app/../../etc"),
    ],
    ids=["location", "nested location", "source", "nested source"],
)
def test_a_path_whose_dotdot_climbs_out_of_the_bundle_is_refused_saying_so(
    hooks: dict[str, Any] | None, files: list[dict[str, str]] | None, named: str
) -> None:
    # Given a location or source that goes above the bundle's root (to the agent's own files)
    appspec = spec(**({"hooks": hooks} if hooks else {}), **({"files": files} if files else {}))

    # When it is validated
    reason = refused(bundle(appspec))

    # Then the reason says it climbs out, not that it is missing
    assert reason.startswith(named) and "climbs out of the bundle" in reason
    assert "not in the bundle" not in reason


@pytest.mark.parametrize(
    "location",
    [
        "app/server.py/../../scripts/start.sh",
        "nowhere/../scripts/start.sh",
        "scripts/start.sh/",
        "scripts/start.sh/.",
    ],
    ids=["dotdot after a file", "dotdot after a missing folder", "trailing slash", "trailing dot"],
)
def test_a_location_the_file_system_cannot_look_up_is_not_in_the_bundle(location: str) -> None:
    # Given a location whose path goes on from a file or a missing folder (ENOTDIR, ENOENT)
    appspec = spec(hooks=hooks_of(ApplicationStart=[{"location": location}]))

    # When it is validated / Then the script is not found, as the agent would not find it
    assert refused(bundle(appspec)).endswith("(ApplicationStart) is not in the bundle")


# The agent's lookup, played on a real file system: the bundle unpacked into deployment-archive,
# next to the other files of the deployment's folder.
TREE = {"scripts/start.sh": "#!/bin/sh\n", "scripts/stop.sh": "#!/bin/sh\n", "app/server.py": ""}
TREE |= {"app/lib/util.py": ""}
PARTS = st.sampled_from(["scripts", "app", "lib", "start.sh", "server.py", "util.py", "..", ".", "", "x"])
# Ways round before a name: none, '.', '//', into a folder (or a file, or nothing) and back, up.
DETOURS = st.sampled_from(
    [
        [],
        ["."],
        [""],
        ["app", ".."],
        ["scripts", ".."],
        ["app", "lib", "..", ".."],
        ["x", ".."],
        ["server.py", ".."],
        ["app", "server.py", ".."],
        [".."],
    ]
)


@st.composite
def roundabout_paths(draw: st.DrawFn) -> list[str]:
    """A path to one of the bundle's files or folders (or a missing one), with detours on its way."""
    parts: list[str] = []
    for name in draw(st.sampled_from([*TREE, "scripts", "app/lib", "x/y.sh"])).split("/"):
        parts += [*draw(DETOURS), name]
    return parts + draw(st.sampled_from([[], [""], ["."], [".."]]))


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    deployment = tmp_path_factory.mktemp("deployment")
    archive = {f"deployment-archive/{name}": text for name, text in {**TREE, "appspec.yml": ""}.items()}
    for name, text in {**archive, "logs/scripts.log": ""}.items():
        (deployment / name).parent.mkdir(parents=True, exist_ok=True)
        (deployment / name).write_text(text)
    yield deployment / "deployment-archive"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.one_of(roundabout_paths(), st.lists(PARTS, min_size=1, max_size=6).filter(any)))
def test_a_hook_location_is_found_exactly_where_the_file_system_finds_it(
    unpacked: Path, parts: list[str]
) -> None:
    # Given any location made of the bundle's names, '.', '..' and empty parts
    location = "/".join(parts)
    appspec = dump({"version": 0.0, "os": "linux", "hooks": {"ApplicationStart": [{"location": location}]}})
    data = zip_of([*TREE.items(), ("appspec.yml", appspec)])

    # When it is validated
    found: str | None = None
    reason = ""
    try:
        found = validate_bundle(data).hooks["ApplicationStart"][0]
    except InvalidBundle as exc:
        reason = exc.reason

    # Then it is the file the agent's File.join finds (hook_executor.rb:234), or refused where that
    # fails; a location above the bundle's root is refused as climbing out, on purpose
    joined = f"{unpacked}/{location}"
    resolved = os.path.normpath(joined)
    inside = resolved == str(unpacked) or resolved.startswith(f"{unpacked}/")
    if "climbs out of the bundle" in reason:
        assert not inside, location
    elif os.path.isfile(joined) and inside:  # noqa: PTH113 (pathlib drops a final '.', the kernel does not)
        assert found == os.path.relpath(resolved, unpacked), location
    else:
        assert found is None and reason.endswith("is not in the bundle"), (location, reason)


# --- 3. node_modules: the number of entries -------------------------------------------------------
def node_modules(count: int) -> list[tuple[str, bytes]]:
    """``count`` files with pnpm's long paths, as a Node app's build has them."""
    return [
        (
            f"node_modules/.pnpm/@babel+plugin-transform-modules-commonjs@7.24.{index % 97}"
            "_@babel+core@7.24.3/node_modules/@babel/plugin-transform-modules-commonjs/lib/helpers"
            f"/module-{index}.js",
            b"",
        )
        for index in range(count)
    ]


def test_a_node_app_of_a_hundred_thousand_entries_with_long_paths_is_accepted_by_default() -> None:
    # Given a bundle of 100,000 entries, its directory of 19 MiB (over 10,000 and 8 MiB, the old limits)
    data = valid_bundle(*node_modules(99_998))

    # When it is validated with the default limits
    report = validate_bundle(data)

    # Then it is accepted, as the agent installs it (it has no entry limit)
    assert report.entries == 100_000


def test_the_refusal_of_too_many_entries_names_the_limit_and_what_to_do() -> None:
    # Given a bundle over an entry limit
    # When it is validated
    reason = refused(valid_bundle(*node_modules(20)), BundleLimits(max_entries=10))

    # Then the reason says which limit, and how to ship the same app
    assert reason == (
        "the bundle has 22 entries; at most 10 are allowed (the limit on files and folders,"
        " BundleLimits.max_entries): ship a folder of many small files, such as node_modules, as one"
        " archive inside the bundle that a hook unpacks, or prune what the instance does not need"
        " (npm prune --omit=dev)"
    )


def test_a_directory_of_too_many_entries_is_refused_before_an_object_is_made_of_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a directory of 5,002 records against a limit of 10 (64 MiB of them would be 1.4 million,
    # over 1 GiB as zipfile's objects, more than start_rollout has)
    data = valid_bundle(*((f"f/{index}", b"") for index in range(5_000)))
    made = 0
    make = zipfile.ZipInfo.__init__

    def counting(self: zipfile.ZipInfo, *args: Any, **kwargs: Any) -> None:
        nonlocal made
        made += 1
        make(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipInfo, "__init__", counting)

    # When it is validated
    reason = refused(data, BundleLimits(max_entries=10))

    # Then it is refused, with the count, before zipfile parsed the records
    assert reason.startswith("the bundle has 5,002 entries; at most 10 are allowed")
    assert made == 0


# --- 4. empty folders in `canaryfleet publish` -----------------------------------------------------
LOGS_APPSPEC = """\
version: 0.0
os: linux
files:
  - source: app
    destination: /opt/myapp
  - source: logs
    destination: /var/log/myapp
hooks:
  ApplicationStart:
    - location: scripts/start.sh
"""


def write_logs_build(root: Path, mtime: int) -> Path:
    """A build whose appspec installs its empty logs/ folder, every path dated ``mtime``."""
    for name, text in {
        "appspec.yml": LOGS_APPSPEC,
        "scripts/start.sh": "#!/bin/sh\n",
        "app/server.py": "",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for empty in ("logs", "app/cache/__pycache__", "app/tmp"):
        (root / empty).mkdir(parents=True)
    for path in [root, *root.rglob("*")]:
        os.utime(path, (mtime, mtime))
    return root


def test_publish_zips_an_empty_folder_the_appspec_installs_and_accepts_its_own_zip(tmp_path: Path) -> None:
    # Given a build whose appspec maps an empty logs/ folder (the agent makes it: installer.rb:98-112)
    build = write_logs_build(tmp_path / "build", mtime=1_700_000_000)

    # When publish zips it and the zip is validated
    data = zip_folder(build)
    report = validate_bundle(data)

    # Then the folder is in the zip, and the zip is accepted
    assert report.files[1] == {"source": "logs", "destination": "/var/log/myapp"}
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.namelist() == [
        "app/cache/",  # it holds only bytecode, which is left out: empty, as deployed
        "app/server.py",
        "app/tmp/",
        "appspec.yml",
        "logs/",
        "scripts/start.sh",
    ]
    logs = archive.getinfo("logs/")
    assert logs.is_dir() and stat.S_ISDIR(logs.external_attr >> 16) and logs.file_size == 0
    assert logs.date_time == (1980, 1, 1, 0, 0, 0)


def test_a_build_with_empty_folders_zips_to_the_same_bytes_whatever_its_times_and_umask(
    tmp_path: Path,
) -> None:
    # Given two copies of one build, made a day apart, one folder with another mode
    first = write_logs_build(tmp_path / "first", mtime=1_700_000_000)
    second = write_logs_build(tmp_path / "second", mtime=1_700_086_400)
    (second / "logs").chmod(0o775)

    # When both are zipped / Then the zips are identical
    assert zip_folder(first) == zip_folder(second)


def test_publish_and_zip_r_of_a_folder_with_an_empty_folder_are_both_accepted(tmp_path: Path) -> None:
    # Given the build, zipped by publish and by Info-ZIP's `zip -r` (which keeps folders)
    build = write_logs_build(tmp_path / "build", mtime=1_700_000_000)
    zipped = tmp_path / "zip-r.zip"
    try:
        subprocess.run(["zip", "-qr", str(zipped), "."], cwd=build, check=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("Info-ZIP's zip is not installed")

    # When both are validated / Then both install the same files and folders
    ours, theirs = validate_bundle(zip_folder(build)), validate_bundle(zipped.read_bytes())
    assert ours.files == theirs.files and ours.hooks == theirs.hooks
