"""S3: "Object Created" events to EventBridge as AWS sends them, and bucket policies from templates."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Self, cast
from unittest import mock

from moto.core.common_models import CloudFormationModel
from moto.events.models import events_backends
from moto.events.utils import EventMessageType
from moto.s3 import notifications as s3_notifications
from moto.s3.models import s3_backends

from canaryfleet_local.standins.cloudformation import CloudFormationStandIn

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
        statements = document.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        kept = [s for s in statements if not cls._denies_only_insecure_transport(s)]
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
