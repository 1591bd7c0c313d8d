"""Uploaded bundles: their metadata and their bytes (S3 in production)."""

from __future__ import annotations

import contextlib
from typing import BinaryIO, Protocol

from canaryfleet.models.artifact import ArtifactRef


class ArtifactStore(Protocol):
    def metadata(self, artifact: ArtifactRef) -> dict[str, str]:
        """The object's user metadata (commit, build-url)."""
        ...

    def open(self, artifact: ArtifactRef) -> contextlib.AbstractContextManager[BinaryIO]:
        """The bundle's bytes, seekable, for the length of the ``with``."""
        ...
