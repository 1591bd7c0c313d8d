"""Entry point: a rollout that ended releases its application's lock; the next queued one starts."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import ReleaseTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(BaseSettings)
    task = parse_event(ReleaseTask, event)
    return {"next_rollout": rollouts.release_turn(settings)(task)}
