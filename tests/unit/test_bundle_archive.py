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

from canaryfleet.logic.bundle import validate_bundle
from canaryfleet.logic.bundle.archive import zip_folder

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
