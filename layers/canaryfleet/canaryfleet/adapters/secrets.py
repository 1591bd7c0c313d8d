"""Secrets Manager: the approval links' signing keys and the Slack app's secret.

Values are cached for a minute per execution environment and never logged; a
verification that fails with cached keys reads them again once (a rotation elsewhere).
"""

from __future__ import annotations

import abc
import json
import re
import threading
import time
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from pydantic import ValidationError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.errors import ConfigurationError
from canaryfleet.models.approval import SlackSecret
from canaryfleet.ports.approvals import CURRENT, PENDING, PREVIOUS

if TYPE_CHECKING:  # the stubs are a development dependency: the layer does not ship them
    from mypy_boto3_secretsmanager import SecretsManagerClient

# How long a warm function trusts what it read: a key rotated out twice to revoke it (the
# signing key's description) is refused everywhere within a minute, at one read a minute.
_CACHE_SECONDS = 60.0
# A refresh asked for (a link that did not verify) reads again at most this often: forged
# links cannot turn into a stream of Secrets Manager calls.
_MIN_REFRESH_SECONDS = 30.0
_cache: dict[tuple[str, str], tuple[float, str | None]] = {}
_cache_lock = threading.Lock()


def read_secret(secret_id: str, stage: str = CURRENT, refresh: bool = False) -> str | None:
    """The secret's string at ``stage``; None if no version carries that stage."""
    key = (secret_id, stage)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and now - cached[0] < (_MIN_REFRESH_SECONDS if refresh else _CACHE_SECONDS):
        return cached[1]
    try:
        response = client("secretsmanager").get_secret_value(SecretId=secret_id, VersionStage=stage)
        value: str | None = response.get("SecretString")
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        value = None  # e.g. AWSPREVIOUS before the first rotation
    with _cache_lock:
        _cache[key] = (now, value)
    return value


def forget_secrets() -> None:
    """Drop every cached value (tests; a rotation within this environment)."""
    with _cache_lock:
        _cache.clear()


class SecretsManagerSigningKeys:
    """ApprovalSigningKey: AWSCURRENT signs; AWSCURRENT and AWSPREVIOUS verify (rotation-safe)."""

    def __init__(self, secret_id: str) -> None:
        self._secret_id = secret_id

    def current(self) -> bytes:
        value = read_secret(self._secret_id, CURRENT)
        if not value:
            raise ConfigurationError("the approval signing key has no current value")
        return value.encode()

    def accepted(self, refresh: bool = False) -> list[bytes]:
        values = [read_secret(self._secret_id, stage, refresh) for stage in (CURRENT, PREVIOUS)]
        return [v.encode() for v in values if v]


class SlackSecretSource(abc.ABC):
    @abc.abstractmethod
    def load(self) -> SlackSecret:
        """The Slack app's settings; an empty SlackSecret when Slack is not set up."""


class SecretsManagerSlackSecret(SlackSecretSource):
    def __init__(self, secret_id: str) -> None:
        self._secret_id = secret_id

    def load(self) -> SlackSecret:
        raw = read_secret(self._secret_id) or "{}"
        try:
            return SlackSecret.model_validate(json.loads(raw))
        except ValidationError as exc:
            # Its message would quote the secret's content: say only which key and what is wrong.
            wrong = "; ".join(
                f"{_key_named(error['loc'])}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)
            )
            raise ConfigurationError(f"the Slack app secret is not usable ({wrong})") from None
        except ValueError:
            raise ConfigurationError(
                "the Slack app secret is not JSON with signing_secret, bot_token or webhook_url"
            ) from None


def _key_named(where: tuple[int | str, ...]) -> str:
    """A key of the Slack secret as an error may name it: a key of the wrong name could be a
    token pasted where its name should be, so only names like the secret's own are said."""
    if not where:
        return "the secret"
    key = str(where[0])
    return key if re.fullmatch(r"[a-z_]{1,40}", key) else "a key of another name"


class SecretsManagerSecretVersions:
    """One secret's versions and staging labels, as a rotation function handles them."""

    def __init__(self, secret_id: str) -> None:
        self._secret_id = secret_id

    @property
    def _sm(self) -> SecretsManagerClient:
        return client("secretsmanager")

    def stages(self) -> tuple[bool, dict[str, list[str]]]:
        """Whether rotation is on, and each version's staging labels."""
        described = self._sm.describe_secret(SecretId=self._secret_id)
        return bool(described.get("RotationEnabled")), dict(described.get("VersionIdsToStages", {}))

    def value(self, version_id: str, stage: str) -> str | None:
        try:
            response = self._sm.get_secret_value(
                SecretId=self._secret_id, VersionId=version_id, VersionStage=stage
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        value = response.get("SecretString")
        return str(value) if value is not None else None

    def put_pending(self, version_id: str, value: str) -> None:
        self._sm.put_secret_value(
            SecretId=self._secret_id,
            ClientRequestToken=version_id,
            SecretString=value,
            VersionStages=[PENDING],
        )

    def make_current(self, version_id: str, current_version_id: str) -> None:
        self._sm.update_secret_version_stage(
            SecretId=self._secret_id,
            VersionStage=CURRENT,
            MoveToVersionId=version_id,
            RemoveFromVersionId=current_version_id,
        )

    def release_pending(self, version_id: str) -> None:
        self._sm.update_secret_version_stage(
            SecretId=self._secret_id, VersionStage=PENDING, RemoveFromVersionId=version_id
        )
