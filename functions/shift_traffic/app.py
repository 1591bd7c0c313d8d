"""Entry point: set the canary and live weights on the application's listener rule."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.fleet import Traffic
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.logic.canary import shift_traffic
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import ShiftTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import RecordStageSettings, load_settings


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    settings = load_settings(RecordStageSettings)
    task = parse_event(ShiftTask, event)
    store = DynamoRolloutStore(settings.state_table_name)
    notifier = SnsNotifier(settings.notification_topic_arn) if task.notify else None
    return shift_traffic(
        task.app, task.rollout_id, task.version, task.weight, task.seq, Traffic(), store, notifier
    )
