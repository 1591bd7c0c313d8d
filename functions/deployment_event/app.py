"""Entry point: a CodeDeploy deployment state change ends the rollout's wait for it."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.fleet import CodeDeploy
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic.deployments import DeploymentStateChange, on_deployment_event
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(BaseSettings)
    detail = parse_event(DeploymentStateChange, parse_event(EventBridgeModel, event).detail)
    store = DynamoRolloutStore(settings.state_table_name)
    result = on_deployment_event(detail, store, CodeDeploy(), StepFunctionsCallbacks())
    return {"deployment_id": detail.deployment_id, "result": result}
