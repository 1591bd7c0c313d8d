"""Entry point: wait for a person's decision (task token): store the wait, ask the approvers."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import ApprovalTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import RequestApprovalSettings, load_settings
from canaryfleet.wiring import approvals


@entry_point(correlation_id_path="rollout_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(RequestApprovalSettings)
    task = parse_event(ApprovalTask, event)
    return {"approval": approvals.request_approval(settings)(task)}
