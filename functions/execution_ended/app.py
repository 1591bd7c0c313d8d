"""Entry point: a rollout whose execution ended where no rollback path ran gets a recovery; a
scheduled sweep puts right the locks whose owner ended without one."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import ExecutionStatusChange
from canaryfleet.observability import entry_point
from canaryfleet.settings import RolloutWorkflowSettings, load_settings
from canaryfleet.wiring import rollouts, sweep

# Every few minutes, for the ends whose status event never came (EventBridge delivers Step
# Functions' events best effort) and the locks an ended rollout could not release.
SWEEP = {"action": "sweep"}


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(RolloutWorkflowSettings)
    if event == SWEEP:  # the schedule's own input (RecoverySweep in template.yaml)
        return {"swept": sweep.sweep_locks(settings)()}
    ended = parse_event(ExecutionStatusChange, parse_event(EventBridgeModel, event).detail)
    return {"execution_arn": ended.execution_arn, "result": rollouts.execution_ended(settings)(ended)}
