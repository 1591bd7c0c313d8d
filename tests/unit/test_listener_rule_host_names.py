"""The local cloud's load balancer refuses the host names an Application Load Balancer refuses."""

from __future__ import annotations

import pytest

from canaryfleet_local.standins.elbv2 import listener_rule_condition_problem


def _hosts(*values: str) -> list[dict[str, object]]:
    return [{"Field": "host-header", "HostHeaderConfig": {"Values": list(values)}}]


@pytest.mark.parametrize("host", ["orders", "orders.internal1", "10.0.0.12", "orders.example.*", "orders."])
def test_a_host_name_without_a_domain_of_letters_is_refused(host: str) -> None:
    # ELB API Reference, HostHeaderConditionConfig: "You must include at least one "." character.
    # You can include only alphabetical characters after the final "." character."
    problem = listener_rule_condition_problem(_hosts("orders.example.com", host))

    assert problem is not None and f"'{host}'" in problem


@pytest.mark.parametrize("host", ["orders.example.com", "*.example.com", "orders-v?.example.co", "a.b"])
def test_a_host_name_with_a_domain_of_letters_is_taken(host: str) -> None:
    assert listener_rule_condition_problem(_hosts(host)) is None


def test_a_path_is_not_held_to_the_host_name_rule() -> None:
    assert listener_rule_condition_problem([{"Field": "path-pattern", "Values": ["/v2/*"]}]) is None
