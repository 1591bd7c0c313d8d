"""Symbolic links in a bundle, as CodeDeploy's agent unpacks and installs them.

The agent unpacks a Linux bundle with unzip, which makes each link a link (linux_util.rb,
extract_zip), installs a link to a file as a link with the same target, and copies a linked
folder's files (install_instruction.rb, CopyCommand; installer.rb, generate_directory_copy). So
`zip -ry` bundles (npm's node_modules/.bin, versioned shared libraries, a virtualenv's lib64) are
deployed; links that leave the bundle, loop, or make a folder copy endless are refused.
"""

from __future__ import annotations

import io
import stat
import zipfile

import pytest
from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle import validate_bundle

APPSPEC = b"""version: 0.0
os: linux
files:
  - source: app
    destination: /opt/app
hooks:
  ApplicationStart:
    - location: scripts/start.sh
"""
BUILD = {
    "appspec.yml": APPSPEC,
    "scripts/start.sh": b"#!/bin/bash\nexec /opt/app/bin/server\n",
    "app/bin/server": b"#!/bin/sh\n",
    "app/node_modules/pkg/cli.js": b"#!/usr/bin/env node\n",
    "app/lib/libfoo.so.1.2": b"\x7fELF",
}


def link(name: str, target: str, host: int = 3) -> tuple[zipfile.ZipInfo, bytes]:
    """A link entry as `zip -y` writes it: a Unix host, S_IFLNK, the target as its data."""
    info = zipfile.ZipInfo(name)
    info.create_system = host
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def bundle(*links: tuple[zipfile.ZipInfo, bytes], files: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (BUILD if files is None else files).items():
            archive.writestr(name, data)
        for info, target in links:
            archive.writestr(info, target)
    return buffer.getvalue()


def refused(data: bytes) -> str:
    with pytest.raises(InvalidBundle) as caught:
        validate_bundle(data)
    return str(caught.value)


def test_the_links_a_zip_ry_build_holds_are_accepted_and_need_no_note() -> None:
    # Given npm's .bin link, a shared library's version links and a virtualenv's lib64
    data = bundle(
        link("app/node_modules/.bin/cli", "../pkg/cli.js"),
        link("app/lib/libfoo.so.1", "libfoo.so.1.2"),
        link("app/lib/libfoo.so", "libfoo.so.1"),
        link("app/lib64", "lib"),
    )

    report = validate_bundle(data)

    assert report.notes == []


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("/etc/shadow", "points to '/etc/shadow', an absolute path"),
        ("../../etc/cron.d", "(to '../../etc/cron.d') points outside the bundle"),
        # Through a folder link, '..' goes up from where it points: app/lib64 is app/lib, so
        # lib64/../.. is the root, and one more climbs out (lexically it would stay inside).
        ("lib64/../../..", "(to 'lib64/../../..') points outside the bundle"),
    ],
)
def test_a_link_out_of_the_bundle_is_refused(target: str, said: str) -> None:
    reason = refused(bundle(link("app/lib64", "lib"), link("app/x", target)))

    assert reason.startswith("symbolic link 'app/x' ") and said in reason, reason


def test_links_that_loop_are_refused() -> None:
    reason = refused(bundle(link("app/a", "b"), link("app/b", "a")))

    assert "leads through links that loop" in reason


@pytest.mark.parametrize(
    "links",
    [
        [("app/lib/up", "..")],  # to a folder it is in
        [("app/self", ".")],
        [("app/bin/to-lib", "../lib"), ("app/lib/to-bin", "../bin")],  # two folders into each other
    ],
    ids=["parent", "itself", "two-folders"],
)
def test_folder_links_whose_copy_would_never_end_are_refused(links: list[tuple[str, str]]) -> None:
    reason = refused(bundle(*(link(name, target) for name, target in links)))

    assert "leads back to a folder it is in" in reason, reason


