"""Entry point: a CloudWatch alarm going to ALARM ends the bake of the canary it watches."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic.canary import on_alarm
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import AlarmStateChange
from canaryfleet.observability import logger, metrics, tracer
from canaryfleet.settings import BaseSettings, load_settings


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(BaseSettings)
    detail = parse_event(AlarmStateChange, parse_event(EventBridgeModel, event).detail)
    store = DynamoRolloutStore(settings.state_table_name)
    result = on_alarm(detail.alarm_name, detail.state, SsmRegistry(), store, StepFunctionsCallbacks())
    return {"result": result}
