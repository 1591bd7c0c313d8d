"""Elastic Load Balancing: what moto's target groups lack in fleet stacks, and the quotas of a
listener rule's conditions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.elbv2.exceptions import InvalidConditionValueError
from moto.elbv2.models import ELBv2Backend, FakeTargetGroup, elbv2_backends

from canaryfleet_local.standins.cfn_resources import completing_cloudformation_create


class CloudFormationTargetGroupProperties:
    """Stands in for what moto's ``AWS::ElasticLoadBalancingV2::TargetGroup`` lacks.

    moto answers no ``Fn::GetAtt`` of a target group (``TargetGroupName``,
    ``TargetGroupFullName``, ``LoadBalancerArns``) and skips its ``Tags`` and
    ``TargetGroupAttributes`` (the deregistration delay the drains rely on). While
    installed, the attributes resolve as on AWS and the skipped properties are applied
    through moto's ELBv2 backend after the group is created.
    """

    @staticmethod
    def attribute(target_group: Any, attribute_name: str) -> Any:
        if attribute_name == "TargetGroupName":
            return target_group.name
        if attribute_name == "TargetGroupFullName":
            return target_group.arn.split(":")[-1]  # targetgroup/<name>/<id>
        if attribute_name == "LoadBalancerArns":
            return list(target_group.load_balancer_arns)
        if attribute_name == "TargetGroupArn":
            return target_group.arn
        raise UnformattedGetAttTemplateException()

    @staticmethod
    def _complete(group: Any, props: dict[str, Any], account_id: str, region_name: str) -> None:
        backend = elbv2_backends[account_id][region_name]
        attributes = {item["Key"]: str(item["Value"]) for item in props.get("TargetGroupAttributes", [])}
        if attributes:
            backend.modify_target_group_attributes(group.arn, attributes)
        if props.get("Tags"):
            backend.add_tags([group.arn], props["Tags"])

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        with (
            completing_cloudformation_create(FakeTargetGroup, self._complete),
            mock.patch.object(FakeTargetGroup, "get_cfn_attribute", self.attribute, create=True),
        ):
            yield


# Application Load Balancer listener rules ("Condition types for listener rules"): "You can specify
# up to three match evaluations per condition", "up to five match evaluations per rule", and
# wildcards in host-header, http-header, path-pattern and query-string match evaluations up to five
# a rule; the quotas page lists "Condition values per rule", "Condition wildcards per rule" and
# "Match evaluations per rule", 5 each, not adjustable (load-balancer-limits.html).
MATCH_EVALUATIONS_PER_CONDITION = 3
MATCH_EVALUATIONS_PER_RULE = 5
WILDCARDS_PER_RULE = 5
_CONFIGS = (
    "HostHeaderConfig",
    "PathPatternConfig",
    "HttpHeaderConfig",
    "QueryStringConfig",
    "HttpRequestMethodConfig",
    "SourceIpConfig",
)


def _match_values(condition: dict[str, Any]) -> list[str]:
    """One string for each match evaluation of a condition: its Values, or its config's (a query
    string's key and value pair is one evaluation, both parts written into it)."""
    values = [str(value) for value in condition.get("Values") or []]
    for config in _CONFIGS:
        for value in (condition.get(config) or {}).get("Values") or []:
            pair = isinstance(value, dict)
            values.append("=".join(str(part) for part in value.values() if part) if pair else str(value))
    return values


def listener_rule_condition_problem(conditions: list[dict[str, Any]]) -> str | None:
    """Why an Application Load Balancer refuses these listener rule conditions; None if it takes them."""
    total = wildcards = 0
    for condition in conditions:
        values = _match_values(condition)
        if len(values) > MATCH_EVALUATIONS_PER_CONDITION:
            return (
                f"The '{condition.get('Field')}' field contains too many values; the limit is "
                f"'{MATCH_EVALUATIONS_PER_CONDITION}'"
            )
        total += len(values)
        wildcards += sum(value.count("*") + value.count("?") for value in values)
    if total > MATCH_EVALUATIONS_PER_RULE:
        return f"A rule can only have '{MATCH_EVALUATIONS_PER_RULE}' condition values"
    if wildcards > WILDCARDS_PER_RULE:
        return f"A rule can only have '{WILDCARDS_PER_RULE}' wildcards"
    return None


@contextlib.contextmanager
def listener_rule_condition_quotas() -> Iterator[None]:
    """Stands in for CreateRule and ModifyRule refusing conditions past the rule quotas above.

    moto checks each condition's values alone (at most 128 characters, one value without a
    config), never their count. Here a rule of more match evaluations or wildcards than AWS takes
    is refused as ``ValidationError``, the error moto gives its other condition checks (the quota
    is documented; AWS's error code and words past it are not, and are assumed), so a fleet stack
    whose HostHeaders and PathPatterns go past them fails here as it would on AWS.
    """
    original = ELBv2Backend._validate_conditions

    def validate(backend: ELBv2Backend, conditions: list[dict[str, Any]]) -> None:
        original(backend, conditions)
        problem = listener_rule_condition_problem(conditions)
        if problem is not None:
            raise InvalidConditionValueError(problem)

    with mock.patch.object(ELBv2Backend, "_validate_conditions", validate):
        yield
