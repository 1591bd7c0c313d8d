"""The acceptance suite's configuration, its skip without credentials, and its IAM policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.aws.config import (
    ENV_PREFIX,
    AcceptanceConfigError,
    load_deploy_config,
    load_story_config,
)
from tests.aws.gate import NO_CREDENTIALS, NOT_ASKED, asked_for, reason_to_skip
from tests.aws.policy import POLICY_FILE, required_actions, split

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_acceptance_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


# --- the story's configuration ------------------------------------------------------------------
def test_the_story_has_defaults_and_the_fleet_stack_follows_the_application(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given only the application named
    monkeypatch.setenv("CANARYFLEET_AWS_APPLICATION", "shop-api")
    # When the configuration is read
    config = load_story_config()
    # Then the fleet stack is the one `canaryfleet app onboard` names, and no endpoint means AWS
    assert config.fleet_stack_name == "canaryfleet-app-shop-api"
    assert (config.region, config.platform_stack, config.endpoint_url) == (
        "us-east-1",
        "canaryfleet-acceptance",
        None,
    )


def test_a_local_cloud_is_an_endpoint_and_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARYFLEET_AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("CANARYFLEET_AWS_PLATFORM_STACK", "canaryfleet")
    monkeypatch.setenv("CANARYFLEET_AWS_FLEET_STACK", "hello-fleet")
    config = load_story_config()
    assert (config.endpoint_url, config.platform_stack, config.fleet_stack_name) == (
        "http://127.0.0.1:4566",
        "canaryfleet",
        "hello-fleet",
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REGION", "Virginia"),
        ("APPLICATION", "Hello_App"),
        ("ENDPOINT_URL", "localhost:4566"),
        ("APPROVER_EMAIL", "not an address"),
        ("PLATFORM_STACK", "1-starts-with-a-digit"),
    ],
)
def test_a_wrong_value_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(ENV_PREFIX + variable, value)
    with pytest.raises(AcceptanceConfigError, match=ENV_PREFIX + variable):
        load_story_config()


def test_a_samconfig_profile_names_the_stack_and_region_unless_a_variable_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a samconfig.toml profile with its own stack name and region
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        'version = 0.1\n[sandbox.global.parameters]\nstack_name = "cf-sandbox"\nregion = "eu-west-1"\n'
    )
    monkeypatch.setenv("CANARYFLEET_AWS_SAMCONFIG_ENV", "sandbox")
    # When the configuration is read, then the profile gives both
    config = load_story_config(samconfig)
    assert (config.platform_stack, config.region) == ("cf-sandbox", "eu-west-1")
    # When a variable names the region too, then the variable wins
    monkeypatch.setenv("CANARYFLEET_AWS_REGION", "eu-central-1")
    assert load_story_config(samconfig).region == "eu-central-1"
    # When the profile does not exist, then the error lists those that do
    monkeypatch.setenv("CANARYFLEET_AWS_SAMCONFIG_ENV", "prod")
    with pytest.raises(AcceptanceConfigError, match=r"no profile 'prod'.*sandbox"):
        load_story_config(samconfig)


# --- the deploy's configuration -----------------------------------------------------------------
def test_the_deploy_reads_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARYFLEET_AWS_VPC_ID", "vpc-0abc")
    monkeypatch.setenv("CANARYFLEET_AWS_ALB_SUBNETS", "subnet-0a, subnet-0b")
    monkeypatch.setenv("CANARYFLEET_AWS_ANSIBLE_REPO", "https://example.com/ansible.git")
    deploy = load_deploy_config()
    # Then the instances use the ALB's subnets unless told otherwise, with the cheap default types
    assert deploy.subnets_of_instances == ["subnet-0a", "subnet-0b"]
    assert deploy.instance_types == ["t3.small", "t3a.small"]
    monkeypatch.setenv("CANARYFLEET_AWS_INSTANCE_SUBNETS", "subnet-0c,subnet-0d")
    assert load_deploy_config().subnets_of_instances == ["subnet-0c", "subnet-0d"]


def test_the_deploy_names_every_missing_or_wrong_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARYFLEET_AWS_ALB_SUBNETS", "subnet-0a")
    with pytest.raises(AcceptanceConfigError) as raised:
        load_deploy_config()
    said = str(raised.value)
    assert "CANARYFLEET_AWS_VPC_ID" in said
    assert "CANARYFLEET_AWS_ANSIBLE_REPO" in said
    assert "CANARYFLEET_AWS_ALB_SUBNETS" in said  # one subnet: an ALB needs two AZs


# --- when it runs -------------------------------------------------------------------------------
def test_it_runs_only_when_tests_aws_is_named() -> None:
    assert asked_for(["tests/aws"], REPO_ROOT)
    assert asked_for([str(REPO_ROOT / "tests" / "aws" / "test_acceptance.py") + "::test_x"], REPO_ROOT)
    assert not asked_for(["tests"], REPO_ROOT)
    assert not asked_for(["tests/unit", "-k", "aws"], REPO_ROOT)
    # The whole suite (`make test`) skips it without looking for credentials
    assert reason_to_skip([], REPO_ROOT) == NOT_ASKED


def _without_credentials(tmp_path: Path) -> dict[str, str]:
    """An environment in which boto3's chain can find nothing (and does not ask the instance)."""
    leaks = (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in leaks and not k.startswith(("AWS_CONTAINER", ENV_PREFIX))
    }
    empty = tmp_path / "empty"
    empty.write_text("")
    return env | {
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_CONFIG_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _run_python(env: dict[str, str], args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """This interpreter with ``args`` in the repository, its output captured."""
    return subprocess.run(
        [sys.executable, *args],
        check=False,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_make_test_aws_without_credentials_says_so_in_one_line_and_exits_0_within_seconds(
    tmp_path: Path,
) -> None:
    # Given a machine without AWS credentials
    env = _without_credentials(tmp_path)
    # When the suite's entry point (`make test-aws`) runs
    started = time.monotonic()
    finished = _run_python(env, ["-m", "tests.aws"], timeout=60)
    took = time.monotonic() - started
    # Then it prints one line, exits 0, and does so within seconds
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == [NO_CREDENTIALS]
    assert took < 15, took


def test_pytest_tests_aws_without_credentials_skips_with_that_line_and_exits_0(tmp_path: Path) -> None:
    env = _without_credentials(tmp_path)
    finished = _run_python(env, ["-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/aws"], timeout=120)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    skipped = [line for line in finished.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped == [f"SKIPPED [1] tests/aws/test_acceptance.py: {NO_CREDENTIALS}"]


# --- the runner's permissions -------------------------------------------------------------------
def test_the_committed_policy_grants_every_action_the_run_needs() -> None:
    # Given the actions the templates' resource types and the suite's own calls need
    committed = json.loads(POLICY_FILE.read_text())
    granted = set(committed["Statement"][0]["Action"])
    # Then the committed policy lacks none (regenerate: python -m tests.aws.policy)
    assert sorted(required_actions() - granted) == []
    # And split into managed policies, each part fits IAM's limit and together they grant it all
    parts = split(committed)
    assert all(len(json.dumps(p, separators=(",", ":"))) <= 6_144 for p in parts)
    assert {a for p in parts for a in p["Statement"][0]["Action"]} == granted
