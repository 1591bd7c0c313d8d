"""Entry point: judge canary against live over the bake: pass, fail or inconclusive, with numbers."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import AnalyseTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import RecordStageSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(RecordStageSettings)
    task = parse_event(AnalyseTask, event)
    verdict = rollouts.analyse(settings)(task)
    return {"result": verdict.result, "reasons": verdict.reasons}
