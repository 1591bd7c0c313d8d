"""BASELINE, never shipped: the polling rollout (polling_rollout.asl.json) on a local cloud.

The state machine runs on the same moto Step Functions interpreter as canaryfleet's rollout;
its steps are small Lambda functions (polling_rollout_steps.py) that the local cloud runs
in-process like canaryfleet's own;
its approval is an SQS message with a task token, answered by :class:`PollingApprover`.
Its bundles go to a bucket of their own, so that no upload starts a canaryfleet rollout.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from canaryfleet.models.app_config import AppConfig

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.standins.lambda_ import FunctionCode

BASELINE_DIR = Path(__file__).parent
DEFINITION = BASELINE_DIR / "polling_rollout.asl.json"
STEPS_MODULE = BASELINE_DIR / "polling_rollout_steps.py"
NAME = "canaryfleet-bench-polling-rollout"
# Handler in polling_rollout_steps.py -> its placeholder in the definition.
STEP_FUNCTIONS = {
    "start_deployment": "StartDeploymentFunctionArn",
    "get_deployment": "GetDeploymentFunctionArn",
    "check_alarms": "CheckAlarmsFunctionArn",
    "set_weight": "SetWeightFunctionArn",
}
# States that only repeat while a deployment runs: leaving them is the reaction to its end.
POLL_STATES = frozenset(
    f"{verb} {side} deployment{tail}"
    for side in ("canary", "live")
    for verb, tail in (("Wait before polling the", ""), ("Get", ""), ("Is the", " done"))
)
WEIGHT_TO_ZERO_ON_ROLLBACK = "Roll back canary traffic"


@dataclass(frozen=True)
class PollingRollout:
    """The installed baseline: its state machine, approval queue and artifact bucket."""

    state_machine_arn: str
    approval_queue_url: str
    bucket: str


@dataclass(frozen=True)
class PollingTimings:
    poll_seconds: int
    bake_seconds: int
    approval_timeout_seconds: int
    weight: int


def _role_arn(cloud: LocalCloud, service: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": f"{service}.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = cloud.client("iam").create_role(
        RoleName=f"{NAME}-{service}", AssumeRolePolicyDocument=json.dumps(trust)
    )
    return str(role["Role"]["Arn"])


def _steps_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(STEPS_MODULE, STEPS_MODULE.name)
    return buffer.getvalue()


def _install_step_functions(cloud: LocalCloud) -> dict[str, str]:
    """One Lambda function per step handler; returns the definition's substitutions."""
    role = _role_arn(cloud, "lambda")
    code = _steps_zip()
    substitutions = {}
    for handler, placeholder in STEP_FUNCTIONS.items():
        name = f"{NAME}-{handler.replace('_', '-')}"
        function = cloud.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler=f"{STEPS_MODULE.stem}.{handler}",
            Code={"ZipFile": code},
            Timeout=30,
            MemorySize=256,
        )
        logical_id = "Polling" + "".join(part.title() for part in handler.split("_")) + "Function"
        cloud.runtime.register(name, FunctionCode(logical_id, BASELINE_DIR, f"{STEPS_MODULE.stem}.{handler}"))
        substitutions[placeholder] = str(function["FunctionArn"])
    return substitutions


def install_polling_rollout(cloud: LocalCloud) -> PollingRollout:
    """Create the baseline's state machine, weight function, approval queue and bucket."""
    substitutions = _install_step_functions(cloud)
    queue_url = str(cloud.client("sqs").create_queue(QueueName=f"{NAME}-approvals")["QueueUrl"])
    substitutions["ApprovalQueueUrl"] = queue_url
    bucket = f"{NAME}-artifacts"
    cloud.client("s3").create_bucket(Bucket=bucket)
    definition = DEFINITION.read_text()
    for placeholder, value in substitutions.items():
        definition = definition.replace("${" + placeholder + "}", value)
    machine = cloud.client("stepfunctions").create_state_machine(
        name=NAME, definition=definition, roleArn=_role_arn(cloud, "states"), type="STANDARD"
    )
    return PollingRollout(str(machine["stateMachineArn"]), queue_url, bucket)


def start_polling_rollout(
    cloud: LocalCloud,
    baseline: PollingRollout,
    app: AppConfig,
    version: str,
    bundle: bytes,
    timings: PollingTimings,
) -> str:
    """Upload the bundle to the baseline's bucket and start its execution; returns the execution ARN."""
    key = f"{app.application}/{version}.zip"
    cloud.client("s3").put_object(Bucket=baseline.bucket, Key=key, Body=bundle)
    state = {
        "application": app.application,
        "version": version,
        "codedeploy_application": app.codedeploy_application,
        "canary_group": app.canary.deployment_group,
        "live_group": app.live.deployment_group,
        "bucket": baseline.bucket,
        "key": key,
        "listener_rule_arn": app.listener_rule_arn,
        "canary_target_group_arn": app.canary.target_group_arn,
        "live_target_group_arn": app.live.target_group_arn,
        "canary_alarms": list(app.canary.alarms),
        "poll_seconds": timings.poll_seconds,
        "bake_seconds": timings.bake_seconds,
        "approval_timeout_seconds": timings.approval_timeout_seconds,
        "weight": timings.weight,
    }
    execution = cloud.client("stepfunctions").start_execution(
        stateMachineArn=baseline.state_machine_arn,
        name=f"{app.application}-{version.replace('.', '_')}",
        input=json.dumps(state),
    )
    return str(execution["executionArn"])


class PollingApprover:
    """The approver of the baseline: answers each approval request ``decide_seconds`` after it came."""

    _POLL_SECONDS = 0.1

    def __init__(self, cloud: LocalCloud, baseline: PollingRollout, decide_seconds: float) -> None:
        self._sqs = cloud.client("sqs")
        self._sfn = cloud.client("stepfunctions")
        self._queue_url = baseline.approval_queue_url
        self._decide_seconds = decide_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="polling-approver", daemon=True)
        self._timers: list[threading.Timer] = []
        self.answered = 0

    def __enter__(self) -> PollingApprover:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for timer in self._timers:
            timer.cancel()

    def _run(self) -> None:
        while not self._stop.wait(self._POLL_SECONDS):
            messages = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            for message in messages:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
                timer = threading.Timer(self._decide_seconds, self._approve, (json.loads(message["Body"]),))
                timer.daemon = True
                self._timers.append(timer)
                timer.start()

    def _approve(self, request: dict[str, Any]) -> None:
        if self._stop.is_set():
            return
        self._sfn.send_task_success(taskToken=request["token"], output=json.dumps({"approved": True}))
        self.answered += 1
