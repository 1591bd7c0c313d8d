"""Entry point: every target of the canary target group must be healthy."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import VerifyTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    settings = load_settings(BaseSettings)
    task = parse_event(VerifyTask, event)
    return rollouts.verify_canary(settings)(task)
