"""Cached boto3 clients: created on first use, never at import time."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Literal, overload

import boto3
from botocore.client import BaseClient
from botocore.config import Config

if TYPE_CHECKING:
    # The boto3 stub packages (dev dependencies) give each service its typed client, so mypy
    # checks every AWS call; imported for the type checker only, the Lambda layer stays as is.
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_codedeploy import CodeDeployClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_stepfunctions import SFNClient

# The AWS services the runtime calls: adding one means adding its overload below and its
# extra to boto3-stubs in pyproject.toml.
ServiceName = Literal[
    "autoscaling",
    "cloudwatch",
    "codedeploy",
    "dynamodb",
    "ec2",
    "elbv2",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "stepfunctions",
]

# Standard retry mode: six attempts (max_attempts counts the retries after the first) with
# jittered exponential backoff (capped at 20 s) and a retry quota, so throttling and 5xx answers
# rarely reach our code; what still fails leaves the function as TransientAwsError, which the
# state machines retry for minutes (observability.entry_point). Not adaptive mode: its
# client-side rate limiter is shared by every call of the client (both tables, every
# operation) and outlives the invocation in a warm environment, so one burst of throttling
# slows every later event the environment handles; a Spot drain has two minutes, and
# redelivery (SQS, EventBridge, Step Functions Retry) already covers what still fails.
# How long a call waits to connect and for an answer (botocore's defaults: 60 s each); the CLI's
# own clients wait as long (canaryfleet_cli.platform).
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 20
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
)


# The named profile sessions are made from (use_profile); None: boto3's own credential chain.
_named: dict[str, str | None] = {"profile": None}


def use_profile(profile: str | None) -> None:
    """Make every client from this named profile's credentials (the CLI's ``--profile``).

    Passed by name, the profile wins over keys in the environment; ``AWS_PROFILE`` alone does
    not: boto3's credential chain reads environment variables before the shared files, so an
    operator's left-over keys for another account would be used instead.
    """
    _named["profile"] = profile
    reset_clients()


@lru_cache(maxsize=1)
def _session() -> boto3.session.Session:
    # One session per execution environment: its loader reads each service's model once.
    return boto3.session.Session(profile_name=_named["profile"])


@lru_cache(maxsize=32)
def _cached_client(service: ServiceName, region: str | None) -> BaseClient:
    return _session().client(service, region_name=region, config=_CONFIG)


@overload
def client(service: Literal["autoscaling"], region: str | None = None) -> AutoScalingClient: ...


@overload
def client(service: Literal["cloudwatch"], region: str | None = None) -> CloudWatchClient: ...


@overload
def client(service: Literal["codedeploy"], region: str | None = None) -> CodeDeployClient: ...


@overload
def client(service: Literal["dynamodb"], region: str | None = None) -> DynamoDBClient: ...


@overload
def client(service: Literal["ec2"], region: str | None = None) -> EC2Client: ...


@overload
def client(service: Literal["elbv2"], region: str | None = None) -> ElasticLoadBalancingv2Client: ...


@overload
def client(service: Literal["s3"], region: str | None = None) -> S3Client: ...


@overload
def client(service: Literal["secretsmanager"], region: str | None = None) -> SecretsManagerClient: ...


@overload
def client(service: Literal["sns"], region: str | None = None) -> SNSClient: ...


@overload
def client(service: Literal["sqs"], region: str | None = None) -> SQSClient: ...


@overload
def client(service: Literal["ssm"], region: str | None = None) -> SSMClient: ...


@overload
def client(service: Literal["stepfunctions"], region: str | None = None) -> SFNClient: ...


def client(service: ServiceName, region: str | None = None) -> BaseClient:
    """The client of ``service``, created on first use and shared afterwards."""
    return _cached_client(service, region)


def reset_clients() -> None:
    """Forget cached clients and their session (a new set of credentials or endpoints)."""
    _cached_client.cache_clear()
    _session.cache_clear()


def error_code(exc: Exception) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None
