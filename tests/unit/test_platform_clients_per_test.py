"""The runtime's cached clients, and boto3's default session the CLI's clients come from, do not
outlive the test that made them (tests/conftest.py): a test that runs under a region or keys of its
own cannot send a later test's calls there, or sign them with those keys."""

import pytest

pytest_plugins = ["pytester"]

TWO_TESTS_OF_ONE_WORKER = """
import pytest

from canaryfleet.adapters.clients import client, reset_clients


@pytest.fixture(autouse=True)
def environment(monkeypatch):  # as Lambda gives it: a region and credentials, no metadata service
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_a_notifier_made_in_another_region(monkeypatch):
    reset_clients()  # whatever the worker running this file made before
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert client("sns").meta.region_name == "eu-west-1"


def test_the_next_test_calls_the_region_of_its_own_environment():
    assert client("sns").meta.region_name == "us-east-1"
"""


def test_a_client_made_under_a_tests_region_is_not_the_next_tests(pytester: pytest.Pytester) -> None:
    # Given the suite's fixture, and two tests of one worker, the first of which changes the region
    pytester.makeconftest("from tests.conftest import platform_clients_made_in_a_test_end_with_it")
    pytester.makepyfile(test_regions=TWO_TESTS_OF_ONE_WORKER)

    # When they run one after the other in one process
    result = pytester.runpytest_inprocess("-p", "no:xdist", "-p", "no:cacheprovider", "-q")

    # Then the second test's client is made in its own region
    result.assert_outcomes(passed=2)


TWO_CLI_TESTS_OF_ONE_WORKER = """
import boto3
import pytest


def test_a_command_that_connected_with_keys(monkeypatch):
    boto3.DEFAULT_SESSION = None  # whatever the worker running this file made before
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    assert boto3.client("sts", region_name="us-east-1")._request_signer._credentials is not None


def test_the_next_test_has_no_credentials(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert boto3.client("sts", region_name="us-east-1")._request_signer._credentials is None
"""


def test_credentials_boto3s_default_session_found_are_not_the_next_tests(pytester: pytest.Pytester) -> None:
    # Given the suite's fixture, and two tests of one worker, the first of which had keys
    pytester.makeconftest("from tests.conftest import platform_clients_made_in_a_test_end_with_it")
    pytester.makepyfile(test_credentials=TWO_CLI_TESTS_OF_ONE_WORKER)

    # When they run one after the other in one process
    result = pytester.runpytest_inprocess("-p", "no:xdist", "-p", "no:cacheprovider", "-q")

    # Then the second test's client finds no credentials, as its environment says
    result.assert_outcomes(passed=2)
