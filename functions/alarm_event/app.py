"""Entry point: a CloudWatch alarm going to ALARM ends the bake of the canary it watches."""

from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic.canary import on_alarm
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import AlarmStateChange
from canaryfleet.observability import logger, metrics, tracer
from canaryfleet.settings import AlarmEventSettings, load_settings


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(AlarmEventSettings)
    envelope = parse_event(EventBridgeModel, event)
    detail = parse_event(AlarmStateChange, envelope.detail)
    store = DynamoRolloutStore(settings.state_table_name)

    def handle(state_change: dict[str, Any]) -> dict[str, str]:
        result = on_alarm(detail.alarm_name, detail.state, SsmRegistry(), store, StepFunctionsCallbacks())
        return {"result": result}

    # EventBridge delivers at least once: a state change seen again (same event id) has no
    # second effect, and gets the first delivery's answer.
    config = IdempotencyConfig(event_key_jmespath="id", expires_after_seconds=86_400)
    config.register_lambda_context(context)
    once = idempotent_function(
        data_keyword_argument="state_change",
        persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name),
        config=config,
    )(handle)
    answer: dict[str, str] = once(state_change={"id": envelope.id})
    return answer
