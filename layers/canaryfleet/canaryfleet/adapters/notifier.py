"""Rollout notifications on the platform's SNS topic."""

from __future__ import annotations

import abc
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.errors import TransientAwsError
from canaryfleet.models.sns_subject import sns_subject

# Publish's answers worth trying again, once botocore's own retries gave up: InternalError
# (500) and KMSThrottling (botocore sns, Publish's errors), and the Query protocol's throttling.
_TRANSIENT_CODES = frozenset(
    {"InternalError", "KMSThrottling", "Throttling", "Throttled", "ThrottlingException"}
)


class Notifier(abc.ABC):
    @abc.abstractmethod
    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        """Publish one notification; subscribers filter on kind and application."""


class SnsNotifier(Notifier):
    def __init__(self, topic_arn: str) -> None:
        self._topic_arn = topic_arn

    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        try:
            client("sns").publish(
                TopicArn=self._topic_arn,
                Subject=sns_subject(f"canaryfleet {application}: {kind}"),
                Message=json.dumps(message, default=str, sort_keys=True),
                MessageAttributes={
                    "kind": {"DataType": "String", "StringValue": kind},
                    "application": {"DataType": "String", "StringValue": application},
                },
            )
        except BotoCoreError as exc:  # a connection or read timeout: it may have been published
            raise TransientAwsError(f"SNS Publish of {kind}: {exc}") from exc
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if status >= 500 or error_code(exc) in _TRANSIENT_CODES:
                raise TransientAwsError(f"SNS Publish of {kind}: {exc}") from exc
            raise
