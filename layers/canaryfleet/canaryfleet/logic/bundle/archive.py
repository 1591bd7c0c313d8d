"""A folder zipped the same way every time: what `canaryfleet publish` uploads, and what the local
cloud packages. Nothing here needs the local cloud, moto or samtranslator, so a CI agent that only
publishes installs the runtime and the CLI.
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

# Zip timestamps start in 1980; one fixed stamp makes the same folder give the same bytes (and the
# same S3 ETag) on every machine and every checkout, whatever the files' modification times.
_FIXED_STAMP = (1980, 1, 1, 0, 0, 0)
_SKIPPED = frozenset({"__pycache__"})


def zip_folder(folder: Path) -> bytes:
    """The folder's files as a zip: sorted POSIX names, fixed times, each file's permission bits.

    Permission bits are kept because CodeDeploy and Lambda both honour an executable bit set in
    the zip; owners, times and empty folders are not kept.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*"), key=lambda found: found.relative_to(folder).as_posix()):
            if not path.is_file() or _SKIPPED.intersection(path.relative_to(folder).parts):
                continue
            entry = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_FIXED_STAMP)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = (stat.S_IFREG | stat.S_IMODE(path.stat().st_mode)) << 16
            archive.writestr(entry, path.read_bytes())
    return buffer.getvalue()
