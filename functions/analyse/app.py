"""Entry point: judge canary against live over the bake: pass, fail or inconclusive, with numbers."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.fleet import Metrics
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.logic.canary import analyse
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import AnalyseTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import RecordStageSettings, load_settings


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(RecordStageSettings)
    task = parse_event(AnalyseTask, event)
    store = DynamoRolloutStore(settings.state_table_name)
    notifier = SnsNotifier(settings.notification_topic_arn)
    verdict = analyse(task.app, task.rollout_id, task.version, task.analysis, store, Metrics(), notifier)
    return {"result": verdict.result, "reasons": verdict.reasons}
