"""How long a revoked approval signing key is still accepted by a function already running."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from canaryfleet.adapters import secrets
from canaryfleet.adapters.secrets import SecretsManagerSigningKeys, forget_secrets

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ApprovalSigningKey-AbCdEf"


class RotatingSecret:
    """GetSecretValue of a secret whose versions carry AWSCURRENT and AWSPREVIOUS."""

    def __init__(self, current: str) -> None:
        self.stages: dict[str, str] = {"AWSCURRENT": current}

    def rotate(self, new: str) -> None:
        self.stages = {"AWSCURRENT": new, "AWSPREVIOUS": self.stages["AWSCURRENT"]}

    def get_secret_value(self, SecretId: str, VersionStage: str) -> dict[str, Any]:
        if VersionStage not in self.stages:
            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "-"}}, "GetSecretValue"
            )
        return {"SecretString": self.stages[VersionStage]}


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RotatingSecret, list[float]]]:
    stored, clock = RotatingSecret("leaked-key"), [1000.0]
    monkeypatch.setattr(secrets, "client", lambda service: stored)
    monkeypatch.setattr(secrets.time, "monotonic", lambda: clock[0])
    forget_secrets()
    yield stored, clock
    forget_secrets()


def test_a_key_rotated_out_twice_is_refused_by_a_running_function_within_a_minute(
    secret: tuple[RotatingSecret, list[float]],
) -> None:
    # Given a function that verified a link with the key now leaked (it is cached)
    stored, clock = secret
    keys = SecretsManagerSigningKeys(SECRET)
    assert keys.accepted() == [b"leaked-key"]

    # When on-call rotates twice to revoke it
    stored.rotate("second-key")
    stored.rotate("third-key")

    # Then the function refuses it a minute later, and signs with the new key
    clock[0] += 61
    assert b"leaked-key" not in keys.accepted()
    assert keys.current() == b"third-key"
