"""The notifications function's service, built from its settings on AWS and Slack.

``notify_service`` gives the logic (``canaryfleet.logic.notify``) its channels, each delivery
wrapped in Powertools idempotency on the platform's idempotency table, so a notice delivered
twice is told once, and each copy of its email sent once. The logic depends only on the ports
in ``canaryfleet.ports.notify``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from aws_lambda_powertools.utilities.typing import LambdaContext

from canaryfleet.adapters.approval_email import SnsApprovalEmail
from canaryfleet.adapters.idempotency import once_per_key
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.secrets import SecretsManagerSlackSecret
from canaryfleet.adapters.slack import notice_slack
from canaryfleet.adapters.slack_threads import DynamoSlackThreads
from canaryfleet.logic.notify import (
    Notifications,
    NotifyChannels,
    SummaryMail,
    email_summary,
    send_straight,
    tell_slack,
)
from canaryfleet.ports.clock import SystemClock
from canaryfleet.settings import NotifySettings

T = TypeVar("T")


def notify_channels(settings: NotifySettings) -> NotifyChannels:
    """Slack (none when its secret is `{}`), threads, the email topic, registry, records."""
    return NotifyChannels(
        registry=SsmRegistry(),
        threads=DynamoSlackThreads(settings.state_table_name),
        rollouts=DynamoRolloutStore(settings.state_table_name),
        slack=notice_slack(SecretsManagerSlackSecret(settings.slack_secret_arn)),
        email=SnsApprovalEmail(settings.approval_email_topic_arn),
        clock=SystemClock(),
    )


def notify_service(settings: NotifySettings, context: LambdaContext | None) -> Notifications:
    """Both deliveries, each made at most once per notice key (an in-progress record lasts the
    invocation), and each copy of the email once per recipient."""

    def once(function: Callable[..., T], data_keyword: str) -> Callable[..., T]:
        return once_per_key(
            function,
            table_name=settings.idempotency_table_name,
            data_keyword=data_keyword,
            key="key",
            context=context,
        )

    channels = notify_channels(settings)
    email = channels.email

    def send_summary_mail(mail: SummaryMail) -> None:
        send_straight(email, mail=mail)

    channels = replace(channels, send_mail=once(send_summary_mail, "mail"))
    time_left = (lambda: context.get_remaining_time_in_millis() / 1000) if context is not None else None
    return Notifications(
        channels,
        slack=once(tell_slack, "notice"),
        email=once(email_summary, "notice"),
        time_left=time_left,
    )
