"""Entry point: wait for the calendar: store the token; a calendar change, an override or an abort ends it."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.calendar import WindowHoldTask
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings
from canaryfleet.wiring import calendar


@entry_point(correlation_id_path="ref.rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(BaseSettings)
    task = parse_event(WindowHoldTask, event)
    return {"hold": calendar.hold_for_window(settings)(task)}
