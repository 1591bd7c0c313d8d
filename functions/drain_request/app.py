"""Entry point: an instance is leaving (hook, Spot warning, rebalance): deregister it, queue its drain."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.logic.drain_request import request_drain
from canaryfleet.models.drain import DrainEvent
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import DrainRequestSettings, load_settings
from canaryfleet.wiring.drains import drain_request_service


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(DrainRequestSettings)
    leaving = parse_event(DrainEvent, event)
    result = request_drain(leaving, drain_request_service(settings))
    return result.model_dump(mode="json", exclude_none=True)
