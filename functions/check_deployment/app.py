"""Entry point: a deployment wait timed out: read the deployment's real status once."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.fleet import CodeDeploy
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.logic.deployments import check_after_timeout
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import CheckDeploymentTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(BaseSettings)
    task = parse_event(CheckDeploymentTask, event)
    store = DynamoRolloutStore(settings.state_table_name)
    return check_after_timeout(task.rollout_id, task.purpose, store, CodeDeploy())
