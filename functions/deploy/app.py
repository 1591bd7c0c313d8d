"""Entry point: create a CodeDeploy deployment and wait for its end through the task token."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.fleet import CodeDeploy
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic.deployments import DeployRequest, start_deployment
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(BaseSettings)
    request = parse_event(DeployRequest, event)
    store = DynamoRolloutStore(settings.state_table_name)
    deployment_id = start_deployment(request, store, CodeDeploy(), StepFunctionsCallbacks())
    return {"deployment_id": deployment_id}
