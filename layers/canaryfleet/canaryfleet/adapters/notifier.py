"""Rollout notifications on the platform's SNS topic."""

from __future__ import annotations

import abc
import json
from typing import Any

from canaryfleet.adapters.clients import client


class Notifier(abc.ABC):
    @abc.abstractmethod
    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        """Publish one notification; subscribers filter on kind and application."""


class SnsNotifier(Notifier):
    def __init__(self, topic_arn: str) -> None:
        self._topic_arn = topic_arn

    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        client("sns").publish(
            TopicArn=self._topic_arn,
            Subject=f"canaryfleet {application}: {kind}"[:100],
            Message=json.dumps(message, default=str, sort_keys=True),
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": kind},
                "application": {"DataType": "String", "StringValue": application},
            },
        )
