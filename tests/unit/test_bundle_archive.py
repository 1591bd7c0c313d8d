"""Folder zipping for `canaryfleet publish` and the local cloud: same folder, same bytes, no local cloud."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from canaryfleet.logic.bundle import validate_bundle
from canaryfleet.logic.bundle.archive import UnzippableFolder, zip_folder
from typer.testing import CliRunner

from canaryfleet_cli.main import app

APPSPEC = "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: scripts/start.sh\n"


def write_build(root: Path, mtime: int) -> Path:
    """A small build folder whose files all carry the modification time ``mtime``."""
    files = {
        "appspec.yml": APPSPEC,
        "scripts/start.sh": "#!/bin/sh\nexec python3 /opt/app/server.py\n",
        "app/server.py": "print('hello')\n",
        "app/__pycache__/server.cpython-311.pyc": "stale bytecode",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, (mtime, mtime))
    (root / "scripts/start.sh").chmod(0o755)
    return root


def test_the_same_folder_zips_to_the_same_bytes_whatever_its_files_times(tmp_path: Path) -> None:
    # Given two copies of one build, written a day apart
    first = write_build(tmp_path / "first", mtime=1_700_000_000)
    second = write_build(tmp_path / "second", mtime=1_700_086_400)

    # When both are zipped
    # Then the zips are identical (same S3 ETag for the same build)
    assert zip_folder(first) == zip_folder(second)


def test_a_zipped_folder_keeps_names_sorted_the_executable_bit_and_no_bytecode(tmp_path: Path) -> None:
    # Given a build with an executable hook script and a __pycache__ folder
    build = write_build(tmp_path, mtime=1_700_000_000)

    # When it is zipped
    archive = zipfile.ZipFile(io.BytesIO(zip_folder(build)))

    # Then names are relative POSIX paths in order, bytecode is left out, and the script stays executable
    assert archive.namelist() == ["app/server.py", "appspec.yml", "scripts/start.sh"]
    mode = archive.getinfo("scripts/start.sh").external_attr >> 16
    assert stat.S_ISREG(mode) and mode & 0o111 == 0o111
    assert validate_bundle(zip_folder(build)).hooks == {"ApplicationStart": ["scripts/start.sh"]}


def test_a_linked_folder_is_zipped_as_what_it_links_to_as_zip_r_does(tmp_path: Path) -> None:
    # Given a pnpm build: node_modules/express links into node_modules/.pnpm
    build = write_build(tmp_path / "build", mtime=1_700_000_000)
    package = build / "node_modules/.pnpm/express@4.18.2/node_modules/express"
    package.mkdir(parents=True)
    (package / "index.js").write_text("module.exports = {}\n")
    (build / "node_modules/express").symlink_to(".pnpm/express@4.18.2/node_modules/express")

    # When it is zipped
    names = zipfile.ZipFile(io.BytesIO(zip_folder(build))).namelist()

    # Then the package is where node looks for it, as well as where pnpm keeps it
    assert "node_modules/express/index.js" in names
    assert "node_modules/.pnpm/express@4.18.2/node_modules/express/index.js" in names


@pytest.mark.parametrize(
    ("link", "target", "said"),
    [
        (
            "app/config.json",
            "../../shared/config.json",
            "app/config.json links to ../../shared/config.json, which does not exist",
        ),
        ("app/loop", "..", "app/loop links to a folder it is inside"),
    ],
    ids=["to nothing", "a loop"],
)
def test_a_link_that_cannot_be_zipped_whole_is_said_not_left_out(
    tmp_path: Path, link: str, target: str, said: str
) -> None:
    build = write_build(tmp_path / "build", mtime=1_700_000_000)
    (build / link).symlink_to(target)

    with pytest.raises(UnzippableFolder) as refused:
        zip_folder(build)

    assert str(refused.value).startswith(said)


def test_publish_zips_and_checks_a_bundle_without_the_local_cloud(tmp_path: Path) -> None:
    # Given a build the platform would refuse (its hook script is missing), so publish stops before AWS
    (tmp_path / "appspec.yml").write_text(APPSPEC)
    script = textwrap.dedent(
        f"""
        import sys
        from typer.testing import CliRunner
        import canaryfleet_cli.operate
        from canaryfleet_cli.main import app

        imported_by_module = {{name.split(".")[0] for name in sys.modules}}
        result = CliRunner().invoke(app, ["publish", "hello-app", "1.0.0", {str(tmp_path)!r}])
        print(result.exit_code)
        print("named in appspec.yml" in result.output)
        for name in ("canaryfleet_local", "moto", "samtranslator"):
            print(name, name in imported_by_module, name in {{n.split(".")[0] for n in sys.modules}})
        """
    )

    # When the publish command's module is imported and publish runs, in a fresh interpreter
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )

    # Then it refused the bundle by the runtime's checks, and neither step loaded the local cloud
    lines = result.stdout.split("\n")
    assert lines[:2] == ["1", "True"], result.stdout + result.stderr
    assert lines[2:5] == [
        "canaryfleet_local False False",
        "moto False False",
        "samtranslator False False",
    ]


def test_publish_says_which_link_it_cannot_zip_and_uploads_nothing(tmp_path: Path) -> None:
    build = write_build(tmp_path / "build", mtime=1_700_000_000)
    (build / "app/settings.py").symlink_to("/nonexistent/settings.py")

    result = CliRunner().invoke(app, ["publish", "hello-app", "1.0.0", str(build)])

    assert result.exit_code != 0
    assert "cannot zip" in result.output
    assert "app/settings.py links to /nonexistent/settings.py" in result.output
