"""The runtime's cached clients do not outlive the test that made them (tests/conftest.py), so a
test that runs under a region of its own cannot send a later test's calls there."""

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
