"""Entry point: create a CodeDeploy deployment and wait for its end through the task token."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import DeployRequest
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(BaseSettings)
    request = parse_event(DeployRequest, event)
    return {"deployment_id": rollouts.deploy(settings)(request)}
