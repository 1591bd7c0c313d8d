"""Approval functions' services, built from their settings: a factory per function.

The approval gate, the approval channels, the Slack app and the approval page are put
together here from the AWS adapters; handlers and logic construct none of them.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from canaryfleet.adapters.approval_email import SnsApprovalEmail
from canaryfleet.adapters.approval_expiry import StepFunctionsApprovalExpiry
from canaryfleet.adapters.approval_store import DynamoApprovalStore
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.secrets import (
    SecretsManagerSecretVersions,
    SecretsManagerSigningKeys,
    SecretsManagerSlackSecret,
)
from canaryfleet.adapters.slack import optional_slack, slack_api
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.api.approval_page import approval_page_api
from canaryfleet.api.slack_app import slack_app_api
from canaryfleet.logic.approval import ApprovalChannels
from canaryfleet.logic.approval import request_approval as ask_approvers
from canaryfleet.logic.approval_gate import ApprovalGate, settle_ended_approval
from canaryfleet.logic.decisions import decide as decide_once
from canaryfleet.logic.key_rotation import rotate_signing_key as rotate_step
from canaryfleet.logic.links import LinkSigner
from canaryfleet.logic.window import announce_override
from canaryfleet.models.approval import ApprovalStatus, ExpireApprovalTask, RotationEvent
from canaryfleet.models.decision import Decision, DecisionResult
from canaryfleet.models.tasks import ApprovalTask
from canaryfleet.ports.approvals import SlackChannel
from canaryfleet.ports.clock import Clock, SystemClock
from canaryfleet.settings import (
    ApprovalPageSettings,
    DecideSettings,
    RequestApprovalSettings,
    SlackAppSettings,
)


def approval_gate(table_name: str, slack: SlackChannel | None, clock: Clock | None = None) -> ApprovalGate:
    """The gate on the state table (approvals and rollouts) and Step Functions callbacks."""
    clock = clock or SystemClock()
    return ApprovalGate(
        DynamoApprovalStore(table_name),
        DynamoRolloutStore(table_name, clock),
        StepFunctionsCallbacks(),
        slack,
        clock,
    )


def request_approval(settings: RequestApprovalSettings) -> Callable[[ApprovalTask], str]:
    clock = SystemClock()
    store = DynamoRolloutStore(settings.state_table_name, clock)
    notifier = SnsNotifier(settings.notification_topic_arn)

    def run(task: ApprovalTask) -> str:
        channels = ApprovalChannels(
            approvals=DynamoApprovalStore(settings.state_table_name),
            signer=LinkSigner(SecretsManagerSigningKeys(settings.signing_key_secret_arn)),
            email=SnsApprovalEmail(settings.approval_email_topic_arn),
            expiry=StepFunctionsApprovalExpiry(settings.approval_expiry_state_machine_arn),
            slack=slack_api(SecretsManagerSlackSecret(settings.slack_secret_arn).load()),
            page_base_url=settings.page_base_url,
        )
        return ask_approvers(task, store, notifier, StepFunctionsCallbacks(), channels, clock)

    return run


def decide(settings: DecideSettings) -> Callable[[Decision], DecisionResult]:
    """A decision from the CLI or the local cloud; an approval it ended is settled at once, and
    a window override is announced in the rollout's Slack thread."""
    clock = SystemClock()
    store = DynamoRolloutStore(settings.state_table_name, clock)
    notifier = SnsNotifier(settings.notification_topic_arn)

    def run(decision: Decision) -> DecisionResult:
        result = decide_once(decision, store, StepFunctionsCallbacks(), clock)
        if decision.override_window:
            announce_override(decision, result.rollout_id, store, notifier, clock)
        if result.approval_id is not None:
            slack_secret = SecretsManagerSlackSecret(settings.slack_secret_arn)
            settle_ended_approval(
                lambda: approval_gate(settings.state_table_name, optional_slack(slack_secret), clock),
                result.approval_id,
            )
        return result

    return run


def expire_approval(settings: SlackAppSettings) -> Callable[[ExpireApprovalTask], ApprovalStatus | None]:
    def run(task: ExpireApprovalTask) -> ApprovalStatus | None:
        slack = optional_slack(SecretsManagerSlackSecret(settings.slack_secret_arn))
        return approval_gate(settings.state_table_name, slack).expire(task.approval_id)

    return run


def approval_page(settings: ApprovalPageSettings) -> APIGatewayHttpResolver:
    """The page as the function runs it: the state table, the signing key, Slack if set up."""
    slack = optional_slack(SecretsManagerSlackSecret(settings.slack_secret_arn))
    gate = approval_gate(settings.state_table_name, slack)
    return approval_page_api(gate, LinkSigner(SecretsManagerSigningKeys(settings.signing_key_secret_arn)))


def slack_app(settings: SlackAppSettings) -> APIGatewayHttpResolver:
    """The Slack app as the function runs it."""
    clock = SystemClock()
    secret = SecretsManagerSlackSecret(settings.slack_secret_arn).load()
    slack = slack_api(secret)
    gate = approval_gate(settings.state_table_name, slack, clock)
    rollouts = DynamoRolloutStore(settings.state_table_name, clock)
    return slack_app_api(secret, gate, slack, SsmRegistry(), rollouts, StepFunctionsCallbacks(), clock)


def rotate_signing_key(rotation: RotationEvent) -> Callable[[RotationEvent], str]:
    """One rotation step on the secret the event names."""
    versions = SecretsManagerSecretVersions(rotation.secret_id)

    def run(event: RotationEvent) -> str:
        return rotate_step(event, versions)

    return run
