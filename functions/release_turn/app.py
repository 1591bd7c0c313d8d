"""Entry point: a rollout that ended releases its application's lock; the next queued one starts."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic.queue import release_turn
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import ReleaseTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, load_settings


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(BaseSettings)
    task = parse_event(ReleaseTask, event)
    store = DynamoRolloutStore(settings.state_table_name)
    started = release_turn(task.application, task.execution_arn, store, StepFunctionsCallbacks())
    return {"next_rollout": started}
