"""The wiring check: an upload reaches start_rollout, which runs the rollout state machine."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud, LocalCloudError


@dataclass
class WiringReport:
    """What one upload caused, in order."""

    application: str
    version: str
    bucket: str
    key: str
    object_version: str | None
    invoked: list[str] = field(default_factory=list)
    execution: str | None = None
    status: str | None = None
    states_entered: list[str] = field(default_factory=list)
    rollout_record: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "SUCCEEDED"


def run_wiring_check(
    application: str = "hello-app",
    version: str = "1.0.0",
    timeout: float = 30.0,
    parameters: dict[str, str] | None = None,
) -> WiringReport:
    """Upload the sample bundle to a fresh local cloud and follow it to the end of its rollout."""
    started = time.monotonic()
    with LocalCloud(parameters=parameters) as cloud:
        bucket = cloud.output("ArtifactBucketName")
        key = f"{application}/{version}.zip"
        put = cloud.client("s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=bundle(),
            Metadata={"commit": "0" * 40, "build-url": "https://ci.example.com/job/hello-app/1"},
        )
        report = WiringReport(application, version, bucket, key, put.get("VersionId"))
        cloud.wait_idle(timeout)
        report.invoked = [i.logical_id for i in cloud.runtime.invocations]
        executions = cloud.executions("RolloutStateMachine")
        if len(executions) != 1:
            raise LocalCloudError(f"expected one rollout execution, found {len(executions)}")
        record = cloud.wait_for_execution(executions[0], timeout)
        report.invoked = [i.logical_id for i in cloud.runtime.invocations]
        report.execution = record.name
        report.status = record.status
        report.states_entered = record.states_entered
        items = cloud.client("dynamodb").query(
            TableName=cloud.output("StateTableName"),
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"APP#{application}"}},
        )["Items"]
        report.rollout_record = {k: next(iter(v.values())) for item in items for k, v in item.items()}
    report.seconds = round(time.monotonic() - started, 2)
    return report
