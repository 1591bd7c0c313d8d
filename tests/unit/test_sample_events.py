"""Every function has sample events (events/<function>/) and each parses with the model its handler uses."""

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    EventBridgeModel,
    S3EventNotificationEventBridgeModel,
)
from canaryfleet.logic.decisions import Decision
from canaryfleet.logic.deployments import DeploymentStateChange, DeployRequest
from canaryfleet.models.events import parse_event
from canaryfleet.models.notification import NoticeBatch
from canaryfleet.models.rollout import RecordStageRequest
from canaryfleet.models.tasks import (
    AlarmStateChange,
    AnalyseTask,
    ApprovalTask,
    BakeTask,
    CheckDeploymentTask,
    FinalizeTask,
    QueueTask,
    ReleaseTask,
    RollbackTask,
    ShiftTask,
    VerifyTask,
)
from pydantic import BaseModel
from samtranslator.yaml_helper import yaml_parse

from tests.helpers import EVENTS, REPO

# function folder -> (model of the whole event, model of an EventBridge event's detail)
MODELS: dict[str, tuple[type[BaseModel], type[BaseModel] | None]] = {
    "start_rollout": (S3EventNotificationEventBridgeModel, None),
    "record_stage": (RecordStageRequest, None),
    "queue_rollout": (QueueTask, None),
    "release_turn": (ReleaseTask, None),
    "deploy": (DeployRequest, None),
    "deployment_event": (EventBridgeModel, DeploymentStateChange),
    "check_deployment": (CheckDeploymentTask, None),
    "verify_canary": (VerifyTask, None),
    "shift_traffic": (ShiftTask, None),
    "bake": (BakeTask, None),
    "alarm_event": (EventBridgeModel, AlarmStateChange),
    "analyse": (AnalyseTask, None),
    "request_approval": (ApprovalTask, None),
    "decide": (Decision, None),
    "finalize": (FinalizeTask, None),
    "record_rollback": (RollbackTask, None),
    "notify": (NoticeBatch, None),
}
TEMPLATE: dict[str, Any] = yaml_parse((REPO / "template.yaml").read_text())
ROLLOUT_FUNCTIONS = sorted(MODELS)


def test_every_rollout_function_of_the_template_is_covered_here() -> None:
    folders = {
        r["Properties"]["CodeUri"].strip("/").split("/")[-1]
        for r in TEMPLATE["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    }

    assert set(MODELS) <= folders


@pytest.mark.parametrize("function", ROLLOUT_FUNCTIONS)
def test_each_sample_event_parses_with_its_handlers_model(function: str) -> None:
    samples = sorted((EVENTS / function).glob("*.json"))
    model, detail_model = MODELS[function]

    assert samples, f"events/{function}/ has no sample event"
    for sample in samples:
        parsed = parse_event(model, json.loads(sample.read_text()))
        if detail_model is not None:
            parse_event(detail_model, parsed.detail)  # type: ignore[attr-defined]


@pytest.mark.parametrize("function", ["deploy", "bake", "request_approval", "queue_rollout"])
def test_task_tokens_never_appear_in_a_models_repr(function: str) -> None:
    sample = next((EVENTS / function).glob("*.json"))
    parsed = parse_event(MODELS[function][0], json.loads(sample.read_text()))

    assert "AQCEAAAA" not in repr(parsed)
