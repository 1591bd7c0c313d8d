"""Entry point: a rollout state machine task that records a stage it entered."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.rollout import RecordStageRequest
from canaryfleet.observability import entry_point
from canaryfleet.settings import RecordStageSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(RecordStageSettings)
    request = parse_event(RecordStageRequest, event)
    return rollouts.record_stage(settings)(request).model_dump(mode="json")
