"""Entry point: a rollout state machine task that records a stage it entered."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.logic.record_stage import record_stage
from canaryfleet.models.events import parse_event
from canaryfleet.models.rollout import RecordStageRequest
from canaryfleet.observability import entry_point
from canaryfleet.settings import RecordStageSettings, load_settings


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(RecordStageSettings)
    request = parse_event(RecordStageRequest, event)
    result = record_stage(
        request,
        store=DynamoRolloutStore(settings.state_table_name),
        notifier=SnsNotifier(settings.notification_topic_arn),
    )
    return result.model_dump(mode="json")
