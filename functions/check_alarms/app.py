"""Entry point: after a bake, and before going live, a canary alarm in ALARM rolls back."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import AlarmCheckTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point(correlation_id_path="ref.rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(BaseSettings)
    task = parse_event(AlarmCheckTask, event)
    return rollouts.check_alarms(settings)(task)
