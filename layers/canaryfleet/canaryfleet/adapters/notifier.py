"""Rollout notifications on the platform's SNS topic."""

from __future__ import annotations

import abc
import json
from typing import Any

from canaryfleet.adapters.clients import client
from canaryfleet.models.sns_subject import sns_subject


class Notifier(abc.ABC):
    @abc.abstractmethod
    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        """Publish one notification; subscribers filter on kind and application."""


class SnsNotifier(Notifier):
    def __init__(self, topic_arn: str) -> None:
        self._topic_arn = topic_arn

    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        """Publish; a failure worth trying again (throttled, a 5xx, no answer, KMSThrottling)
        leaves the function as TransientAwsError (``errors.transient_aws``, at its entry point),
        which the state machines' Record tasks retry."""
        client("sns").publish(
            TopicArn=self._topic_arn,
            Subject=sns_subject(f"canaryfleet {application}: {kind}"),
            Message=json.dumps(message, default=str, sort_keys=True),
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": kind},
                "application": {"DataType": "String", "StringValue": application},
            },
        )
