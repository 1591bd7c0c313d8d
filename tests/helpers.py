"""Shared test helpers: sample events and handler modules, loaded from the repository."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    EventBridgeModel,
    S3EventNotificationEventBridgeModel,
)
from canaryfleet.models.calendar import WindowCheckTask, WindowHoldTask
from canaryfleet.models.decision import Decision
from canaryfleet.models.notification import NoticeBatch
from canaryfleet.models.rollout import RecordStageRequest
from canaryfleet.models.tasks import (
    AlarmCheckTask,
    AlarmStateChange,
    AnalyseTask,
    ApprovalTask,
    BakeTask,
    CheckDeploymentTask,
    ColorTask,
    DeploymentStateChange,
    DeployRequest,
    ExecutionStatusChange,
    FinalizeTask,
    QueueTask,
    ReleaseTask,
    RollbackTask,
    ShiftTask,
    VerifyTask,
)
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"
FUNCTIONS = REPO / "functions"
STATE_MACHINES = REPO / "statemachines"


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, e.g. ``load_event("start_rollout/object_created")``."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def load_handler(function: str) -> ModuleType:
    """The handler module of functions/<function>/app.py (every function's file is app.py)."""
    spec = importlib.util.spec_from_file_location(f"handler_{function}", FUNCTIONS / function / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeContext:
    """The Lambda context attributes Powertools reads."""

    function_name = "test-function"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def without_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3 finds no credentials for the rest of the test: none in the environment, no files, no IMDS."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def ci_script(name: str) -> ModuleType:
    """A script of ``.ci/`` (not a package) loaded as a module, so its functions can be tested."""
    spec = importlib.util.spec_from_file_location(name, REPO / ".ci" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The rollout functions' events: function folder -> (model of the whole event, model of an
# EventBridge event's detail), as each handler parses them.
EVENT_MODELS: dict[str, tuple[type[BaseModel], type[BaseModel] | None]] = {
    "start_rollout": (S3EventNotificationEventBridgeModel, None),
    "record_stage": (RecordStageRequest, None),
    "queue_rollout": (QueueTask, None),
    "release_turn": (ReleaseTask, None),
    "deploy": (DeployRequest, None),
    "deployment_event": (EventBridgeModel, DeploymentStateChange),
    "execution_ended": (EventBridgeModel, ExecutionStatusChange),
    "check_deployment": (CheckDeploymentTask, None),
    "verify_canary": (VerifyTask, None),
    "color": (ColorTask, None),
    "shift_traffic": (ShiftTask, None),
    "bake": (BakeTask, None),
    "check_alarms": (AlarmCheckTask, None),
    "alarm_event": (EventBridgeModel, AlarmStateChange),
    "analyse": (AnalyseTask, None),
    "request_approval": (ApprovalTask, None),
    "decide": (Decision, None),
    "finalize": (FinalizeTask, None),
    "record_rollback": (RollbackTask, None),
    "notify": (NoticeBatch, None),
    "check_window": (WindowCheckTask, None),
    "hold_for_window": (WindowHoldTask, None),
}


def logical_id(folder: str) -> str:
    """A function's logical id in template.yaml: ``queue_rollout`` -> ``QueueRolloutFunction``."""
    return "".join(part.title() for part in folder.split("_")) + "Function"


_MAIN_THEN = """
import atexit, os, sys
atexit.register(lambda: print({shown}))
sys.argv = ["canaryfleet", "--version"]
from canaryfleet_cli.main import main
main()
"""


def after_cli_main(shown: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``canaryfleet --version`` in a new process and print ``shown`` (Python expressions, as
    print's arguments) at its exit: what ``canaryfleet_cli.main.main`` set up before any command."""
    return subprocess.run(
        [sys.executable, "-c", _MAIN_THEN.format(shown=shown)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


class ForgetsTheFirstDeploymentId:
    """Mixed into a rollout store (in memory or DynamoDB): its first write of a deployment's id
    fails, as a write throttled past its retries does, after CreateDeployment succeeded."""

    failures = 1

    def remember_deployment(self, rollout_id: str, purpose: str, deployment_id: str, group: str) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("ProvisionedThroughputExceededException, after 5 attempts")
        super().remember_deployment(rollout_id, purpose, deployment_id, group)  # type: ignore[misc]


def a_load_balancer(ec2: Any, elbv2: Any, default_action: dict[str, Any]) -> tuple[str, str, str]:
    """On moto: a VPC with two subnets, an Application Load Balancer named "shared" in it, and an
    HTTP listener on port 80 with ``default_action``. Its VPC id, ARN and listener's ARN."""
    region = ec2.meta.region_name
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"{region}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for n, zone in ((1, "a"), (2, "b"))
    ]
    balancer = elbv2.create_load_balancer(Name="shared", Subnets=subnets, Type="application")[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    listener = elbv2.create_listener(
        LoadBalancerArn=balancer, Protocol="HTTP", Port=80, DefaultActions=[default_action]
    )["Listeners"][0]["ListenerArn"]
    return str(vpc), str(balancer), str(listener)
