"""Entry point: S3 "Object Created" on the artifact bucket (EventBridge) -> one rollout, or a rejection."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import StartRolloutSettings, load_settings
from canaryfleet.wiring.start_rollout import start_rollout


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(StartRolloutSettings)
    upload = parse_event(S3EventNotificationEventBridgeModel, event)
    return start_rollout(settings)(upload).model_dump(exclude_none=True)
