"""Elastic Load Balancing: what moto's target groups and listener rules lack in fleet stacks, the
quotas of a listener rule's conditions, and the target groups one Application Load Balancer may use."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any
from unittest import mock

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.elbv2.exceptions import ELBClientError, InvalidConditionValueError
from moto.elbv2.models import ELBv2Backend, FakeListener, FakeListenerRule, FakeTargetGroup, elbv2_backends

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


class CloudFormationListenerRuleTags:
    """Stands in for CloudFormation tagging an ``AWS::ElasticLoadBalancingV2::ListenerRule``.

    The resource's schema in the CloudFormation registry has ``Tags`` (``"taggable": true``,
    ``"tagOnCreate": true``; cfn-lint carries the schema), and AWS's handler tags the rule as it
    creates it (``elasticloadbalancing:AddTags`` among its create permissions). moto's resource
    skips them, so a rule made by a fleet stack carried no tag and a grant conditioned on the
    rule's ``elasticloadbalancing:ResourceTag`` could never match it. While installed, a rule a
    stack creates carries the template's tags. (The local cloud creates fleet stacks, never
    updates them.)
    """

    @staticmethod
    def _tag(rule: Any, props: dict[str, Any], account_id: str, region_name: str) -> None:
        if props.get("Tags"):
            elbv2_backends[account_id][region_name].add_tags([rule.arn], props["Tags"])

    def installed(self) -> AbstractContextManager[Any]:
        return completing_cloudformation_create(FakeListenerRule, self._tag)


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


# ELB API Reference, HostHeaderConditionConfig, Values: "The host names ... The following wildcard
# characters are supported: * ... and ? ... You must include at least one "." character. You can
# include only alphabetical characters after the final "." character."
_HOST_NAME = re.compile(r".*\.[A-Za-z]+")


def _host_name_problem(condition: dict[str, Any]) -> str | None:
    if condition.get("Field") != "host-header":
        return None
    for value in _match_values(condition):
        if not _HOST_NAME.fullmatch(value):
            return (
                f"The host name '{value}' must include at least one '.' and only alphabetical characters "
                "after the final '.'"
            )
    return None


def listener_rule_condition_problem(conditions: list[dict[str, Any]]) -> str | None:
    """Why an Application Load Balancer refuses these listener rule conditions; None if it takes them."""
    total = wildcards = 0
    for condition in conditions:
        problem = _host_name_problem(condition)
        if problem is not None:
            return problem
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


# "Target Groups per Application Load Balancer: 100", not adjustable (Elastic Load Balancing,
# "Quotas for your Application Load Balancers", load-balancer-limits.html). botocore's elbv2 model
# (2015-12-01) names the refusal among the errors of CreateListener, CreateRule, ModifyListener
# and ModifyRule: TooManyUniqueTargetGroupsPerLoadBalancerException (error code
# TooManyUniqueTargetGroupsPerLoadBalancer, HTTP 400), "You've reached the limit on the number of
# unique target groups per load balancer across all listeners. If a target group is used by
# multiple actions for a load balancer, it is counted as only one use."
TARGET_GROUPS_PER_LOAD_BALANCER = 100


class TooManyUniqueTargetGroupsPerLoadBalancerError(ELBClientError):
    code = "TooManyUniqueTargetGroupsPerLoadBalancer"
    message = (
        "You've reached the limit on the number of unique target groups per load balancer across all "
        "listeners. If a target group is used by multiple actions for a load balancer, it is counted "
        "as only one use."
    )


def forwarded_target_groups(actions: Iterable[dict[str, Any]]) -> set[str]:
    """The target groups actions forward to: a forward action's TargetGroupArn and its
    ForwardConfig's TargetGroups (either or both may be given).

    Written again here, not shared with the CLI's count (canaryfleet_cli.target_group_quota): the
    stand-in plays AWS's side, and a mistake shared by both would hide in both."""
    groups: set[str] = set()
    for action in actions:
        if action.get("TargetGroupArn"):
            groups.add(str(action["TargetGroupArn"]))
        for group in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            if group.get("TargetGroupArn"):
                groups.add(str(group["TargetGroupArn"]))
    return groups


def _listener(backend: ELBv2Backend, listener_arn: str) -> FakeListener | None:
    for balancer in backend.load_balancers.values():
        if listener_arn in balancer.listeners:
            return balancer.listeners[listener_arn]
    return None


def _rule_listener(backend: ELBv2Backend, rule_arn: str) -> FakeListener | None:
    for balancer in backend.load_balancers.values():
        for listener in balancer.listeners.values():
            if rule_arn in {rule.arn for rule in listener.rules.values()}:
                return listener
    return None


