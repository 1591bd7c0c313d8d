"""Entry point: a CloudWatch alarm going to ALARM ends the bake of the canary it watches."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import AlarmStateChange
from canaryfleet.observability import entry_point
from canaryfleet.settings import AlarmEventSettings, load_settings
from canaryfleet.wiring.alarm_event import alarm_event


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(AlarmEventSettings)
    envelope = parse_event(EventBridgeModel, event)
    detail = parse_event(AlarmStateChange, envelope.detail)
    return alarm_event(settings, context)(envelope.id, detail)
