"""Entry point: the drain document ended on an instance (SSM Run Command): verify its logs, end the drain."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.logic.drain import Drains
from canaryfleet.logic.drain_complete import complete_drain
from canaryfleet.models.drain import CommandInvocationEvent
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import DrainDispatchSettings, load_settings


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(DrainDispatchSettings)
    detail = parse_event(CommandInvocationEvent, event).detail
    drains = Drains.on_aws(settings)
    return complete_drain(detail, drains, datetime.now(UTC)).model_dump(mode="json", exclude_none=True)
