"""Secrets Manager: secrets and rotation schedules from templates, and RotateSecret running the
rotation function."""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any, Self
from unittest import mock

from moto.awslambda.models import LambdaBackend, lambda_backends
from moto.core.common_models import CloudFormationModel
from moto.secretsmanager.exceptions import ResourceExistsException
from moto.secretsmanager.models import SecretsManagerBackend, secretsmanager_backends

from canaryfleet_local.standins.aws_clients import shared_client
from canaryfleet_local.standins.cloudformation import ApprovalGateResource, cfn_bool


class CloudFormationSecretsManagerSecret(ApprovalGateResource, CloudFormationModel):
    """Stands in for ``AWS::SecretsManager::Secret``, which moto's CloudFormation lacks.

    Creates the secret through moto's Secrets Manager API: ``SecretString`` as given, or
    ``GenerateSecretString`` through GetRandomPassword (with ``SecretStringTemplate`` and
    ``GenerateStringKey`` as CloudFormation combines them). Ref: the secret's ARN.
    """

    RESOURCE_TYPE = "AWS::SecretsManager::Secret"
    ATTRIBUTES = ("Id",)

    @staticmethod
    def _generated(client: Any, spec: dict[str, Any]) -> str:
        options = {
            "PasswordLength": int(spec.get("PasswordLength", 32)),
            "ExcludeCharacters": spec.get("ExcludeCharacters", ""),
            "ExcludeNumbers": cfn_bool(spec.get("ExcludeNumbers", False)),
            "ExcludePunctuation": cfn_bool(spec.get("ExcludePunctuation", False)),
            "ExcludeUppercase": cfn_bool(spec.get("ExcludeUppercase", False)),
            "ExcludeLowercase": cfn_bool(spec.get("ExcludeLowercase", False)),
            "IncludeSpace": cfn_bool(spec.get("IncludeSpace", False)),
            "RequireEachIncludedType": cfn_bool(spec.get("RequireEachIncludedType", True)),
        }
        password = str(client.get_random_password(**options)["RandomPassword"])
        if "SecretStringTemplate" in spec and "GenerateStringKey" in spec:
            document = json.loads(spec["SecretStringTemplate"])
            document[spec["GenerateStringKey"]] = password
            return json.dumps(document)
        return password

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        client = shared_client("secretsmanager", region)
        value = (
            props["SecretString"]
            if "SecretString" in props
            else cls._generated(client, props.get("GenerateSecretString", {}))
        )
        created = client.create_secret(
            Name=props.get("Name", name),
            Description=props.get("Description", ""),
            SecretString=value,
            Tags=props.get("Tags", []),
        )
        return cls(created["ARN"], {"Id": created["ARN"]})


class CloudFormationSecretsManagerRotationSchedule(ApprovalGateResource, CloudFormationModel):
    """Stands in for ``AWS::SecretsManager::RotationSchedule``, which moto's CloudFormation lacks.

    Records the rotation function and period on the secret, so that a later RotateSecret
    (``rotate_secret(SecretId=...)``, as the schedule would call it) runs the real function
    through moto. AWS also rotates once when the schedule is created (``RotateImmediatelyOnUpdate``:
    "If you don't specify this value, then by default, Secrets Manager rotates the secret
    immediately"), asynchronously: the stack does not wait for that rotation's outcome. Here that
    first rotation is left out: the functions are registered with the local cloud only after the
    stack is created, and playing it would cost each start about 30 ms of CPU.
    """

    RESOURCE_TYPE = "AWS::SecretsManager::RotationSchedule"

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        secret: Any = secretsmanager_backends[account_id][region].secrets[props["SecretId"]]
        rules = props.get("RotationRules", {})
        days = rules.get("AutomaticallyAfterDays")
        match = re.fullmatch(r"rate\((\d+) days?\)", str(rules.get("ScheduleExpression", "")))
        secret.rotation_lambda_arn = props.get("RotationLambdaARN", "")
        secret.auto_rotate_after_days = int(days if days is not None else match.group(1) if match else 0)
        secret.rotation_enabled = secret.rotation_requested = True
        return cls(f"{props['SecretId']}|rotation")


