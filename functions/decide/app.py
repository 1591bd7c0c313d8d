"""Entry point: approve, reject, abort or promote the running rollout of an application."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.decision import OperatorDecision
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import DecideSettings, load_settings
from canaryfleet.wiring import approvals


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(DecideSettings)
    decision = parse_event(OperatorDecision, event)
    return approvals.decide(settings)(decision).model_dump()
