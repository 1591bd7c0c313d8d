"""Entry point: a batch of the notifications queue -> Slack thread replies and final-outcome emails."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.notification import NoticeRecord
from canaryfleet.observability import entry_point
from canaryfleet.settings import NotifySettings, load_settings
from canaryfleet.wiring.notify import notify_service


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(NotifySettings)
    parse_event(SqsModel, event)  # not a batch of the queue at all: InvalidEvent, nothing told
    notifications = notify_service(settings, context)
    # A notice that could not be told (or is malformed) comes back; after five tries it
    # waits in the dead-letter queue.
    processor = BatchProcessor(event_type=EventType.SQS, model=NoticeRecord)
    return dict(process_partial_response(event, notifications.tell, processor, context))