def _refuse_past_the_quota(
    backend: ELBv2Backend,
    load_balancer_arn: str,
    added: Iterable[dict[str, Any]] = (),
    replaced: dict[str, list[dict[str, Any]]] | None = None,
) -> None:
    """Refuse a change that would make the load balancer use more than 100 target groups.

    ``added`` are the new rule's (or listener's) actions; ``replaced`` maps a rule ARN to the
    actions that take the place of its own.
    """
    balancer = backend.load_balancers.get(load_balancer_arn)
    if balancer is None:
        return  # moto's own check refuses it
    replaced = replaced or {}
    used = forwarded_target_groups(added)
    for listener in balancer.listeners.values():
        for rule in listener.rules.values():
            actions = replaced.get(rule.arn)
            used |= forwarded_target_groups(
                actions if actions is not None else (action.data for action in rule.actions)
            )
    if len(used) > TARGET_GROUPS_PER_LOAD_BALANCER:
        raise TooManyUniqueTargetGroupsPerLoadBalancerError()


@contextlib.contextmanager
def load_balancer_target_group_quota() -> Iterator[None]:
    """Stands in for an Application Load Balancer using at most 100 unique target groups.

    moto takes any number. Here CreateRule, ModifyRule, CreateListener and ModifyListener (the
    calls whose actions forward to target groups, called directly or by CloudFormation) are
    refused with ``TooManyUniqueTargetGroupsPerLoadBalancer`` when, after them, the actions of all
    the load balancer's listeners and rules (default actions included) would forward to more than
    100 target groups, each counted once however many actions use it; nothing is changed. So the
    fleet stack of a 51st application on one load balancer fails at its listener rule here as it
    does on AWS (fleet/README.md, "Fifty applications per load balancer").
    """
    create_rule = ELBv2Backend.create_rule
    modify_rule = ELBv2Backend.modify_rule
    create_listener = ELBv2Backend.create_listener
    modify_listener = ELBv2Backend.modify_listener

    def checked_create_rule(
        backend: ELBv2Backend,
        listener_arn: str,
        conditions: list[dict[str, Any]],
        priority: int,
        actions: list[dict[str, Any]],
        tags: list[dict[str, str]] | None = None,
    ) -> Any:
        listener = _listener(backend, listener_arn)
        if listener is not None:
            _refuse_past_the_quota(backend, listener.load_balancer_arn, added=actions)
        return create_rule(backend, listener_arn, conditions, priority, actions, tags)

    def checked_modify_rule(
        backend: ELBv2Backend,
        rule_arn: str,
        conditions: list[dict[str, Any]],
        actions: list[dict[str, Any]],
    ) -> Any:
        listener = _rule_listener(backend, rule_arn) if actions else None  # no actions: kept as they are
        if listener is not None:
            _refuse_past_the_quota(backend, listener.load_balancer_arn, replaced={rule_arn: actions})
        return modify_rule(backend, rule_arn, conditions, actions)

    def checked_create_listener(
        backend: ELBv2Backend,
        load_balancer_arn: str,
        protocol: str,
        port: str,
        ssl_policy: str,
        certificate: str | None,
        actions: list[dict[str, Any]],
        alpn_policy: list[str] | None = None,
        tags: list[dict[str, str]] | None = None,
    ) -> Any:
        _refuse_past_the_quota(backend, load_balancer_arn, added=actions)
        return create_listener(
            backend, load_balancer_arn, protocol, port, ssl_policy, certificate, actions, alpn_policy, tags
        )

    def checked_modify_listener(
        backend: ELBv2Backend,
        arn: str,
        port: str | None = None,
        protocol: str | None = None,
        ssl_policy: str | None = None,
        certificates: list[dict[str, Any]] | None = None,
        actions: list[dict[str, Any]] | None = None,
    ) -> Any:
        listener = _listener(backend, arn) if actions else None  # no actions: the default ones stay
        if listener is not None and actions:
            # The listener's default actions are its default rule's.
            default = next(rule.arn for rule in listener.rules.values() if rule.is_default)
            _refuse_past_the_quota(backend, listener.load_balancer_arn, replaced={default: actions})
        return modify_listener(backend, arn, port, protocol, ssl_policy, certificates, actions)

    with (
        mock.patch.object(ELBv2Backend, "create_rule", checked_create_rule),
        mock.patch.object(ELBv2Backend, "modify_rule", checked_modify_rule),
        mock.patch.object(ELBv2Backend, "create_listener", checked_create_listener),
        mock.patch.object(ELBv2Backend, "modify_listener", checked_modify_listener),
    ):
        yield