def test_a_link_that_entries_are_inside_is_refused() -> None:
    files = {**BUILD, "app/current/index.html": b"<html>"}

    reason = refused(bundle(link("app/current", "lib"), files=files))

    assert reason.startswith("'app/current' is a symbolic link, but other entries are inside it")


def test_a_link_a_zip_not_made_on_unix_marks_is_refused() -> None:
    # unzip makes links only of a Unix zip's entries; from another host it writes the target as text
    reason = refused(bundle(link("app/lib64", "lib", host=0)))

    assert "is marked a symbolic link, but its zip was not made on Unix" in reason


def test_a_link_longer_than_linux_reads_is_refused() -> None:
    reason = refused(bundle(link("app/long", "a/" * 2048)))

    assert "a path of 4096 bytes; Linux reads at most 4095" in reason


def test_a_hook_script_that_is_a_link_runs_its_target_whose_first_line_is_checked() -> None:
    appspec = APPSPEC.replace(b"scripts/start.sh", b"scripts/run")
    files = {**BUILD, "appspec.yml": appspec}
    good = validate_bundle(bundle(link("scripts/run", "start.sh"), files=files))
    crlf = {**files, "scripts/start.sh": b"#!/bin/bash\r\necho\r\n"}

    assert good.hooks == {"ApplicationStart": ["scripts/start.sh"]}
    assert "carriage return" in refused(bundle(link("scripts/run", "start.sh"), files=crlf))
    assert "is not in the bundle" in refused(bundle(link("scripts/run", "gone.sh"), files=files))


def test_a_hook_path_through_a_folder_link_is_resolved_where_the_link_points() -> None:
    # Given app/current -> releases/v2, and the hook at app/current/../run.sh: on the instance
    # that is app/releases/run.sh (the '..' goes up from releases/v2), not app/run.sh
    appspec = APPSPEC.replace(b"scripts/start.sh", b"app/current/../run.sh")
    files = {
        **BUILD,
        "appspec.yml": appspec,
        "app/releases/v2/server": b"",
        "app/releases/run.sh": b"#!/bin/sh\n",
    }
    lexical = {**files, "app/run.sh": b"#!/bin/sh\n"}
    del lexical["app/releases/run.sh"]

    report = validate_bundle(bundle(link("app/current", "releases/v2"), files=files))

    assert report.hooks == {"ApplicationStart": ["app/releases/run.sh"]}
    assert "is not in the bundle" in refused(bundle(link("app/current", "releases/v2"), files=lexical))


def test_an_appspec_that_is_a_link_is_read_where_it_points() -> None:
    files = {k: v for k, v in BUILD.items() if k != "appspec.yml"} | {"deploy/appspec.yml": APPSPEC}

    report = validate_bundle(bundle(link("appspec.yml", "deploy/appspec.yml"), files=files))

    assert report.hooks == {"ApplicationStart": ["scripts/start.sh"]}


def test_a_link_to_nothing_and_one_that_leaves_its_files_source_are_noted() -> None:
    report = validate_bundle(bundle(link("app/pid", "run/app.pid"), link("app/start", "../scripts/start.sh")))

    assert report.notes == [
        "symbolic links to nothing in the bundle, unpacked as they are: app/pid (to 'run/app.pid')",
        "symbolic links installed as links whose target is outside the files source they are copied"
        " with, so on the instance they point next to its destination: app/start (to"
        " '../scripts/start.sh', files source app)",
    ]


def test_a_bundle_zipped_as_one_folder_keeps_its_links_inside_that_folder() -> None:
    # The agent deploys from inside the one folder (its appspec there): a link may not leave it
    files = {f"build/{name}": data for name, data in BUILD.items()}

    assert validate_bundle(bundle(link("build/app/lib64", "lib"), files=files)).notes[1:] == []
    reason = refused(bundle(link("build/app/x", "../../README"), files=files))
    assert "points outside the bundle" in reason


