"""Not an AWS behaviour: the local cloud's own boto3 clients, made once per process.

The stand-ins play AWS's side of the local cloud (CloudFormation creating a resource type moto
cannot, EventBridge starting a state machine, Lambda's asynchronous queue sending to a
dead-letter queue) through moto's API, and ``LocalCloud.client`` serves the simulator, the jobs
and the tests; none of them is a function's own client. They used to make a client for every
call or every cloud: milliseconds each, since botocore copies its session's few hundred event
handlers into every new client, and some of these calls come once per event. A boto3 client is
thread-safe and holds no moto state (moto's mock reaches every client through botocore's
built-in handlers), so one per service, region and credentials serves the whole process.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3

_CLIENTS: dict[tuple[str, str | None, str | None, str | None], Any] = {}
_LOCK = threading.Lock()


def shared_client(service: str, region: str | None = None) -> Any:
    """A client of ``service`` in ``region`` (the environment's region if None), shared.

    Keyed by the environment's credentials too, as ``boto3.client`` would read them now: with
    ``CANARYFLEET_LOCAL_IAM=enforce`` a call made while a function runs keeps the identity it
    had before this cache.
    """
    key = (
        service,
        region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"),
        os.environ.get("AWS_ACCESS_KEY_ID"),
        os.environ.get("AWS_SESSION_TOKEN"),
    )
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            # A session of its own, not boto3's default one: a default session made outside a
            # moto mock would keep these credentials for every later boto3.client of the process.
            session: Any = boto3.session.Session()  # any service name: the stubs type each literal
            client = _CLIENTS[key] = session.client(service, region_name=key[1])
        return client
