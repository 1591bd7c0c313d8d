"""The Slack app function's service: signed requests from Slack's buttons and slash commands."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.secrets import SecretsManagerSlackSecret
from canaryfleet.adapters.slack import slack_api
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.api.slack_app import slack_app_api
from canaryfleet.ports.clock import SystemClock
from canaryfleet.settings import SlackAppSettings
from canaryfleet.wiring.gate import approval_gate


def slack_app(settings: SlackAppSettings) -> APIGatewayHttpResolver:
    """The Slack app as the function runs it."""
    clock = SystemClock()
    secret = SecretsManagerSlackSecret(settings.slack_secret_arn).load()
    slack = slack_api(secret)
    gate = approval_gate(settings.state_table_name, slack, clock)
    rollouts = DynamoRolloutStore(settings.state_table_name, clock)
    return slack_app_api(secret, gate, slack, SsmRegistry(), rollouts, StepFunctionsCallbacks(), clock)