def test_links_made_to_be_slow_to_follow_are_refused() -> None:
    # Given 2,000 links, each with a target near Linux's longest that leads through the next
    # one, in chains of 40 (as many as Linux follows)
    pad = "x/../" * 800
    links = [link(f"app/l{i}", pad + (f"l{i + 1}" if (i + 1) % 40 else "end")) for i in range(2_000)]

    reason = refused(bundle(*links))

    assert reason.startswith("the bundle's symbolic links take more than 2,000,000 steps to follow")


def test_links_in_a_zip_the_agent_unpacks_again_with_rubyzip_are_refused() -> None:
    # A Windows tool's backslashed name makes unzip exit 1; the agent's rubyzip 1.3 then skips links
    windows = zipfile.ZipInfo("docs\\index.html")
    windows.create_system = 0  # a FAT host, as Compress-Archive writes
    data = bundle(link("app/lib64", "lib"), (windows, b"<html>"))

    reason = refused(data)

    assert reason.startswith("the bundle has symbolic links and names written with backslashes")


def _with_files(*mappings: dict[str, str], behaviour: str | None = None) -> dict[str, bytes]:
    """BUILD with its appspec's files mappings replaced (and a file_exists_behavior, if given)."""
    lines = ["version: 0.0", "os: linux", "files:"]
    for mapping in mappings:
        lines += [f"  - source: {mapping['source']}", f"    destination: {mapping['destination']}"]
    if behaviour is not None:
        lines.append(f"file_exists_behavior: {behaviour}")
    lines += ["hooks:", "  ApplicationStart:", "    - location: scripts/start.sh", ""]
    return {**BUILD, "appspec.yml": "\n".join(lines).encode()}


def test_a_linked_folders_files_are_planned_where_the_link_puts_them() -> None:
    # Given app/current, a link to the folder app/lib: the agent copies lib's files under
    # /opt/app/current; a second mapping installs one of them there too
    files = _with_files(
        {"source": "app", "destination": "/opt/app"},
        {"source": "app/lib/libfoo.so.1.2", "destination": "/opt/app/current"},
    )

    reason = refused(bundle(link("app/current", "lib"), files=files))

    assert reason == (
        "appspec.yml is not a valid EC2/on-premises AppSpec:"
        " files[1] (line 6) installs 'app/lib/libfoo.so.1.2' at '/opt/app/current/libfoo.so.1.2', where"
        " files[0] (line 4) already installs 'app/lib/libfoo.so.1.2': CodeDeploy's agent refuses two"
        " source files for the same destination and fails the deployment at Install; map only one of"
        " them there"
    )


def test_a_file_source_that_is_a_link_is_installed_under_the_links_own_name() -> None:
    # Given app/server-link, a link to app/bin/server, mapped into /opt/bin where app/bin's own
    # mapping installs server: the agent names the copy after the source as written
    files = _with_files(
        {"source": "app/bin", "destination": "/opt/bin"},
        {"source": "app/server-link", "destination": "/opt/bin"},
    )

    report = validate_bundle(bundle(link("app/server-link", "bin/server"), files=files))

    assert not any("two source files" in note for note in report.notes)


@pytest.mark.parametrize("behaviour", [None, "DISALLOW"])
def test_a_file_installed_where_a_linked_folder_goes_is_noted_or_refused(behaviour: str | None) -> None:
    # Given app/current, a link to a folder, so /opt/app/current is a folder the agent makes; and
    # a file named current installed into /opt/app by another mapping
    files = _with_files(
        {"source": "app", "destination": "/opt/app"},
        {"source": "scripts/current", "destination": "/opt/app"},
        behaviour=behaviour,
    )
    made = bundle(link("app/current", "lib"), files={**files, "scripts/current": b"v1\n"})
    clash = (
        "files[1] (line 6) installs the file 'scripts/current' at '/opt/app/current', where files[0]"
        " (line 4) installs a folder"
    )

    if behaviour == "DISALLOW":
        assert refused(made).startswith(f"appspec.yml is not a valid EC2/on-premises AppSpec: {clash}")
    else:
        assert any(note.startswith(clash) for note in validate_bundle(made).notes)
