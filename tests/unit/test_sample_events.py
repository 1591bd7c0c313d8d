"""Every function has sample events (events/<function>/) and each parses with the model its handler uses."""

import json
from typing import Any

import pytest
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import AlarmStateChange
from pydantic import ValidationError

from canaryfleet_local.parsing import parse_template
from tests.helpers import EVENT_MODELS, EVENTS, REPO, load_event

MODELS = EVENT_MODELS
TEMPLATE: dict[str, Any] = parse_template((REPO / "template.yaml").read_text())
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


@pytest.mark.parametrize(
    "function", ["deploy", "bake", "request_approval", "queue_rollout", "hold_for_window"]
)
def test_task_tokens_never_appear_in_a_models_repr(function: str) -> None:
    sample = next((EVENTS / function).glob("*.json"))
    parsed = parse_event(MODELS[function][0], json.loads(sample.read_text()))

    assert "AQCEAAAA" not in repr(parsed)


def test_an_alarm_state_with_a_field_of_a_new_type_still_parses_and_its_read_fields_are_checked() -> None:
    detail = load_event("alarm_event/alarm")["detail"]
    # A non-string field CloudWatch may add to the state one day: the ALARM must still end the bake.
    later = {
        **detail,
        "state": {**detail["state"], "evaluatedDatapoints": [{"value": 7.2}], "suppressed": False},
    }

    change = AlarmStateChange.model_validate(later)

    assert change.state["value"] == "ALARM" and "evaluatedDatapoints" not in change.state
    with pytest.raises(ValidationError):
        AlarmStateChange.model_validate({**detail, "state": {**detail["state"], "value": None}})
