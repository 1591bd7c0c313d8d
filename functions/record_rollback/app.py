"""Entry point: stop this rollout's running deployments and record why it was rolled back."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import RollbackTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(BaseSettings)
    task = parse_event(RollbackTask, event)
    return rollouts.record_rollback(settings)(task)