class SecretsManagerPutSecretValueIdempotency:
    """Stands in for PutSecretValue's rule that a version's value, once put, is never changed.

    "If a version with this value already exists and that version's SecretString or SecretBinary
    values are the same as those in the request then the request is ignored. [...] If a version
    with this value already exists and the version of the SecretString and SecretBinary values
    are different from those in the request, then the request fails because you can't modify a
    secret version" (botocore's secretsmanager model 2017-10-17, PutSecretValueRequest.
    ClientRequestToken; https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html).
    The failure is ``ResourceExistsException``, one of PutSecretValue's errors in that model.

    moto checks this only for a version without AWSPENDING: the pending version of a rotation
    that already has a value can be overwritten, so a rotation function that puts its new value
    twice (a retried createSecret) would pass here and fail on AWS. Here a version that has a
    value keeps it whatever its labels: the same value again is accepted and changes nothing
    (not even the labels), a different one is refused and the stored value stays. The pending
    version RotateSecret makes has no value until the rotation function puts one, so that first
    put is taken, on AWS as here.
    """

    @staticmethod
    def ignored(backend: SecretsManagerBackend, given: dict[str, Any]) -> str | None:
        """moto's answer for a put that names a version already holding its value (the request is
        ignored); None for a put moto is to make; ResourceExistsException for another value."""
        token = given.get("client_request_token")
        secret: Any = backend.secrets.get(given["secret_id"]) if token else None
        version = getattr(secret, "versions", {}).get(token) if secret is not None else None
        if version is None or ("secret_string" not in version and "secret_binary" not in version):
            return None  # a new version, or RotateSecret's pending version still without a value
        string, binary = given.get("secret_string"), given.get("secret_binary")
        if version.get("secret_string") == string and version.get("secret_binary") == binary:
            return str(secret.to_short_dict(include_version_stages=True, version_id=token))
        raise ResourceExistsException(
            f"You can't use ClientRequestToken {token} because that value is already in use for a "
            f"version of secret {secret.arn}."
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = SecretsManagerBackend.put_secret_value
        signature = inspect.signature(original)

        def put_secret_value(backend: SecretsManagerBackend, *args: Any, **kwargs: Any) -> str:
            given = signature.bind(backend, *args, **kwargs).arguments
            answer = SecretsManagerPutSecretValueIdempotency.ignored(backend, given)
            return answer if answer is not None else original(backend, *args, **kwargs)

        with mock.patch.object(SecretsManagerBackend, "put_secret_value", put_secret_value):
            yield


class _RotationStepsFailLoudly:
    """A Lambda backend whose failed invocations raise (moto's RotateSecret ignores them)."""

    def __init__(self, backend: LambdaBackend) -> None:
        self._backend = backend

    def get_function(self, function_name: str, qualifier: str | None = None) -> Any:
        return self._backend.get_function(function_name, qualifier)

    def invoke(
        self, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes | str | None:
        payload = self._backend.invoke(function_name, qualifier, body, headers, response_headers)
        if response_headers.get("x-amz-function-error"):
            raise RuntimeError(f"rotation step {json.loads(body).get('Step')} failed: {payload!r:.500}")
        return payload


def rotate_secret_with_its_function(secret_id: str, client_request_token: str | None = None) -> str:
    """Stands in for Secrets Manager's RotateSecret calling the secret's rotation function.

    moto's RotateSecret forgets the secret's function unless it is passed again, invokes it
    through the Lambda backend that only echoes payloads, and ignores what it answers. This runs the same
    RotateSecret with moto's real Lambda backend (the local cloud runs the real handler for
    createSecret, setSecret, testSecret and finishSecret) and fails if a step fails.
    Returns the new version's id.
    """
    token = client_request_token or str(uuid.uuid4())

    def backend(account_id: str, region: str) -> _RotationStepsFailLoudly:
        return _RotationStepsFailLoudly(lambda_backends[account_id][region])

    client = shared_client("secretsmanager")
    # AWS rotates with the function the secret names; moto forgets it unless it is passed again.
    function = client.describe_secret(SecretId=secret_id).get("RotationLambdaARN")
    if not function:
        raise ValueError(f"secret {secret_id} has no rotation function")
    with mock.patch("moto.awslambda.utils.get_backend", backend):
        client.rotate_secret(SecretId=secret_id, ClientRequestToken=token, RotationLambdaARN=function)
    return token
