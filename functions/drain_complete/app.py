"""Entry point: the drain document ended on an instance (SSM Run Command): verify its logs, end the drain."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.logic.drain_complete import complete_drain
from canaryfleet.models.drain import CommandInvocationEvent
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import DrainDispatchSettings, load_settings
from canaryfleet.wiring.drains import drain_complete_service


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(DrainDispatchSettings)
    detail = parse_event(CommandInvocationEvent, event).detail
    result = complete_drain(detail, drain_complete_service(settings))
    return result.model_dump(mode="json", exclude_none=True)
