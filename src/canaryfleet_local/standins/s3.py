"""S3: "Object Created" events to EventBridge as AWS sends them, the 2 KB limit on user-defined
metadata, bucket policies from templates, and their denies on an upload's encryption."""

from __future__ import annotations

import contextlib
import inspect
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, cast
from unittest import mock

from moto.core.common_models import CloudFormationModel
from moto.events.models import events_backends
from moto.events.utils import EventMessageType
from moto.s3 import notifications as s3_notifications
from moto.s3.exceptions import S3AccessDeniedError, S3ClientError
from moto.s3.models import S3Backend, s3_backends
from moto.s3.responses import S3Response
from moto.s3.utils import metadata_from_headers

from canaryfleet_local.standins.cloudformation import CloudFormationStandIn
from canaryfleet_local.standins.iam_policy import condition_holds, wildcard_match

_S3_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}


class S3EventBridgeNotifications:
    """Stands in for S3's EventBridge notifications.

    moto sends ``eTag`` where AWS sends ``etag``, a ``reason`` of ``ObjectCreated`` where AWS
    sends ``PutObject``, and a numeric ``time``. This sends the event AWS documents
    (Amazon S3 User Guide, "EventBridge message structure") for object creation and
    deletion, to the default bus, as S3 does.
    """

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def event_for(
        self, account_id: str, region: str, event_name: str, bucket: str, key: Any
    ) -> dict[str, Any]:
        created = event_name.startswith("s3:ObjectCreated")
        obj: dict[str, Any] = {"key": key.name, "sequencer": f"{time.time_ns():X}"}
        if created:
            obj.update({"size": key.size, "etag": key.etag.replace('"', "")})
        if key.version_id and key.version_id != "null":
            obj["version-id"] = key.version_id
        detail: dict[str, Any] = {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": _S3_REASONS.get(event_name, "DeleteObject"),
        }
        if not created:
            detail["deletion-type"] = "Permanently Deleted"
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Object Created" if created else "Object Deleted",
            "source": "aws.s3",
            "account": account_id,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": detail,
        }

    def send(self, account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        if not (event_name.startswith("s3:ObjectCreated") or event_name.startswith("s3:ObjectRemoved")):
            return
        event = self.event_for(account_id, bucket.region_name, event_name, bucket.name, key)
        self.sent.append(event)
        default_bus = events_backends[account_id][bucket.region_name].event_buses.get("default")
        if default_bus is None:
            return
        for rule in list(default_bus.rules.values()):
            if rule.state == "ENABLED":
                rule.send_to_targets(cast(EventMessageType, event), transform_input=True)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        with mock.patch.object(s3_notifications, "_send_event_bridge_message", self.send):
            yield


class MetadataTooLargeError(S3ClientError):
    """S3's answer to user-defined metadata over 2 KB: 400 ``MetadataTooLarge``, as the Amazon S3
    API Reference lists it ("Error responses", List of error codes:
    https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList)."""

    def __init__(self) -> None:
        super().__init__(
            "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size."
        )


class S3UserMetadataLimit:
    """Stands in for S3's 2 KB limit on an object's user-defined metadata, which moto does not check.

    "Within the PUT request header, the user-defined metadata is limited to 2 KB in size. The size
    of user-defined metadata is measured by taking the sum of the number of bytes in the UTF-8
    encoding of each key and value" (Amazon S3 User Guide, "Working with object metadata":
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingMetadata.html). Over it S3 answers
    400 ``MetadataTooLarge`` and stores nothing. Here three requests are refused so, before moto
    keeps an object or an upload: PutObject; CopyObject with ``MetadataDirective`` REPLACE, a PUT
    too, and the way to change an object's metadata ("Editing object metadata in the Amazon S3
    console", which makes that copy: "User-defined metadata can be as large as 2 KB total"); and
    CreateMultipartUpload, the one request that gives a multipart upload's object its metadata
    ("Uploading and copying objects using multipart upload"). A copy that keeps its source's
    metadata (COPY) brings none of its own.

    A key counts as S3 stores it ("Amazon S3 stores user-defined metadata keys in lowercase"):
    without the REST API's ``x-amz-meta-`` prefix, which SOAP requests never carried while the limit
    held for both ("For both REST and SOAP requests to Amazon S3, user metadata size is limited to
    2k bytes for the total length of all values and keys", Amazon S3 Developer Guide 2006-03-01). A
    value counts in the bytes it was sent in (an RFC 2047 encoded value in its encoded form, as moto
    keeps it). Not played: browser-based POST uploads.
    """

    LIMIT_BYTES = 2_048
    PREFIX = "x-amz-meta-"

    @classmethod
    def size(cls, metadata: Mapping[str, Any]) -> int:
        """Bytes of the user-defined metadata among ``metadata`` (moto's headers: other system
        metadata, such as Content-Type, is left out)."""
        return sum(
            len(key.lower().removeprefix(cls.PREFIX).encode()) + len(str(value).encode())
            for key, value in metadata.items()
            if key.lower().startswith(cls.PREFIX)
        )

    @classmethod
    def check(cls, metadata: Mapping[str, Any]) -> None:
        if cls.size(metadata) > cls.LIMIT_BYTES:
            raise MetadataTooLargeError()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        put_object = S3Response.put_object
        copy_object = S3Backend.copy_object
        create_multipart_upload = S3Backend.create_multipart_upload
        copy_signature = inspect.signature(copy_object)
        multipart_signature = inspect.signature(create_multipart_upload)
        check = S3UserMetadataLimit.check

        def put_object_within_the_limit(response: S3Response) -> Any:
            # moto keeps the object before it reads the metadata, so the metadata is read here first.
            metadata = metadata_from_headers(response.headers)
            metadata.update(metadata_from_headers(response.querystring))
            check(metadata)
            return put_object(response)

        def copy_object_within_the_limit(backend: S3Backend, *args: Any, **kwargs: Any) -> Any:
            given = copy_signature.bind(backend, *args, **kwargs).arguments
            if str(given.get("mdirective") or "COPY").upper() == "REPLACE":
                check(given.get("metadata") or {})
            return copy_object(backend, *args, **kwargs)

        def create_multipart_upload_within_the_limit(backend: S3Backend, *args: Any, **kwargs: Any) -> Any:
            check(multipart_signature.bind(backend, *args, **kwargs).arguments.get("metadata") or {})
            return create_multipart_upload(backend, *args, **kwargs)

        with (
            mock.patch.object(S3Response, "put_object", put_object_within_the_limit),
            mock.patch.object(S3Backend, "copy_object", copy_object_within_the_limit),
            mock.patch.object(S3Backend, "create_multipart_upload", create_multipart_upload_within_the_limit),
        ):
            yield


def policy_statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A policy document's statements: its Statement is one statement or a list of them."""
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


# Bucket name -> the policy document the template declared (see CloudFormationBucketPolicy).
CLOUDFORMATION_BUCKET_POLICIES: dict[str, dict[str, Any]] = {}


class CloudFormationBucketPolicy(CloudFormationStandIn, CloudFormationModel):
    """Stands in for the ``AWS::S3::BucketPolicy`` resource, which moto's CloudFormation skips.

    moto resolves the properties (Ref, GetAtt, Sub) before handing them over. moto's S3
    enforces a bucket policy but ignores its Conditions, so a TLS-only statement (deny when
    ``aws:SecureTransport`` is false) would deny every request; such statements are left out
    of what moto enforces (every local request uses an https endpoint, where AWS would not
    deny either) and kept, with the rest, in ``document``.
    """

    RESOURCE_TYPE = "AWS::S3::BucketPolicy"
    ON_UPDATE = "rewritten"

    @staticmethod
    def _denies_only_insecure_transport(statement: dict[str, Any]) -> bool:
        condition = statement.get("Condition", {})
        return statement.get("Effect") == "Deny" and condition == {"Bool": {"aws:SecureTransport": "false"}}

    @classmethod
    def enforceable(cls, document: dict[str, Any]) -> dict[str, Any]:
        """What moto may enforce itself: statements without a Condition (it ignores them). A
        statement on the upload's encryption headers is S3UploadEncryptionDenies' to evaluate;
        any other condition would be enforced wrong, so it is refused here."""
        statements = policy_statements(document)
        kept = []
        for statement in statements:
            if cls._denies_only_insecure_transport(statement) or S3UploadEncryptionDenies.evaluates(
                statement
            ):
                continue
            if statement.get("Condition"):
                raise ValueError(
                    f"the local cloud cannot enforce bucket policy statement {statement.get('Sid')!r}:"
                    " moto ignores its Condition"
                )
            kept.append(statement)
        return {**document, "Statement": kept}

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        bucket = props["Bucket"]
        document = props["PolicyDocument"]
        enforced = cls.enforceable(document)
        if enforced["Statement"]:
            s3_backends[account_id]["global"].put_bucket_policy(bucket, json.dumps(enforced).encode())
        CLOUDFORMATION_BUCKET_POLICIES[bucket] = document
        return cls(bucket)

    @classmethod
    def delete_resource(cls, physical_id: str, props: dict[str, Any], account_id: str, region: str) -> None:
        bucket = props["Bucket"]
        with contextlib.suppress(Exception):
            s3_backends[account_id]["global"].delete_bucket_policy(bucket)


class S3UploadEncryptionDenies:
    """Stands in for S3 evaluating a bucket policy's Deny on an upload's encryption headers, which
    moto cannot: it enforces a bucket policy but ignores its Conditions, so such a Deny would
    refuse every upload (CloudFormationBucketPolicy hands it here instead).

    A Deny statement of a CloudFormation bucket policy for ``s3:PutObject`` whose conditions are
    all on ``s3:x-amz-server-side-encryption`` or ``s3:x-amz-server-side-encryption-customer-
    algorithm`` is evaluated against PutObject's and CreateMultipartUpload's request headers of the
    same names (S3's condition keys for PutObject, which also authorises CreateMultipartUpload:
    Service Authorization Reference, "Actions, resources, and condition keys for Amazon S3"). When
    every condition holds, the request is refused with 403 ``AccessDenied`` and nothing is stored:
    an explicit deny overrides any allow (IAM User Guide, "Policy evaluation logic"). The IAM rules
    played ("IAM JSON policy elements: Condition operators"): the operators of a condition block
    must all hold; ``Null`` "true" holds when the key is absent, "false" when present;
    ``StringEquals`` holds when the key is present with one of the values; ``StringNotEquals``
    holds when it is present with none of them, and when it is absent ("If the policy condition
    requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right key
    is not present, the condition is true").
    """

    # Each condition key and the request header it reads.
    KEYS: ClassVar[dict[str, str]] = {
        key: key.removeprefix("s3:")
        for key in ("s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-customer-algorithm")
    }
    OPERATORS = frozenset({"Null", "StringEquals", "StringNotEquals"})

    @classmethod
    def evaluates(cls, statement: dict[str, Any]) -> bool:
        """Whether ``statement`` is one this stand-in evaluates (an upload Deny on encryption keys)."""
        condition = statement.get("Condition") or {}
        actions = statement.get("Action")
        return (
            statement.get("Effect") == "Deny"
            and actions in ("s3:PutObject", ["s3:PutObject"])
            and bool(condition)
            and set(condition) <= cls.OPERATORS
            and all(set(keys) <= set(cls.KEYS) for keys in condition.values())
        )

    @classmethod
    def denies(cls, document: Mapping[str, Any], bucket: str, key: str, headers: Mapping[str, str]) -> bool:
        statements = policy_statements(document)
        arn = f"arn:aws:s3:::{bucket}/{key}"
        for statement in statements:
            if not cls.evaluates(statement):
                continue
            resources = statement.get("Resource", [])
            resources = resources if isinstance(resources, list) else [resources]
            if not any(wildcard_match(str(r), arn) for r in resources):
                continue
            sent = {name: headers.get(header) for name, header in cls.KEYS.items()}
            if all(
                condition_holds(operator, expected, sent[name])
                for operator, keys in statement["Condition"].items()
                for name, expected in keys.items()
            ):
                return True
        return False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        put_object = S3Response.put_object
        key_response_post = S3Response._key_response_post
        denies = S3UploadEncryptionDenies.denies

        def refuse_if_denied(bucket: str, key: str, headers: Mapping[str, str]) -> None:
            document = CLOUDFORMATION_BUCKET_POLICIES.get(bucket)
            if document is not None and denies(document, bucket, key, headers):
                raise S3AccessDeniedError()

        def put_object_unless_denied(response: S3Response) -> Any:
            refuse_if_denied(response.bucket_name, response.parse_key_name(), response.headers)
            return put_object(response)

        def key_response_post_unless_denied(
            response: S3Response,
            request: Any,
            body: bytes,
            bucket_name: str,
            query: dict[str, Any],
            key_name: str,
        ) -> Any:
            if body == b"" and "uploads" in query:  # CreateMultipartUpload
                refuse_if_denied(bucket_name, key_name, request.headers)
            return key_response_post(response, request, body, bucket_name, query, key_name)

        with (
            mock.patch.object(S3Response, "put_object", put_object_unless_denied),
            mock.patch.object(S3Response, "_key_response_post", key_response_post_unless_denied),
        ):
            yield
