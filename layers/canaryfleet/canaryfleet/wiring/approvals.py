"""Approval functions' services, built from their settings: a factory per function.

The approval gate (``wiring.gate``), the approval channels, the signing key's rotation
(``wiring.key_rotation``), the Slack app (``wiring.slack_app``) and the approval page
(``wiring.approval_page``) are put together from the AWS adapters in the wiring; handlers and
logic construct none of them. The page, the Slack app and the rotation have modules of their
own: every function imports the whole of its wiring module at cold start, and only the page and
the Slack app load the HTTP resolver, the page templates or the Slack app's forms.
"""

from __future__ import annotations

from collections.abc import Callable

from canaryfleet.adapters.approval_email import SnsApprovalEmail
from canaryfleet.adapters.approval_expiry import StepFunctionsApprovalExpiry
from canaryfleet.adapters.approval_store import DynamoApprovalStore
from canaryfleet.adapters.fleet import Metrics
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.secrets import (
    SecretsManagerSigningKeys,
    SecretsManagerSlackSecret,
)
from canaryfleet.adapters.slack import optional_slack, slack_api
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic.approval import ApprovalChannels
from canaryfleet.logic.approval import request_approval as ask_approvers
from canaryfleet.logic.approval_gate import settle_ended_approval
from canaryfleet.logic.decisions import decide as decide_once
from canaryfleet.logic.links import LinkSigner
from canaryfleet.logic.window import announce_override
from canaryfleet.models.approval import ApprovalStatus, ExpireApprovalTask
from canaryfleet.models.decision import KEPT_FOR_RETRY, Decision, DecisionResult
from canaryfleet.models.tasks import ApprovalTask
from canaryfleet.ports.clock import SystemClock
from canaryfleet.settings import (
    DecideSettings,
    RequestApprovalSettings,
    SlackAppSettings,
)
from canaryfleet.wiring.gate import approval_gate


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
        return ask_approvers(task, store, notifier, StepFunctionsCallbacks(), channels, clock, Metrics())

    return run


def decide(settings: DecideSettings) -> Callable[[Decision], DecisionResult]:
    """A decision from the CLI or the local cloud; an approval it ended is settled at once, and
    a window override is announced in the rollout's Slack thread (if that fails, the result's
    detail says so: the override stands all the same)."""
    clock = SystemClock()
    store = DynamoRolloutStore(settings.state_table_name, clock)
    notifier = SnsNotifier(settings.notification_topic_arn)

    def run(decision: Decision) -> DecisionResult:
        result = decide_once(decision, store, StepFunctionsCallbacks(), clock)
        if result.outcome == "already_decided":
            # Refused while "Wait for approval" is retried: kept, the retried request applies it.
            slack = optional_slack(SecretsManagerSlackSecret(settings.slack_secret_arn))
            kept = approval_gate(settings.state_table_name, slack, clock).keep_for_retry(
                decision, result.rollout_id
            )
            if kept == "applied":
                return result.model_copy(update={"outcome": "applied"})
            if kept == "kept":
                return result.model_copy(update={"outcome": "recorded", "detail": KEPT_FOR_RETRY})
        if decision.override_window:
            unannounced = announce_override(decision, result.rollout_id, store, notifier, clock)
            if unannounced:
                detail = "; ".join(said for said in (result.detail, unannounced) if said)
                result = result.model_copy(update={"detail": detail})
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
