"""Entry point: start a bake: store its token; an alarm, an abort, a promote or the timeout ends it."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.fleet import Metrics
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic.canary import begin_bake
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import BakeTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(BaseSettings)
    task = parse_event(BakeTask, event)
    store = DynamoRolloutStore(settings.state_table_name)
    return {
        "bake": begin_bake(task.app, task.rollout_id, task.token, store, Metrics(), StepFunctionsCallbacks())
    }
