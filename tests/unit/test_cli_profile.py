"""--profile names the account: its keys win over keys left in the environment; an SSO profile whose
login expired is told to log in again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import boto3
import pytest
from botocore.exceptions import TokenRetrievalError, UnauthorizedSSOTokenError
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


# An IAM Identity Center profile (the repro's AWS config): its login is `aws sso login`'s cached token.
SSO_CONFIG = """[profile oncall]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = ReleaseManager
region = eu-west-1
[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access
"""


@pytest.fixture
def sso_profile(left_over_keys: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `oncall` SSO profile, no SSO token cached (never logged in, or the cache cleared)."""
    (tmp_path / "config").write_text(SSO_CONFIG)
    monkeypatch.setenv("HOME", str(tmp_path))  # botocore's SSO token cache: ~/.aws/sso/cache


def test_an_sso_profile_never_logged_in_says_to_run_aws_sso_login(sso_profile: None) -> None:
    with pytest.raises(PlatformError) as refused:
        Platform.connect("canaryfleet", profile="oncall")

    assert str(refused.value) == (
        "the AWS SSO login of profile 'oncall' has expired (or was never made): "
        "run `aws sso login --profile oncall`, then try again"
    )


@pytest.mark.parametrize(
    "expired",
    [
        UnauthorizedSSOTokenError(),
        TokenRetrievalError(provider="sso", error_msg="Token has expired and refresh failed"),
    ],
    ids=["sso-refused-the-token", "token-not-refreshed"],
)
def test_an_expired_sso_login_is_not_said_to_be_aws_unreachable(
    sso_profile: None, monkeypatch: pytest.MonkeyPatch, expired: Exception
) -> None:
    # Given the profile named by AWS_PROFILE, whose login expired since the token was cached
    monkeypatch.setenv("AWS_PROFILE", "oncall")
    stacks = mock.Mock()
    stacks.describe_stacks.side_effect = expired

    with (
        mock.patch("canaryfleet_cli.platform.boto3.client", return_value=stacks),
        pytest.raises(PlatformError) as refused,
    ):
        Platform.connect("canaryfleet")

    assert "run `aws sso login --profile oncall`" in str(refused.value)
    assert "unreachable" not in str(refused.value)
