"""The local cloud's S3 takes 2 KB of user-defined metadata and refuses one byte more, as AWS does.

"Within the PUT request header, the user-defined metadata is limited to 2 KB in size. The size of
user-defined metadata is measured by taking the sum of the number of bytes in the UTF-8 encoding of
each key and value" (Amazon S3 User Guide, "Working with object metadata"). Over it S3 answers 400
``MetadataTooLarge`` and stores nothing. src/canaryfleet_local/FIDELITY.md lists the sources.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.handlers import validate_ascii_metadata

from canaryfleet_cli.operate import metadata_refusal
from canaryfleet_local.standins.s3 import S3UserMetadataLimit
from tests.integration.helpers import moto_account

REGION: Final = "eu-west-1"
BUCKET = "artifacts"
LIMIT = 2_048


@pytest.fixture
def s3() -> Iterator[Any]:
    with moto_account(REGION), S3UserMetadataLimit().installed():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def refused(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return (
        str(response["Error"]["Code"]),
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
        str(response["Error"]["Message"]),
    )


def exists(s3: Any, key: str) -> bool:
    try:
        s3.head_object(Bucket=BUCKET, Key=key)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "404"
        return False
    return True


def filling(limit: int, key: str = "commit") -> dict[str, str]:
    """One key whose value brings the metadata to ``limit`` bytes."""
    return {key: "f" * (limit - len(key))}


METADATA_TOO_LARGE = (
    "MetadataTooLarge",
    400,
    "Your metadata headers exceed the maximum allowed metadata size.",
)


def test_put_object_takes_2_kb_of_user_metadata_and_refuses_one_byte_more(s3: Any) -> None:
    # Given metadata of exactly 2,048 bytes, keys and values together, PutObject keeps it
    s3.put_object(Bucket=BUCKET, Key="app/1.zip", Body=b"zip", Metadata=filling(LIMIT))
    assert s3.head_object(Bucket=BUCKET, Key="app/1.zip")["Metadata"] == filling(LIMIT)

    # When it is one byte more
    code = refused(s3.put_object, Bucket=BUCKET, Key="app/2.zip", Body=b"zip", Metadata=filling(LIMIT + 1))

    # Then S3 refuses it with MetadataTooLarge, and keeps no object
    assert code == METADATA_TOO_LARGE
    assert not exists(s3, "app/2.zip")


def test_a_refused_put_leaves_the_object_it_would_have_replaced(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="app/1.zip", Body=b"first", Metadata={"commit": "9fceb02d"})

    code = refused(s3.put_object, Bucket=BUCKET, Key="app/1.zip", Body=b"second", Metadata=filling(LIMIT + 1))

    assert code == METADATA_TOO_LARGE
    kept = s3.get_object(Bucket=BUCKET, Key="app/1.zip")
    assert (kept["Body"].read(), kept["Metadata"]) == (b"first", {"commit": "9fceb02d"})


def test_keys_count_as_s3_stores_them_lower_cased_without_the_x_amz_meta_prefix(s3: Any) -> None:
    # Given keys in capitals, each sent as an x-amz-meta- header whose prefix is not counted
    metadata = {"Commit": "9fceb02d", "Build-URL": "https://ci.example.com/" + "x" * 2_002}
    assert sum(len(k) + len(v) for k, v in metadata.items()) == LIMIT

    # When they fill 2 KB exactly, they are kept, under the keys S3 stores: lower case
    s3.put_object(Bucket=BUCKET, Key="app/1.zip", Body=b"zip", Metadata=metadata)
    stored = s3.head_object(Bucket=BUCKET, Key="app/1.zip")["Metadata"]
    assert stored == {k.lower(): v for k, v in metadata.items()}

    # And one byte more is refused
    longer = {**metadata, "Commit": "9fceb02da"}
    assert refused(s3.put_object, Bucket=BUCKET, Key="app/2.zip", Body=b"zip", Metadata=longer) == (
        METADATA_TOO_LARGE
    )


def test_s3_counts_user_metadata_in_utf8_bytes_not_characters(s3: Any) -> None:
    # Given a client that sends UTF-8 metadata as the REST API takes it (botocore refuses
    # non-ASCII metadata before sending it; another SDK or a raw PUT does not)
    s3.meta.events.unregister("before-parameter-build.s3.PutObject", validate_ascii_metadata)
    at_limit = {"k": "\u00e9" * 1_023 + "x"}  # 1 + 2,046 + 1 bytes: 2,048 bytes, 1,025 characters
    over = {"k": "\u00e9" * 1_024}  # 1 + 2,048 bytes: 2,049 bytes, 1,025 characters
    sizes = [S3UserMetadataLimit.size({f"x-amz-meta-{k}": v for k, v in m.items()}) for m in (at_limit, over)]
    assert sizes == [LIMIT, LIMIT + 1]

    # When both have the same number of characters, the one of 2,048 bytes is kept
    s3.put_object(Bucket=BUCKET, Key="app/1.zip", Body=b"zip", Metadata=at_limit)

    # Then the one of 2,049 bytes is refused, as S3 measures bytes
    code = refused(s3.put_object, Bucket=BUCKET, Key="app/2.zip", Body=b"zip", Metadata=over)
    assert code == METADATA_TOO_LARGE
    assert not exists(s3, "app/2.zip")
    # A euro sign is three bytes, a four-byte character four
    assert S3UserMetadataLimit.size({"x-amz-meta-k": "\u20ac\U0001f680", "Content-Type": "x"}) == 8


def test_create_multipart_upload_takes_2_kb_of_user_metadata_and_refuses_one_byte_more(s3: Any) -> None:
    # Given the metadata a multipart upload gives its object, 2 KB of it starts the upload
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="app/1.zip", Metadata=filling(LIMIT))
    assert upload["UploadId"]

    # When it is one byte more, S3 refuses it and starts no upload
    code = refused(s3.create_multipart_upload, Bucket=BUCKET, Key="app/2.zip", Metadata=filling(LIMIT + 1))

    assert code == METADATA_TOO_LARGE
    uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert [u["Key"] for u in uploads] == ["app/1.zip"]
    assert not exists(s3, "app/2.zip")


def test_copy_object_replacing_the_metadata_takes_2_kb_and_refuses_one_byte_more(s3: Any) -> None:
    # Given an object with small metadata
    s3.put_object(Bucket=BUCKET, Key="app/1.zip", Body=b"zip", Metadata={"commit": "9fceb02d"})
    source = {"Bucket": BUCKET, "Key": "app/1.zip"}

    # When a copy replaces its metadata with 2 KB, S3 makes the copy
    s3.copy_object(
        Bucket=BUCKET,
        Key="app/2.zip",
        CopySource=source,
        MetadataDirective="REPLACE",
        Metadata=filling(LIMIT),
    )
    assert s3.head_object(Bucket=BUCKET, Key="app/2.zip")["Metadata"] == filling(LIMIT)

    # Then with one byte more it is refused, to another key or in place, and nothing changes
    for key in ("app/3.zip", "app/1.zip"):
        code = refused(
            s3.copy_object,
            Bucket=BUCKET,
            Key=key,
            CopySource=source,
            MetadataDirective="REPLACE",
            Metadata=filling(LIMIT + 1),
        )
        assert code == METADATA_TOO_LARGE
    assert not exists(s3, "app/3.zip")
    assert s3.head_object(Bucket=BUCKET, Key="app/1.zip")["Metadata"] == {"commit": "9fceb02d"}


@pytest.mark.parametrize("extra", [0, 1], ids=["2 KB", "one byte more"])
def test_publish_refuses_exactly_the_metadata_s3_refuses(s3: Any, extra: int) -> None:
    # Given publish's metadata: the longest commit start_rollout keeps, and a build URL
    commit = "f" * 128
    url = "https://ci.example.com/" + "x" * (LIMIT + extra - len("commit") - 128 - len("build-url") - 23)
    metadata = {"commit": commit, "build-url": url}

    # When publish checks it before uploading, and S3 is given it
    said = metadata_refusal(metadata)
    try:
        s3.put_object(Bucket=BUCKET, Key="app/1.zip", Body=b"zip", Metadata=metadata)
        s3_refused = False
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "MetadataTooLarge"
        s3_refused = True

    # Then publish refuses exactly what S3 refuses
    assert (said is not None) == s3_refused == bool(extra)
