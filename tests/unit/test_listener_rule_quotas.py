"""The listener rule quotas the local cloud's CreateRule and ModifyRule hold (standins/elbv2.py).

"You can specify up to three match evaluations per condition", five a rule, and five wildcards a
rule (Elastic Load Balancing, "Condition types for listener rules").
"""

from __future__ import annotations

from typing import Any

import pytest

from canaryfleet_local.standins.elbv2 import listener_rule_condition_problem


def _hosts(*values: str) -> dict[str, Any]:
    return {"Field": "host-header", "HostHeaderConfig": {"Values": list(values)}}


def _paths(*values: str) -> dict[str, Any]:
    return {"Field": "path-pattern", "PathPatternConfig": {"Values": list(values)}}


def _query(*pairs: tuple[str | None, str]) -> dict[str, Any]:
    values = [{"Key": key, "Value": value} if key else {"Value": value} for key, value in pairs]
    return {"Field": "query-string", "QueryStringConfig": {"Values": values}}


@pytest.mark.parametrize(
    ("conditions", "problem"),
    [
        ([_hosts("a.example.com", "b.example.com", "c.example.com")], None),
        ([_hosts("a.example.com", "b.example.com", "c.example.com", "d.example.com")], "limit is '3'"),
        ([_hosts("a.example.com", "b.example.com"), _paths("/a", "/b", "/c")], None),
        (
            [_hosts("a.example.com", "b.example.com", "c.example.com"), _paths("/a", "/b", "/c")],
            "'5' condition",
        ),
        # A query string's key and value are one match evaluation
        ([_query(("a", "1"), ("b", "2"), ("c", "3"))], None),
        ([_query(("a", "1"), ("b", "2"), ("c", "3"), (None, "4"))], "limit is '3'"),
        ([_hosts("*.example.com"), _paths("/a/*", "/b/*", "/c/??")], None),
        ([_hosts("*.example.com"), _paths("/a/*", "/b/*", "/c/???")], "'5' wildcards"),
        ([{"Field": "host-header", "Values": ["a.example.com"]}], None),
    ],
)
def test_a_rule_takes_three_evaluations_a_condition_five_in_all_and_five_wildcards(
    conditions: list[dict[str, Any]], problem: str | None
) -> None:
    said = listener_rule_condition_problem(conditions)

    assert (said is None) if problem is None else (said is not None and problem in said)
