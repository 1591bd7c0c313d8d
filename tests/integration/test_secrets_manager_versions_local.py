"""A secret's version keeps the value first put in it, as Secrets Manager's PutSecretValue keeps it.

The same value put again with the version's token is accepted and changes nothing; another value
is refused (ResourceExistsException), whether the version is a rotation's pending one or not. The
pending version RotateSecret makes has no value until the rotation function puts one: that first
put is taken. src/canaryfleet_local/FIDELITY.md lists the rule with its source.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.standins.secretsmanager import (
    SecretsManagerPutSecretValueIdempotency,
    rotate_secret_with_its_function,
)
from tests.integration.helpers import a_moto_function, moto_account

REGION = "eu-west-1"


@pytest.fixture
def secretsmanager() -> Iterator[Any]:
    """Secrets Manager on moto with the stand-in; Lambda answers without running anything."""
    with (
        moto_account(REGION, {"lambda": {"use_docker": False}}),
        SecretsManagerPutSecretValueIdempotency().installed(),
    ):
        yield boto3.client("secretsmanager")


def a_rotation_function() -> str:
    """A function RotateSecret can invoke; it puts nothing (moto's Lambda only echoes)."""
    return a_moto_function("rotate")


def refused(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def value(sm: Any, secret: str, version: str) -> str:
    return str(sm.get_secret_value(SecretId=secret, VersionId=version)["SecretString"])


def test_a_pending_version_takes_its_first_value_and_keeps_it(secretsmanager: Any) -> None:
    sm = secretsmanager
    # Given a rotation started: RotateSecret's AWSPENDING version has no value yet
    secret = sm.create_secret(Name="signing-key", SecretString="current")["ARN"]
    token = str(uuid.uuid4())
    sm.rotate_secret(
        SecretId=secret,
        ClientRequestToken=token,
        RotationLambdaARN=a_rotation_function(),
        RotationRules={"AutomaticallyAfterDays": 30},
    )
    assert sm.describe_secret(SecretId=secret)["VersionIdsToStages"][token] == ["AWSPENDING"]
    assert refused(sm.get_secret_value, SecretId=secret, VersionStage="AWSPENDING") == (
        "ResourceNotFoundException"
    )

    # When the rotation function puts the new value: it is taken
    put = {"SecretId": secret, "ClientRequestToken": token, "VersionStages": ["AWSPENDING"]}
    assert sm.put_secret_value(**put, SecretString="new")["VersionId"] == token
    assert value(sm, secret, token) == "new"

    # Then the same value again is accepted and changes nothing
    assert sm.put_secret_value(**put, SecretString="new")["VersionId"] == token
    # and another is refused, as a createSecret retried with a new value would be on AWS
    assert refused(sm.put_secret_value, **put, SecretString="other") == "ResourceExistsException"
    assert refused(sm.put_secret_value, **put, SecretBinary=b"new") == "ResourceExistsException"
    assert value(sm, secret, token) == "new"
    assert sm.get_secret_value(SecretId=secret, VersionStage="AWSPENDING")["SecretString"] == "new"
    stages = sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
    assert sorted(label for labels in stages.values() for label in labels) == ["AWSCURRENT", "AWSPENDING"]


def test_a_version_that_is_not_pending_keeps_its_value_too(secretsmanager: Any) -> None:
    sm = secretsmanager
    # Given a secret whose current version was put with a token
    secret = sm.create_secret(Name="slack", SecretString="first")["ARN"]
    token = str(uuid.uuid4())
    sm.put_secret_value(SecretId=secret, ClientRequestToken=token, SecretString="second")
    assert sm.describe_secret(SecretId=secret)["VersionIdsToStages"][token] == ["AWSCURRENT"]

    # When it is put again: the same value is accepted, even with other labels, and changes nothing
    again = sm.put_secret_value(
        SecretId=secret, ClientRequestToken=token, SecretString="second", VersionStages=["AWSPENDING"]
    )
    assert again["VersionId"] == token
    assert sm.describe_secret(SecretId=secret)["VersionIdsToStages"][token] == ["AWSCURRENT"]

    # Then another value is refused and the stored one stays
    code = refused(sm.put_secret_value, SecretId=secret, ClientRequestToken=token, SecretString="third")
    assert code == "ResourceExistsException"
    assert value(sm, secret, token) == "second"
    assert sm.get_secret_value(SecretId=secret)["SecretString"] == "second"


def test_the_signing_key_rotates_twice_with_its_function_and_each_new_key_stays_as_put() -> None:
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as cloud:
        # Given the approval links' signing key, rotated by its real rotation function
        secret = cloud.output("ApprovalSigningKeyArn")
        sm = cloud.client("secretsmanager")
        keys = [sm.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["SecretString"]]

        # When it rotates twice (its createSecret puts the pending key once per rotation)
        for _ in range(2):
            version = rotate_secret_with_its_function(secret)
            key = value(sm, secret, version)
            assert sm.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["VersionId"] == version
            # Then the new key can be put again with its version's token, but not changed
            put = {"SecretId": secret, "ClientRequestToken": version}
            assert sm.put_secret_value(**put, SecretString=key, VersionStages=["AWSPENDING"])[
                "VersionId"
            ] == (version)
            assert refused(sm.put_secret_value, **put, SecretString=key + "x") == "ResourceExistsException"
            assert value(sm, secret, version) == key
            keys.append(key)

        # And the newest key signs, the one before verifies, none is left pending
        stages = sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
        labels = sorted(label for names in stages.values() for label in names)
        assert labels == ["AWSCURRENT", "AWSPREVIOUS"]
        assert sm.get_secret_value(SecretId=secret, VersionStage="AWSPREVIOUS")["SecretString"] == keys[-2]
        assert len(set(keys)) == 3


def test_the_local_cloud_refuses_a_second_value_for_a_pending_version() -> None:
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as cloud:
        # Given a secret of the local cloud with a pending version put by a rotation's first step
        sm = cloud.client("secretsmanager")
        secret = sm.create_secret(Name="pending-check", SecretString="current")["ARN"]
        token = str(uuid.uuid4())
        put = {"SecretId": secret, "ClientRequestToken": token, "VersionStages": ["AWSPENDING"]}
        sm.put_secret_value(**put, SecretString="pending")

        # When a step puts another value with the same token, it is refused
        assert refused(sm.put_secret_value, **put, SecretString="another") == "ResourceExistsException"
        assert value(sm, secret, token) == "pending"
