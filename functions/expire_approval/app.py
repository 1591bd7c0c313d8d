"""Entry point: an approval's time is up (expiry state machine): mark it expired unless decided."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.secrets import SecretsManagerSlackSecret
from canaryfleet.adapters.slack import optional_slack
from canaryfleet.logic.approval_gate import ApprovalGate
from canaryfleet.models.approval import ExpireApprovalTask
from canaryfleet.models.events import parse_event
from canaryfleet.observability import logger, metrics, tracer
from canaryfleet.settings import SlackAppSettings, load_settings


@logger.inject_lambda_context(correlation_id_path="approval_id", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(SlackAppSettings)
    task = parse_event(ExpireApprovalTask, event)
    slack = optional_slack(SecretsManagerSlackSecret(settings.slack_secret_arn))
    status = ApprovalGate.build(settings.state_table_name, slack).expire(task.approval_id)
    return {"status": status.value if status else "missing"}
