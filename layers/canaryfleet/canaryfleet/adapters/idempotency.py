"""Powertools idempotency on the platform's idempotency table: one effect per event or notice."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

# Duplicates come within minutes (redeliveries, a retried publisher); a day is ample.
REMEMBER_SECONDS = 86_400

ResultT = TypeVar("ResultT")


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
        persistence_store=DynamoDBPersistenceLayer(table_name=table_name),
        config=config,
    )(function)
    return wrapped
