"""Entry point: an approval's time is up (expiry state machine): mark it expired unless decided."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.secrets import SecretsManagerSlackSecret
from canaryfleet.adapters.slack import optional_slack
from canaryfleet.logic.approval_gate import ApprovalGate
from canaryfleet.models.approval import ExpireApprovalTask
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import SlackAppSettings, load_settings


@entry_point(correlation_id_path="approval_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(SlackAppSettings)
    task = parse_event(ExpireApprovalTask, event)
    slack = optional_slack(SecretsManagerSlackSecret(settings.slack_secret_arn))
    status = ApprovalGate.build(settings.state_table_name, slack).expire(task.approval_id)
    return {"status": status.value if status else "missing"}
