"""Entry point: a batch of the drain queue (up to 50 instances) -> one SendCommand of the drain document."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.logic.drain_dispatch import dispatch_drains
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import DrainQueueDispatchSettings, load_settings
from canaryfleet.wiring.drains import drain_dispatch_service


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(DrainQueueDispatchSettings)
    batch = parse_event(SqsModel, event)
    drains, redelivery = drain_dispatch_service(settings)
    outcome = dispatch_drains(batch, drains, redelivery)
    # Messages whose command could not be sent come back (in seconds); the others are deleted.
    return dict(process_partial_response(event, outcome.check, BatchProcessor(EventType.SQS), context))
