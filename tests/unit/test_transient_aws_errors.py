"""An AWS call botocore's retries did not get through leaves a function as TransientAwsError.

The state machines retry that error by name for minutes (statemachines/rollout.asl.yaml,
aws-transient); what no retry can mend (a refused parameter, a missing permission) leaves as
it was, for the Catch to roll back with its words.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError, ReadTimeoutError
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker
from canaryfleet.errors import (
    THROTTLED_ERROR_CODES,
    TRANSIENT_ERROR_CODES,
    TRANSIENT_STATUS_CODES,
    TransientAwsError,
    transient_aws,
)
from canaryfleet.observability import entry_point

from tests.unit.test_entry_point_log_event import Context


def refused(code: str, status: int, operation: str = "PutMetricAlarm") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "Rate exceeded"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


def test_the_codes_and_statuses_are_botocores_own() -> None:
    # botocore's standard retry mode, as pinned: a botocore upgrade that adds one is seen here.
    assert set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES) <= THROTTLED_ERROR_CODES
    assert set(TransientRetryableChecker._TRANSIENT_ERROR_CODES) <= TRANSIENT_ERROR_CODES
    assert set(TransientRetryableChecker._TRANSIENT_STATUS_CODES) <= TRANSIENT_STATUS_CODES


@pytest.mark.parametrize(
    "error",
    [
        refused("Throttling", 400),  # CloudWatch's alarm APIs (query protocol)
        refused("ThrottlingException", 400, "GetMetricData"),
        refused("ProvisionedThroughputExceededException", 400, "UpdateItem"),
        refused("InternalFailure", 500),
        refused("ServiceUnavailable", 503),
        refused("SomethingNew", 429),
        refused("KMSThrottling", 400, "Publish"),  # SNS, a topic's KMS key throttled
        EndpointConnectionError(endpoint_url="https://monitoring.eu-west-1.amazonaws.com/"),
        ReadTimeoutError(endpoint_url="https://monitoring.eu-west-1.amazonaws.com/"),
    ],
    ids=[
        "Throttling",
        "ThrottlingException",
        "ProvisionedThroughput",
        "500",
        "503",
        "429",
        "sns-KMSThrottling",
        "no-endpoint",
        "read-timeout",
    ],
)
def test_throttling_5xx_and_no_answer_are_transient(error: Exception) -> None:
    transient = transient_aws(error)
    assert isinstance(transient, TransientAwsError)


@pytest.mark.parametrize(
    "error",
    [
        refused("ValidationError", 400),
        refused("AccessDeniedException", 400),
        refused("ResourceNotFoundException", 400),
        refused("ConditionalCheckFailedException", 400, "UpdateItem"),
        ParamValidationError(report="Invalid length for parameter Dimensions[0].Value"),
        ValueError("not AWS's"),
    ],
)
def test_what_no_retry_mends_is_left_as_it_was(error: Exception) -> None:
    assert transient_aws(error) is None


def test_a_function_that_was_throttled_past_botocores_retries_fails_with_transient_aws_error() -> None:
    throttled = refused("Throttling", 400)

    @entry_point()
    def lambda_handler(event: dict[str, Any], context: Any) -> str:
        raise throttled

    # Lambda names the error by its class: TransientAwsError, which the Retry names.
    with pytest.raises(TransientAwsError) as caught:
        lambda_handler({}, Context())
    assert caught.value.__cause__ is throttled
    assert "PutMetricAlarm" in str(caught.value)


def test_a_function_refused_for_good_fails_with_the_refusal_itself() -> None:
    denied = refused("AccessDeniedException", 400)

    @entry_point()
    def lambda_handler(event: dict[str, Any], context: Any) -> str:
        raise denied

    with pytest.raises(ClientError) as caught:
        lambda_handler({}, Context())
    assert caught.value is denied
