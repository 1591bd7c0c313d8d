"""Entry point: a batch of the notifications queue -> Slack thread replies and final-outcome emails."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.logic.notify import Notifications, NotifyChannels
from canaryfleet.models.events import parse_event
from canaryfleet.models.notification import NoticeRecord
from canaryfleet.observability import entry_point
from canaryfleet.settings import NotifySettings, load_settings


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(NotifySettings)
    parse_event(SqsModel, event)  # not a batch of the queue at all: InvalidEvent, nothing told
    notifications = Notifications.once_each(
        NotifyChannels.from_settings(settings), settings.idempotency_table_name, context
    )

    def tell(record: NoticeRecord) -> dict[str, Any]:
        return notifications.handle(record.notice())

    # A notice that could not be told (or is malformed) comes back; after five tries it
    # waits in the dead-letter queue.
    processor = BatchProcessor(event_type=EventType.SQS, model=NoticeRecord)
    return dict(process_partial_response(event, tell, processor, context))
