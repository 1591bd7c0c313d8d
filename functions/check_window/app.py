"""Entry point: may a guarded step (the canary, going live) run now, or until when does it wait?"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.calendar import WindowCheckTask
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings
from canaryfleet.wiring import calendar


@entry_point(correlation_id_path="ref.rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(BaseSettings)
    task = parse_event(WindowCheckTask, event)
    return calendar.check_window(settings)(task).model_dump()
