"""The artifact bucket refuses uploads the fleet could not read, and the local cloud with it.

template.yaml's ArtifactBucketPolicy denies PutObject with SSE-KMS (or DSSE-KMS) or an SSE-C key:
neither CodeDeploy's agent (the instance role) nor StartRolloutFunction may decrypt them. moto
enforces a bucket policy but ignores its Conditions; ``S3UploadEncryptionDenies`` evaluates these
as IAM does. src/canaryfleet_local/FIDELITY.md lists the sources.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from typing import Any, Final

import boto3
import pytest
from botocore.exceptions import ClientError

from canaryfleet_local.parsing import parse_template
from canaryfleet_local.standins.s3 import CloudFormationBucketPolicy, S3UploadEncryptionDenies
from tests.helpers import REPO
from tests.integration.helpers import moto_account

REGION: Final = "eu-west-1"
BUCKET = "artifacts"
ACCOUNT = "123456789012"


def _resolved(value: Any) -> Any:
    """The template's policy with the bucket's ARN in place of its GetAtt and Sub."""
    arn = f"arn:aws:s3:::{BUCKET}"
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return arn
        if "Fn::Sub" in value:
            return value["Fn::Sub"].replace("${ArtifactBucket.Arn}", arn)
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    return value


@pytest.fixture
def s3() -> Iterator[Any]:
    template = parse_template((REPO / "template.yaml").read_text())
    document = _resolved(template["Resources"]["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"])
    with moto_account(REGION), S3UploadEncryptionDenies().installed():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        CloudFormationBucketPolicy.create_resource(
            "Policy", {"Bucket": BUCKET, "PolicyDocument": document}, ACCOUNT, REGION
        )
        yield client


def _customer_key() -> dict[str, str]:
    key = os.urandom(32)
    return {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": base64.b64encode(key).decode(),
        "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode(),
    }


def _exists(s3: Any, key: str) -> bool:
    return bool(s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount"))


@pytest.mark.parametrize(
    "asked", [{}, {"ServerSideEncryption": "AES256"}], ids=["the bucket's default", "SSE-S3 named"]
)
def test_an_upload_the_fleet_can_read_is_stored(s3: Any, asked: dict[str, str]) -> None:
    s3.put_object(Bucket=BUCKET, Key="orders-api/1.4.2.zip", Body=b"PK", **asked)

    assert _exists(s3, "orders-api/1.4.2.zip")


@pytest.mark.parametrize(
    "asked",
    [
        {"ServerSideEncryption": "aws:kms"},
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/ci"},
        {"ServerSideEncryption": "aws:kms:dsse"},
        "customer key",
    ],
    ids=["SSE-KMS", "SSE-KMS with a key", "DSSE-KMS", "SSE-C"],
)
def test_an_upload_encrypted_so_the_fleet_cannot_read_it_is_refused_and_not_stored(
    s3: Any, asked: dict[str, str] | str
) -> None:
    extra = _customer_key() if asked == "customer key" else asked
    assert isinstance(extra, dict)

    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=BUCKET, Key="orders-api/1.4.2.zip", Body=b"PK", **extra)

    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert not _exists(s3, "orders-api/1.4.2.zip")


def test_a_multipart_upload_is_refused_or_taken_at_its_creation_as_a_put_is(s3: Any) -> None:
    with pytest.raises(ClientError) as refused:
        s3.create_multipart_upload(Bucket=BUCKET, Key="orders-api/2.0.0.zip", ServerSideEncryption="aws:kms")
    taken = s3.create_multipart_upload(Bucket=BUCKET, Key="orders-api/2.0.0.zip")

    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert taken["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])] == [
        taken["UploadId"]
    ]


def test_a_bucket_policy_condition_the_local_cloud_cannot_evaluate_is_refused_not_ignored() -> None:
    # moto would enforce the statement without its condition: every upload from outside the VPC
    # endpoint would be denied, or none, whatever the request
    document = {
        "Statement": [
            {
                "Sid": "OnlyFromTheVpcEndpoint",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/*",
                "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
            }
        ]
    }

    with pytest.raises(ValueError, match="cannot enforce bucket policy statement 'OnlyFromTheVpcEndpoint'"):
        CloudFormationBucketPolicy.enforceable(document)
