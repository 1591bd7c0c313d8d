"""Entry point: one step of a blue/green release's colors (choose, empty, bring up, check, scale down)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import ColorTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point(correlation_id_path="ref.rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(BaseSettings)
    task = parse_event(ColorTask, event)
    return rollouts.color(settings)(task)
