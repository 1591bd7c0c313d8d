"""Cached boto3 clients: created on first use, never at import time."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

# Adaptive retry mode backs off on throttling before an error reaches our code.
_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 5}, connect_timeout=5, read_timeout=20)


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
