"""Entry point: every target of the canary target group must be healthy."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.fleet import Traffic
from canaryfleet.logic.canary import verify_canary
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import VerifyTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    load_settings(BaseSettings)
    task = parse_event(VerifyTask, event)
    return verify_canary(task.app, Traffic())
