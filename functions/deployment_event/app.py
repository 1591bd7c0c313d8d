"""Entry point: a CodeDeploy deployment state change ends the rollout's wait for it."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import DeploymentStateChange
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(BaseSettings)
    detail = parse_event(DeploymentStateChange, parse_event(EventBridgeModel, event).detail)
    result = rollouts.deployment_event(settings)(detail)
    return {"deployment_id": detail.deployment_id, "result": result}
