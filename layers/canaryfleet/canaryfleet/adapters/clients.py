"""Cached boto3 clients: created on first use, never at import time."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode: five attempts with jittered exponential backoff (capped at 20 s) and a
# retry quota, so throttling and 5xx answers rarely reach our code. Not adaptive mode: its
# client-side rate limiter is shared by every call of the client (both tables, every
# operation) and outlives the invocation in a warm environment, so one burst of throttling
# slows every later event the environment handles; a Spot drain has two minutes, and
# redelivery (SQS, EventBridge, Step Functions Retry) already covers what still fails.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    # One session per execution environment: its loader reads each service's model once.
    return boto3.session.Session()


@lru_cache(maxsize=32)
def client(service: str, region: str | None = None) -> Any:
    return _session().client(service, region_name=region, config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients and their session (a new set of credentials or endpoints)."""
    client.cache_clear()
    _session.cache_clear()


def error_code(exc: Exception) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None
