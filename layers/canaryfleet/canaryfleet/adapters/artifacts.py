"""Artifact objects in the artifact bucket."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, cast

from botocore.exceptions import ClientError

from canaryfleet.adapters.clients import client
from canaryfleet.adapters.s3_range_reader import S3RangeReader, raise_if_not_found
from canaryfleet.models.artifact import ArtifactRef

if TYPE_CHECKING:  # the stubs are a development dependency: the layer does not ship them
    from mypy_boto3_s3.type_defs import HeadObjectRequestTypeDef


class ArtifactStore(abc.ABC):
    @abc.abstractmethod
    def metadata(self, artifact: ArtifactRef) -> dict[str, str]:
        """User metadata of the exact object version (``x-amz-meta-*`` without the prefix)."""

    @abc.abstractmethod
    def open(self, artifact: ArtifactRef) -> contextlib.AbstractContextManager[BinaryIO]:
        """The bundle as a seekable binary file, read on demand (never downloaded whole)."""


class S3ArtifactStore(ArtifactStore):
    def metadata(self, artifact: ArtifactRef) -> dict[str, str]:
        kwargs: HeadObjectRequestTypeDef = {"Bucket": artifact.bucket, "Key": artifact.key}
        if artifact.version_id:
            kwargs["VersionId"] = artifact.version_id
        try:
            response = client("s3").head_object(**kwargs)
        except ClientError as exc:
            raise_if_not_found(exc, f"s3://{artifact.bucket}/{artifact.key}")
            raise
        return {str(k).lower(): str(v) for k, v in response.get("Metadata", {}).items()}

    @contextlib.contextmanager
    def open(self, artifact: ArtifactRef) -> Iterator[BinaryIO]:
        reader = S3RangeReader(artifact.bucket, artifact.key, artifact.version_id)
        try:
            yield cast(BinaryIO, reader)
        finally:
            reader.close()
