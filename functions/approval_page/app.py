"""Entry point: the approval page (HTTP API). GET shows a signed link's approval; POST decides."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import ApprovalPageSettings, load_settings
from canaryfleet.wiring.approval_page import approval_page


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(ApprovalPageSettings)
    # Not an HTTP API request at all: nothing to answer, so a typed error, before any AWS call.
    parse_event(APIGatewayProxyEventV2Model, event)
    return approval_page(settings).resolve(event, context)
