"""Entry point: record the released revision as the application's last good one."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import FinalizeTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(BaseSettings)
    task = parse_event(FinalizeTask, event)
    return rollouts.finalize(settings)(task)
