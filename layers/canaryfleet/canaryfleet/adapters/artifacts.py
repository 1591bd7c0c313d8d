"""Artifact objects in the artifact bucket."""

from __future__ import annotations

import abc

from canaryfleet.adapters.clients import client
from canaryfleet.models.artifact import ArtifactRef


class ArtifactStore(abc.ABC):
    @abc.abstractmethod
    def metadata(self, artifact: ArtifactRef) -> dict[str, str]:
        """User metadata of the exact object version (``x-amz-meta-*`` without the prefix)."""


class S3ArtifactStore(ArtifactStore):
    def metadata(self, artifact: ArtifactRef) -> dict[str, str]:
        kwargs = {"Bucket": artifact.bucket, "Key": artifact.key}
        if artifact.version_id:
            kwargs["VersionId"] = artifact.version_id
        response = client("s3").head_object(**kwargs)
        return {str(k).lower(): str(v) for k, v in response.get("Metadata", {}).items()}
