"""The approval page function's service: the HTTP API that shows and decides a signed link's approval."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from canaryfleet.adapters.secrets import SecretsManagerSigningKeys, SecretsManagerSlackSecret
from canaryfleet.adapters.slack import optional_slack
from canaryfleet.api.approval_page import approval_page_api
from canaryfleet.logic.links import LinkSigner
from canaryfleet.settings import ApprovalPageSettings
from canaryfleet.wiring.gate import approval_gate


def approval_page(settings: ApprovalPageSettings) -> APIGatewayHttpResolver:
    """The page as the function runs it: the state table, the signing key, Slack if set up."""
    slack = optional_slack(SecretsManagerSlackSecret(settings.slack_secret_arn))
    gate = approval_gate(settings.state_table_name, slack)
    return approval_page_api(gate, LinkSigner(SecretsManagerSigningKeys(settings.signing_key_secret_arn)))
