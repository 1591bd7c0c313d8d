"""Entry point: approve, reject, abort or promote the running rollout of an application."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.secrets import SecretsManagerSlackSecret
from canaryfleet.adapters.slack import optional_slack
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic.approval_gate import ApprovalGate, settle_ended_approval
from canaryfleet.logic.decisions import Decision, decide
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import SlackAppSettings, load_settings


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(SlackAppSettings)
    decision = parse_event(Decision, event)
    result = decide(decision, DynamoRolloutStore(settings.state_table_name), StepFunctionsCallbacks())
    if result.approval_id is not None:
        slack_secret = SecretsManagerSlackSecret(settings.slack_secret_arn)
        settle_ended_approval(
            lambda: ApprovalGate.build(settings.state_table_name, optional_slack(slack_secret)),
            result.approval_id,
        )
    return result.model_dump()
