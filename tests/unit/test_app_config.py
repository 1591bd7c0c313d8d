"""An application's registry entry names only what canaryfleet's roles may act on, and reads one way."""

import pytest
from canaryfleet.errors import RegistryEntryMalformed
from canaryfleet.models.app_config import AppConfig, read_registry_entry
from pydantic import ValidationError

from tests.unit.fakes import an_app

ELB = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
TG = f"{ELB}:targetgroup"


def entry(listener_rule_arn: str) -> dict[str, object]:
    return {
        "application": "orders-api",
        "codedeploy_application": "orders-api",
        "listener_rule_arn": listener_rule_arn,
        "canary": {
            "deployment_group": "orders-api-canary",
            "target_group_arn": f"{TG}/orders-canary/0123456789abcdef",
            "auto_scaling_group": "orders-api-canary",
        },
        "live": {
            "deployment_group": "orders-api-live",
            "target_group_arn": f"{TG}/orders-live/fedcba9876543210",
            "auto_scaling_group": "orders-api-live",
        },
    }


def test_the_fleet_stacks_listener_rule_is_accepted() -> None:
    # Given the weighted rule a fleet stack creates
    rule = f"{ELB}:listener-rule/app/shared/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"

    # When the registry entry is read, Then it names that rule
    assert AppConfig.model_validate(entry(rule)).listener_rule_arn == rule


def test_a_shared_listener_is_refused_because_shift_traffic_may_not_modify_listeners() -> None:
    # Given an entry naming the load balancer's listener instead of the fleet's own rule
    listener = f"{ELB}:listener/app/shared/50dc6c495c0c9188/f2f7dc8efc522ab2"

    # When it is read, Then it is refused: ShiftTraffic's role modifies only tagged rules
    with pytest.raises(ValidationError, match="listener_rule_arn"):
        AppConfig.model_validate(entry(listener))


RULE = f"{ELB}:listener-rule/app/orders/0123456789abcdef/0123456789abcdef/0123456789abcdef"


@pytest.mark.parametrize(
    ("approvers", "where"),
    [
        ({"emails": ["ana@example.com", "Bob Smith <bob@example.com>"]}, "approvers.emails.1"),
        ({"emails": ['ana"@example.com']}, "approvers.emails.0"),
        ({"emails": [""]}, "approvers.emails.0"),
        ({"emails": [f"{'a' * 190}@example.com"]}, "approvers.emails.0"),
        ({"slack_user_ids": ["U012AB3CD", "<!channel>"]}, "approvers.slack_user_ids.1"),
        # longer than any user id Slack sends (SlackUser): listed, it could never match a click
        ({"slack_user_ids": ["U" + "0" * 21]}, "approvers.slack_user_ids.0"),
        ({"slack_channel": "#releases"}, "approvers.slack_channel"),
    ],
)
def test_an_approver_the_platform_cannot_ask_is_refused_when_the_entry_is_read(
    approvers: dict[str, object], where: str
) -> None:
    # Given an entry whose approvers were edited by hand into something no link or message can name
    # When it is read, Then it is refused before any approver is asked, naming the member
    with pytest.raises(ValidationError) as refused:
        AppConfig.model_validate(entry(RULE) | {"approvers": approvers})

    assert [".".join(str(p) for p in e["loc"]) for e in refused.value.errors()] == [where]


def test_approvers_as_the_fleet_stack_writes_them_are_read() -> None:
    approvers = {
        "emails": ["ana@example.com"],
        "slack_user_ids": ["U012AB3CD", "W0ABC"],
        "slack_channel": "C0PAY",
    }

    config = AppConfig.model_validate(entry(RULE) | {"approvers": approvers})

    assert config.approvers.emails == ("ana@example.com",)
    assert config.approvers.slack_channel == "C0PAY"


# --- reading the registry (read_registry_entry) ---------------------------------------------


def test_an_entry_reads_from_the_bytes_or_text_ssm_holds() -> None:
    entry = an_app("ledger").model_dump_json()

    assert read_registry_entry("/canaryfleet/apps/ledger", entry.encode()) == an_app("ledger")
    assert read_registry_entry("/canaryfleet/apps/ledger", entry) == an_app("ledger")


def test_a_key_given_twice_deep_in_the_entry_is_refused_with_its_name() -> None:
    entry = (
        an_app("ledger")
        .model_dump_json()
        .replace('"deployment_group":', '"deployment_group": "x", "deployment_group":', 1)
    )

    with pytest.raises(RegistryEntryMalformed) as refused:
        read_registry_entry("/canaryfleet/apps/ledger", entry)

    assert refused.value.name == "/canaryfleet/apps/ledger"
    assert refused.value.reason == "key 'deployment_group' is given twice in one object"


@pytest.mark.parametrize("text", ["", "not json", "[" * 5000 + "]" * 5000, '{"application": NaN}'])
def test_an_entry_that_is_not_one_is_refused_with_the_models_reason(text: str) -> None:
    with pytest.raises(
        RegistryEntryMalformed, match="registry entry /canaryfleet/apps/ledger is malformed: "
    ):
        read_registry_entry("/canaryfleet/apps/ledger", text)


@pytest.mark.parametrize("name", ["ledger", "/canaryfleet/apps/", "/other/apps/ledger"])
def test_a_name_outside_the_registry_is_the_callers_mistake(name: str) -> None:
    # without <app> the entry could not be checked against it
    with pytest.raises(ValueError, match="is not a registry entry's name"):
        read_registry_entry(name, an_app("ledger").model_dump_json())
