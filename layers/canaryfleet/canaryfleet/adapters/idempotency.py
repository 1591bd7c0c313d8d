"""Powertools idempotency on the platform's idempotency table: one effect per event or notice."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from canaryfleet.adapters.clients import client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Most duplicates come within minutes (redeliveries, a retried publisher), but a dead-letter
# queue redriven once its cause is mended (README: a broken Slack secret) delivers its messages
# again up to its 14-day retention after they were first sent ("the expiration of a message is
# always based on its original enqueue timestamp": SQS Developer Guide, dead-letter queues). A
# notice whose email went before its Slack reply failed must not be emailed again then: keys
# are kept a day longer than any dead-letter queue keeps a message.
REMEMBER_SECONDS = 15 * 86_400

ResultT = TypeVar("ResultT")


@lru_cache(maxsize=16)
def _persistence(
    table_name: str, key: str, function: str, dynamodb: DynamoDBClient
) -> DynamoDBPersistenceLayer:
    """One persistence layer per table, key and function for the execution environment, on the shared client.

    Made per call, Powertools' layer created a boto3 client for every invocation (tens of
    milliseconds of CPU, the retry settings of ``adapters.clients`` lost) and registered its
    user-agent handler on it again. It takes the key from the first config it is given, hence one
    per key; the invocation's context still comes from each call's own config. It holds the name
    of the function it last ran for (``configure`` sets it on every call), hence one per
    function: a function made once per key inside another would otherwise leave the outer one's
    record "in progress" under the inner one's name. Passing a client
    is Powertools' documented way (``boto3_client``, "Customizing the Boto3 client" in
    https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/); the calls and
    so the function's IAM permissions on the table are the same.
    """
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb)


def once_per_key(
    function: Callable[..., ResultT],
    *,
    table_name: str,
    data_keyword: str,
    key: str,
    context: LambdaContext | None,
) -> Callable[..., ResultT]:
    """``function`` run at most once per value of ``key`` (JMESPath into its ``data_keyword`` argument).

    A repeat gets the first call's answer; a call that raises leaves no record, so a retry
    runs it again. An in-progress record lasts as long as the invocation (``context``).
    """
    config = IdempotencyConfig(event_key_jmespath=key, expires_after_seconds=REMEMBER_SECONDS)
    if context is not None:
        config.register_lambda_context(context)
    wrapped: Callable[..., ResultT] = idempotent_function(
        data_keyword_argument=data_keyword,
        persistence_store=_persistence(
            table_name, key, f"{function.__module__}.{function.__qualname__}", client("dynamodb")
        ),
        config=config,
    )(function)
    return wrapped
