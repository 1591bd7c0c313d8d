"""Entry point: approve, reject, abort or promote the running rollout of an application."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic.decisions import Decision, decide
from canaryfleet.models.events import parse_event
from canaryfleet.observability import logger, metrics, tracer
from canaryfleet.settings import BaseSettings, load_settings


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(BaseSettings)
    decision = parse_event(Decision, event)
    result = decide(decision, DynamoRolloutStore(settings.state_table_name), StepFunctionsCallbacks())
    return result.model_dump()
