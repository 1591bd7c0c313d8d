"""Entry point: wait for a person's decision (task token): store the wait, ask the approvers."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic.approval import ApprovalChannels, request_approval
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import ApprovalTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import RequestApprovalSettings, load_settings


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(RequestApprovalSettings)
    task = parse_event(ApprovalTask, event)
    store = DynamoRolloutStore(settings.state_table_name)
    notifier = SnsNotifier(settings.notification_topic_arn)
    channels = ApprovalChannels.from_settings(settings)
    return {"approval": request_approval(task, store, notifier, StepFunctionsCallbacks(), channels)}
