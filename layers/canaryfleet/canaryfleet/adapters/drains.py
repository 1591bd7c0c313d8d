"""What a drain does to AWS: instance tags, target groups, the drain queue, Run Command, the
termination hook and the log bucket, each a small class implementing its port
(``canaryfleet.ports.drains``)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.errors import InstancesNotReachable
from canaryfleet.models.drain import RUN_COMMAND_DELIVERY_SECONDS, DrainCheck, DrainOrder, LifecycleHookRef
from canaryfleet.observability import logger
from canaryfleet.ports.drains import MAX_INSTANCES_PER_COMMAND, InvocationRun, StoredObject

if TYPE_CHECKING:
    from mypy_boto3_ssm.type_defs import GetCommandInvocationResultTypeDef

# Run Command's delivery timeout (its minimum). An instance that cannot take the command within
# it may still be sent it until the command expires (this and the document's execution timeout:
# models.drain.delivery_window), then its invocation ends "DeliveryTimedOut" and the drain's
# completion records the loss.
DELIVERY_TIMEOUT_SECONDS = RUN_COMMAND_DELIVERY_SECONDS


class Ec2InstanceDirectory:
    def tags(self, instance_id: str) -> dict[str, str]:
        response = client("ec2").describe_tags(
            Filters=[
                {"Name": "resource-id", "Values": [instance_id]},
                {"Name": "resource-type", "Values": ["instance"]},
            ]
        )
        return {tag["Key"]: tag["Value"] for tag in response.get("Tags", [])}


class ElbTargetGroups:
    def deregister(self, target_group_arn: str, instance_id: str) -> bool:
        try:
            client("elbv2").deregister_targets(TargetGroupArn=target_group_arn, Targets=[{"Id": instance_id}])
        except ClientError as exc:
            if error_code(exc) == "InvalidTarget":
                return False
            raise
        return True

    def deregistration_delay(self, target_group_arn: str) -> int | None:
        # The attribute deregistration_delay.timeout_seconds, 0 to 3600 (ELB API Reference,
        # TargetGroupAttribute); read at each drain, as an operator may change it at any time.
        try:
            attributes = client("elbv2").describe_target_group_attributes(TargetGroupArn=target_group_arn)
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "target group's deregistration delay not read",
                extra={"target_group_arn": target_group_arn, "error": str(exc)},
            )
            return None
        for attribute in attributes.get("Attributes", []):
            if attribute.get("Key") == "deregistration_delay.timeout_seconds":
                value = attribute.get("Value", "")
                return int(value) if value.isdigit() else None
        return None


class SqsDrainQueue:
    def __init__(self, queue_url: str) -> None:
        self._url = queue_url

    def send(self, order: DrainOrder) -> None:
        client("sqs").send_message(QueueUrl=self._url, MessageBody=order.model_dump_json())

    def check_in(self, check: DrainCheck, seconds: int) -> None:
        # DelaySeconds: 0 to 900 (SQS API Reference, SendMessage).
        client("sqs").send_message(
            QueueUrl=self._url, MessageBody=check.model_dump_json(), DelaySeconds=max(0, min(900, seconds))
        )

    def redeliver_in(self, seconds: dict[str, int]) -> None:
        # ChangeMessageVisibilityBatch takes at most 10 entries (SQS API Reference).
        handles = list(seconds.items())
        for start in range(0, len(handles), 10):
            chunk = handles[start : start + 10]
            response = client("sqs").change_message_visibility_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": wait}
                    for index, (handle, wait) in enumerate(chunk)
                ],
            )
            for failed in response.get("Failed", []):
                logger.warning(
                    "drain order keeps its visibility timeout",
                    extra={"code": failed.get("Code"), "detail": failed.get("Message")},
                )


class SsmRunCommand:
    def send(
        self, document: str, instance_ids: list[str], parameters: dict[str, list[str]], comment: str
    ) -> str:
        if not 1 <= len(instance_ids) <= MAX_INSTANCES_PER_COMMAND:
            raise ValueError(f"a command serves 1 to {MAX_INSTANCES_PER_COMMAND} instances")
        try:
            response = client("ssm").send_command(
                DocumentName=document,
                InstanceIds=instance_ids,
                Parameters=parameters,
                Comment=comment[:100],
                TimeoutSeconds=DELIVERY_TIMEOUT_SECONDS,
                # Every instance at once, and one instance's failure never stops the others'.
                MaxConcurrency="100%",
                MaxErrors="100%",
            )
        except ClientError as exc:
            if error_code(exc) == "InvalidInstanceId":
                raise InstancesNotReachable(
                    f"Run Command cannot reach {len(instance_ids)} instance(s) starting {instance_ids[0]}"
                ) from None
            raise
        return str(response["Command"]["CommandId"])


def _started(invocation: GetCommandInvocationResultTypeDef) -> datetime | None:
    """botocore's ssm model, GetCommandInvocationResult.ExecutionStartDateTime: "The date and time
    the plugin started running. Date and time are written in ISO 8601 format. [...] If the plugin
    hasn't started to run, the string is empty." A string (StringDateTime), which botocore does not
    parse: one that does not read as a time is taken as not started."""
    text = str(invocation.get("ExecutionStartDateTime") or "").strip()
    if not text:
        return None
    try:
        started = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        logger.warning("unreadable ExecutionStartDateTime", extra={"value": text[:64]})
        return None
    return started if started.tzinfo is not None else started.replace(tzinfo=UTC)


class SsmCommandStatuses:
    def run(self, command_id: str, instance_id: str) -> InvocationRun | None:
        response = self._invocation(command_id, instance_id)
        if response is None:
            return None
        # botocore's ssm model requires no member of GetCommandInvocationResult: a Status left out
        # reads as none ("", not final: the check looks again), not as a KeyError.
        return InvocationRun(
            str(response.get("Status") or ""), str(response.get("StatusDetails") or ""), _started(response)
        )

    @staticmethod
    def _invocation(command_id: str, instance_id: str) -> GetCommandInvocationResultTypeDef | None:
        try:
            return client("ssm").get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        except ClientError as exc:
            if error_code(exc) == "InvocationDoesNotExist":
                return None
            raise


class AutoScalingLifecycleHooks:
    # Auto Scaling answers ValidationError when no lifecycle action is active for the token.
    _ENDED: ClassVar[frozenset[str]] = frozenset({"ValidationError"})

    def complete(self, hook: LifecycleHookRef, instance_id: str) -> bool:
        return self._call("complete_lifecycle_action", hook, instance_id, LifecycleActionResult="CONTINUE")

    def heartbeat(self, hook: LifecycleHookRef, instance_id: str) -> bool:
        return self._call("record_lifecycle_action_heartbeat", hook, instance_id)

    def _call(self, operation: str, hook: LifecycleHookRef, instance_id: str, **kwargs: Any) -> bool:
        """Call ``operation`` on the instance's lifecycle action; False if the action has ended."""
        try:
            getattr(client("autoscaling"), operation)(
                LifecycleHookName=hook.name,
                AutoScalingGroupName=hook.auto_scaling_group,
                LifecycleActionToken=hook.token,
                InstanceId=instance_id,
                **kwargs,
            )
        except ClientError as exc:
            if error_code(exc) in self._ENDED:
                return False
            raise
        return True


class S3LogObjects:
    _MISSING: ClassVar[frozenset[str]] = frozenset({"NoSuchKey", "404", "NotFound"})

    def read(self, bucket: str, key: str) -> bytes | None:
        try:
            response = client("s3").get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in self._MISSING:
                return None
            raise
        body: bytes = response["Body"].read()
        return body

    def describe(self, bucket: str, key: str) -> StoredObject | None:
        try:
            response = client("s3").head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if error_code(exc) in self._MISSING:
                return None
            raise
        checksum = response.get("ChecksumSHA256")
        # A multipart upload's checksum is a checksum of checksums ("...-<parts>"): not the file's.
        full = (
            checksum
            if checksum and "-" not in checksum and response.get("ChecksumType") != "COMPOSITE"
            else None
        )
        return StoredObject(
            size=int(response["ContentLength"]),
            sha256=base64.b64decode(full).hex() if full else None,
        )
