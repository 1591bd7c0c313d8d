"""A seekable, read-only file over one S3 object, served by ranged GETs.

zipfile reads an archive from its end: the end-of-central-directory record, then the
central directory, then one member's local header and data. The first request here is a
suffix range that returns the object's size and its tail (where the directory usually
is); later reads fetch whole blocks, kept in a small LRU cache. Judging a 500 MB bundle's
directory then costs a few requests and well under a megabyte; a large read (the bundle check
reads the zip forward in 4 MiB pieces) is one GET, kept out of the cache.
"""

from __future__ import annotations

import errno
import io
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.errors import ArtifactNotFound, TransientAwsError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef

DEFAULT_BLOCK_SIZE = 128 * 1024
DEFAULT_MAX_BLOCKS = 64

_TRANSIENT_CODES = frozenset({"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"})
# The object or its version is not there. S3 answers so (404) only to a caller that may also
# s3:ListBucket; to others it answers 403 AccessDenied (GetObject's permissions), which stays
# an error: it may as well be a missing grant.
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})


def raise_if_not_found(exc: ClientError, name: str) -> None:
    """:class:`ArtifactNotFound` for S3's answer that the object or its version is not there."""
    if error_code(exc) in _NOT_FOUND_CODES:
        raise ArtifactNotFound(f"{name}: {error_code(exc)}") from exc


class S3RangeReader(io.RawIOBase):
    """Read ``s3://bucket/key`` (one version) like a local binary file, without downloading it.

    ``requests`` and ``bytes_fetched`` count the GETs made and the body bytes they returned.
    Without ``version_id`` every request after the first carries the first one's ETag as
    ``If-Match``, so an object overwritten mid-read fails (412) instead of mixing two
    versions. Network failures and S3 throttling or 5xx, after botocore's own retries,
    raise :class:`TransientAwsError`; a missing object or version (NoSuchKey, NoSuchVersion)
    raises :class:`ArtifactNotFound`; other S3 errors (AccessDenied) propagate.
    """

    def __init__(
        self,
        bucket: str,
        key: str,
        version_id: str | None = None,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        max_blocks: int = DEFAULT_MAX_BLOCKS,
    ) -> None:
        super().__init__()
        if block_size < 1 or max_blocks < 1:
            raise ValueError("block_size and max_blocks must be positive")
        self.bucket = bucket
        self.key = key
        self.version_id = version_id
        self.name = f"s3://{bucket}/{key}"
        self.requests = 0
        self.bytes_fetched = 0
        self._block_size = block_size
        self._max_blocks = max_blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._pos = 0
        self._size: int | None = None
        self._tail = b""
        self._etag: str | None = None

    # --- file protocol ---------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._pos + offset
        elif whence == io.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if position < 0:
            # OSError, as a real file raises: zipfile probes for ZIP64 records by seeking
            # before the start of short files and expects exactly this.
            raise OSError(errno.EINVAL, "negative seek position", self.name)
        self._pos = position
        return position

    def read(self, size: int = -1, /) -> bytes:
        self._check_open()
        end = self.size if size < 0 else min(self.size, self._pos + size)
        if end <= self._pos:
            return b""
        data = self._read_range(self._pos, end)
        self._pos = end
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        self._blocks.clear()
        self._tail = b""
        super().close()

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    @property
    def size(self) -> int:
        """The object's size in bytes (the first call fetches the object's tail)."""
        if self._size is None:
            self._load_tail()
        assert self._size is not None
        return self._size

    # --- fetching ----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _load_tail(self) -> None:
        try:
            response, body = self._get(f"bytes=-{self._block_size}")
        except ClientError as exc:
            if error_code(exc) != "InvalidRange":
                raise
            # S3 cannot satisfy a suffix range of an empty object (416).
            self._size, self._tail = 0, b""
            return
        content_range = response.get("ContentRange")
        # Without Content-Range the answer is the whole object (200), as moto gives for empty ones.
        self._size = int(str(content_range).rsplit("/", 1)[1]) if content_range else len(body)
        self._tail = body
        self._etag = response.get("ETag")

    def _read_range(self, start: int, end: int) -> bytes:
        tail_start = self.size - len(self._tail)
        parts: list[bytes] = []
        if start < tail_start:
            parts.append(self._read_blocks(start, min(end, tail_start)))
        if end > tail_start:
            parts.append(self._tail[max(start, tail_start) - tail_start : end - tail_start])
        return b"".join(parts)

    def _read_blocks(self, start: int, end: int) -> bytes:
        first, last = start // self._block_size, (end - 1) // self._block_size
        if last - first + 1 > self._max_blocks // 4:
            # A large read (a pass over the whole zip) is one GET, kept out of the cache: it would
            # push out the directory's blocks, which the next look at the zip reads again.
            return self._fetch_range(start, end)
        found: dict[int, bytes] = {}
        missing: list[int] = []
        for index in range(first, last + 1):
            block = self._blocks.get(index)
            if block is None:
                missing.append(index)
            else:
                self._blocks.move_to_end(index)
                found[index] = block
        for run in _contiguous_runs(missing):
            found.update(self._fetch_blocks(run[0], run[-1]))
        joined = b"".join(found[index] for index in range(first, last + 1))
        offset = first * self._block_size
        return joined[start - offset : end - offset]

    def _fetch_range(self, start: int, end: int) -> bytes:
        _, body = self._get(f"bytes={start}-{end - 1}")
        if len(body) != end - start:
            raise TransientAwsError(f"{self.name}: asked for bytes {start}-{end - 1}, got {len(body)} bytes")
        return body

    def _fetch_blocks(self, first: int, last: int) -> dict[int, bytes]:
        """One GET for blocks ``first..last``; they are cached, oldest blocks evicted."""
        begin = first * self._block_size
        end = min((last + 1) * self._block_size, self.size) - 1
        _, body = self._get(f"bytes={begin}-{end}")
        if len(body) != end - begin + 1:
            raise TransientAwsError(f"{self.name}: asked for bytes {begin}-{end}, got {len(body)} bytes")
        blocks: dict[int, bytes] = {}
        for index in range(first, last + 1):
            at = (index - first) * self._block_size
            blocks[index] = body[at : at + self._block_size]
            self._blocks[index] = blocks[index]
            self._blocks.move_to_end(index)
        while len(self._blocks) > self._max_blocks:
            self._blocks.popitem(last=False)
        return blocks

    def _get(self, byte_range: str) -> tuple[dict[str, Any], bytes]:
        kwargs: GetObjectRequestTypeDef = {"Bucket": self.bucket, "Key": self.key, "Range": byte_range}
        if self.version_id:
            kwargs["VersionId"] = self.version_id
        elif self._etag:
            kwargs["IfMatch"] = self._etag
        self.requests += 1
        try:
            response = client("s3").get_object(**kwargs)
            body: bytes = response["Body"].read()
        except BotoCoreError as exc:
            raise TransientAwsError(f"{self.name} ({byte_range}): {exc}") from exc
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if status >= 500 or error_code(exc) in _TRANSIENT_CODES:
                raise TransientAwsError(f"{self.name} ({byte_range}): {exc}") from exc
            raise_if_not_found(exc, self.name)
            raise
        self.bytes_fetched += len(body)
        return cast("dict[str, Any]", response), body


def _contiguous_runs(indexes: list[int]) -> list[list[int]]:
    """[1, 2, 3, 7, 8] -> [[1, 2, 3], [7, 8]]: each run is fetched with one request."""
    runs: list[list[int]] = []
    for index in indexes:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs
