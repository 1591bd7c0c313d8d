"""Entry point: an approval's time is up (expiry state machine): mark it expired unless decided."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.approval import ExpireApprovalTask
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import SlackAppSettings, load_settings
from canaryfleet.wiring import approvals


@entry_point(correlation_id_path="approval_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(SlackAppSettings)
    task = parse_event(ExpireApprovalTask, event)
    status = approvals.expire_approval(settings)(task)
    return {"status": status.value if status else "missing"}
