"""Entry point: the Slack app's signed requests (Approve and Reject buttons, /canaryfleet commands)."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import SlackAppSettings, load_settings
from canaryfleet.wiring.slack_app import slack_app


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(SlackAppSettings)
    # Not an HTTP API request at all: nothing to answer, so a typed error, before any AWS call.
    parse_event(APIGatewayProxyEventV2Model, event)
    return slack_app(settings).resolve(event, context)
