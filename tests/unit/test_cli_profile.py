"""--profile names the account: its keys win over keys left in the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from canaryfleet.adapters.clients import client, use_profile
from moto import mock_aws

from canaryfleet_cli.platform import Platform, PlatformError

STAGING_KEY, PROD_KEY = "AKIASTAGINGLEFTOVER01", "AKIAPRODUCTIONPROFILE"


@pytest.fixture
def left_over_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keys for staging in the environment, and a `prod` profile in the shared files."""
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[prod]\naws_access_key_id = {PROD_KEY}\naws_secret_access_key = prod-secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", STAGING_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "staging-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    # Touched first, so that the undo also removes what Platform.connect sets.
    monkeypatch.setenv("AWS_PROFILE", "")
    monkeypatch.delenv("AWS_PROFILE")
    yield
    use_profile(None)
    boto3.DEFAULT_SESSION = None


def _key(made: object) -> str:
    return str(made._request_signer._credentials.access_key)  # type: ignore[attr-defined]


def test_the_profile_named_on_the_command_line_is_the_one_every_client_signs_with(
    left_over_keys: None,
) -> None:
    # Given an operator whose shell still holds staging keys
    with mock_aws():
        # When a command connects with --profile prod (the stack does not exist here)
        with pytest.raises(PlatformError, match="stack 'canaryfleet' in eu-west-1: "):
            Platform.connect("canaryfleet", region="eu-west-1", profile="prod")

        # Then the CLI's own clients and the runtime's both sign as prod, not as staging
        assert _key(boto3.client("s3")) == PROD_KEY
        assert _key(client("dynamodb")) == PROD_KEY


def test_a_profile_that_does_not_exist_is_said_in_words(left_over_keys: None) -> None:
    with pytest.raises(PlatformError, match="no AWS profile named 'prdo'"):
        Platform.connect("canaryfleet", profile="prdo")
