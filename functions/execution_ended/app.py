"""Entry point: a rollout whose execution ended where no rollback path ran gets a recovery."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import ExecutionStatusChange
from canaryfleet.observability import entry_point
from canaryfleet.settings import RolloutWorkflowSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(RolloutWorkflowSettings)
    ended = parse_event(ExecutionStatusChange, parse_event(EventBridgeModel, event).detail)
    return {"execution_arn": ended.execution_arn, "result": rollouts.execution_ended(settings)(ended)}
