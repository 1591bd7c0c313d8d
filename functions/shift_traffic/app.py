"""Entry point: set the canary and live weights on the application's listener rule."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import ShiftTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import RecordStageSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    settings = load_settings(RecordStageSettings)
    task = parse_event(ShiftTask, event)
    return rollouts.shift_traffic(settings)(task)
