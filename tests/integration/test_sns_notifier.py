"""The SNS notifier: a Publish worth trying again leaves the function as TransientAwsError,
which the state machines' Record tasks retry; a refusal stays what it is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from canaryfleet.adapters.clients import client, reset_clients
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.errors import TransientAwsError
from canaryfleet.observability import entry_point
from moto import mock_aws

from tests.unit.test_entry_point_log_event import Context

TOPIC = "arn:aws:sns:us-east-1:123456789012:canaryfleet-notifications"


@pytest.fixture
def sns() -> Iterator[Stubber]:
    with mock_aws():
        reset_clients()
        with Stubber(client("sns")) as stub:
            yield stub
    reset_clients()


@entry_point()
def publishing(event: dict[str, Any], context: Any) -> None:
    SnsNotifier(TOPIC).publish("rollout.started", "payments-api", {"stage": "started"})


@pytest.mark.parametrize(
    ("code", "status"),
    [("Throttled", 429), ("KMSThrottling", 400), ("InternalError", 500), ("Unavailable", 503)],
)
def test_a_publish_sns_may_take_later_is_transient(sns: Stubber, code: str, status: int) -> None:
    # SNS's own throttle (botocore sns, ThrottledException: "Throttled", 429), its KMS key's
    # (KMSThrottlingException: "KMSThrottling", 400) and its 5xx
    sns.add_client_error("publish", service_error_code=code, http_status_code=status)

    with pytest.raises(TransientAwsError, match=code):
        publishing({}, Context())


def test_a_publish_sns_refuses_is_not_retried(sns: Stubber) -> None:
    sns.add_client_error("publish", service_error_code="AuthorizationError", http_status_code=403)

    with pytest.raises(ClientError, match="AuthorizationError"):
        publishing({}, Context())
