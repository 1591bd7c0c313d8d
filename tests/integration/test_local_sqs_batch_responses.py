"""The SQS event source mapping stand-in reads a partial batch response as Lambda does.

Lambda Developer Guide, "Success and failure conditions"
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#sqs-batchfailurereporting-conditions):
an empty or null response or ``batchItemFailures`` is a complete success; a response that is not
JSON, an empty or null ``itemIdentifier``, a bad key name, or an identifier naming no message of
the batch is a complete failure. A handler bug of that kind must show locally as retries, as it
would on AWS, not as messages deleted.
"""

from __future__ import annotations

import json

import pytest

from canaryfleet_local.standins.sqs_sns import batch_items_to_retry

BATCH = ["m-1", "m-2", "m-3"]


@pytest.mark.parametrize(
    "response",
    [None, b"", b"null", b"{}", b'{"batchItemFailures": []}', b'{"batchItemFailures": null}'],
    ids=["no-response", "empty", "null", "empty-object", "empty-list", "null-list"],
)
def test_a_response_that_reports_nothing_is_a_complete_success(response: bytes | None) -> None:
    assert batch_items_to_retry(response, BATCH) == set()


def test_the_messages_a_response_names_are_retried_and_only_those() -> None:
    response = json.dumps({"batchItemFailures": [{"itemIdentifier": "m-2"}]})

    assert batch_items_to_retry(response, BATCH) == {"m-2"}


@pytest.mark.parametrize(
    "failures",
    [
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{"itemId": "m-1"}],
        [{"itemIdentifier": "m-1"}, {"itemIdentifier": "not-in-this-batch"}],
        [{"itemIdentifier": 1}],
        ["m-1"],
        "m-1",
    ],
    ids=["empty-id", "null-id", "bad-key", "unknown-id", "not-a-string", "bare-id", "not-a-list"],
)
def test_a_malformed_failure_list_fails_the_whole_batch(failures: object) -> None:
    response = json.dumps({"batchItemFailures": failures})

    assert batch_items_to_retry(response, BATCH) == set(BATCH)


@pytest.mark.parametrize("response", [b"{not json", b"[1, 2]", b'"done"'], ids=["invalid", "list", "string"])
def test_a_response_that_is_not_a_json_object_fails_the_whole_batch(response: bytes) -> None:
    assert batch_items_to_retry(response, BATCH) == set(BATCH)
