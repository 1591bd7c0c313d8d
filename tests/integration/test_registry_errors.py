"""The registry says "not onboarded" only when the entry is missing: SSM's other errors are raised
as they are, so a throttled or denied read retries the upload instead of rejecting it for good."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from canaryfleet.adapters import registry
from canaryfleet.adapters.clients import client, reset_clients
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.errors import ConfigurationError, UnknownApplication
from canaryfleet.models.app_config import registry_parameter
from moto import mock_aws

from tests.unit.fakes import an_app


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        reset_clients()
        registry._provider.cache_clear()
        yield client("ssm")
    registry._provider.cache_clear()
    reset_clients()


def test_a_missing_entry_is_an_application_not_onboarded(ssm: Any) -> None:
    with pytest.raises(UnknownApplication, match="'ledger' is not onboarded"):
        SsmRegistry().get("ledger")


@pytest.mark.parametrize("code", ["ThrottlingException", "AccessDeniedException", "ExpiredTokenException"])
def test_any_other_error_of_ssm_is_raised_as_it_is(ssm: Any, code: str) -> None:
    refused = ClientError({"Error": {"Code": code, "Message": "no"}}, "GetParameter")
    with mock.patch.object(ssm, "get_parameter", side_effect=refused), pytest.raises(ClientError) as raised:
        SsmRegistry().get("ledger")

    assert raised.value.response["Error"]["Code"] == code


@pytest.mark.parametrize("code", ["ThrottlingException", "AccessDeniedException", "ExpiredTokenException"])
def test_an_error_reading_the_whole_registry_is_raised_as_ssm_said_it(ssm: Any, code: str) -> None:
    # Powertools wraps it in GetParameterError, which neither the functions' retries nor the
    # CLI's one-line AWS errors know
    refused = ClientError({"Error": {"Code": code, "Message": "no"}}, "GetParametersByPath")
    with (
        mock.patch.object(ssm, "get_parameters_by_path", side_effect=refused),
        pytest.raises(ClientError) as raised,
    ):
        SsmRegistry().all()

    assert raised.value.response["Error"]["Code"] == code


def test_an_entry_edited_into_something_invalid_names_the_entry_and_the_field(ssm: Any) -> None:
    # Given an entry someone edited by hand in the console: its canary group's name emptied
    entry = an_app("ledger").model_dump(mode="json")
    entry["canary"]["auto_scaling_group"] = ""
    ssm.put_parameter(Name=registry_parameter("ledger"), Value=json.dumps(entry), Type="String")

    with pytest.raises(ConfigurationError) as refused:
        SsmRegistry().get("ledger")

    said = str(refused.value)
    assert said.startswith("registry entry /canaryfleet/apps/ledger is malformed: canary.auto_scaling_group:")
    assert "Value error" not in said


def test_an_entry_giving_a_key_twice_is_refused_not_read_as_its_last(ssm: Any) -> None:
    # Given an entry whose approvers are given twice: a fleet stack's RolloutPolicy written so as to
    # close the policy and go on (CloudFormation writes the parameter into the entry as given)
    entry = json.dumps(an_app("ledger").model_dump(mode="json"))
    twice = entry[:-1] + ', "approvers": {"emails": ["mallory@example.com"]}}'
    ssm.put_parameter(Name=registry_parameter("ledger"), Value=twice, Type="String")

    # Then neither reading takes the entry: JSON parsers keep the last value, the stack's wish the first
    with pytest.raises(ConfigurationError) as refused:
        SsmRegistry().get("ledger")
    listing = SsmRegistry().listing()

    assert str(refused.value) == (
        "registry entry /canaryfleet/apps/ledger is malformed: key 'approvers' is given twice in one object"
    )
    assert listing.found == []
    assert listing.left_out == {"/canaryfleet/apps/ledger": str(refused.value)}


def test_an_entry_naming_another_application_is_refused(ssm: Any) -> None:
    # Given ledger's entry copied by hand under payments' name
    entry = an_app("ledger").model_dump_json()
    ssm.put_parameter(Name=registry_parameter("payments"), Value=entry, Type="String")

    # Then a rollout of payments is not sent to ledger's groups, and listing leaves it out
    with pytest.raises(ConfigurationError, match="names application 'ledger', not 'payments'"):
        SsmRegistry().get("payments")
    assert SsmRegistry().listing().found == []


def test_an_entry_holding_a_rollouts_serving_color_is_refused(ssm: Any) -> None:
    # Given a blue/green entry holding live_color, which only a rollout's copy carries (its
    # release's serving color), as if a rollout's copy had been written back by hand
    entry = an_app("ledger").model_copy(update={"strategy": "blue_green"}).for_release("green")
    ssm.put_parameter(Name=registry_parameter("ledger"), Value=entry.model_dump_json(), Type="String")

    # Then it is refused: read as written, every release would take the stack's groups swapped
    with pytest.raises(ConfigurationError, match="live_color is set on a rollout's copy only"):
        SsmRegistry().get("ledger")
