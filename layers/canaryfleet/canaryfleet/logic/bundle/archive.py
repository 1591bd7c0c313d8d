"""A folder zipped the same way every time: what `canaryfleet publish` uploads, and what the local
cloud packages. Nothing here needs the local cloud, moto or samtranslator, so a CI agent that only
publishes installs the runtime and the CLI.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

# Zip timestamps start in 1980; one fixed stamp makes the same folder give the same bytes (and the
# same S3 ETag) on every machine and every checkout, whatever the files' modification times.
_FIXED_STAMP = (1980, 1, 1, 0, 0, 0)
_SKIPPED = frozenset({"__pycache__"})
# An empty folder's entry: a folder for unzip (the mode) and for Windows tools (the MS-DOS
# directory attribute). One mode, not the folder's own, so that the umask of the machine that made
# it does not change the bytes: CodeDeploy's agent makes the installed folder itself (installer.rb
# generate_directory_copy, mkdir), so the mode in the zip only shapes its unpacked copy.
_FOLDER_ATTRIBUTES = (stat.S_IFDIR | 0o755) << 16 | 0x10


class UnzippableFolder(ValueError):
    """A folder that cannot be zipped whole: a link to nothing, or a folder link that loops."""


def zip_folder(folder: Path) -> bytes:
    """The folder's files as a zip: sorted POSIX names, fixed times, each file's permission bits,
    and an entry ("name/") for each empty folder.

    Permission bits are kept because CodeDeploy and Lambda both honour an executable bit set in
    the zip; owners and times are not. An empty folder is kept because an appspec may install it
    (files: source logs/), which CodeDeploy's agent does as `zip -r` bundles have it: without its
    entry the folder is not in the bundle. A folder that holds only skipped ones counts as empty.
    Links are followed, as `zip -r` follows them: a linked file or folder is zipped as what it
    links to (pnpm's node_modules/<package> links into node_modules/.pnpm). A link to nothing,
    or to a folder it is inside, raises UnzippableFolder rather than leave part of the build out.
    """
    entries: dict[str, Path | None] = {}  # name in the zip -> the file, or None for an empty folder
    chains: dict[str, frozenset[str]] = {str(folder): frozenset({os.path.realpath(folder)})}
    for root, dirs, files in os.walk(folder, followlinks=True, onerror=_unreadable):
        here = Path(root)
        chain = chains.pop(root)
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED)
        for name in dirs:
            real = os.path.realpath(here / name)
            if real in chain:
                relative = (here / name).relative_to(folder).as_posix()
                raise UnzippableFolder(
                    f"{relative} links to a folder it is inside ({real}): it would never end"
                )
            chains[os.path.join(root, name)] = chain | {real}  # noqa: PTH118 (os.walk's own name)
        kept = [here / name for name in files if name not in _SKIPPED]
        for path in kept:
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink() and not path.exists():
                raise UnzippableFolder(f"{relative} links to {path.readlink()}, which does not exist")
            if path.is_file():
                entries[relative] = path
        if here != folder and not dirs and not any(path.is_file() for path in kept):
            entries[here.relative_to(folder).as_posix() + "/"] = None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            entry = zipfile.ZipInfo(name, date_time=_FIXED_STAMP)
            found = entries[name]
            if found is None:
                entry.external_attr = _FOLDER_ATTRIBUTES
                entry.file_size = entry.compress_size = entry.CRC = 0
                archive.mkdir(entry)
                continue
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = (stat.S_IFREG | stat.S_IMODE(found.stat().st_mode)) << 16
            archive.writestr(entry, found.read_bytes())
    return buffer.getvalue()


def _unreadable(error: OSError) -> None:
    raise UnzippableFolder(f"{error.filename}: {error.strerror}") from error
