"""The target groups an Application Load Balancer already uses, read before an application joins it.

"Target Groups per Application Load Balancer: 100", not adjustable (Elastic Load Balancing,
"Quotas for your Application Load Balancers"). What counts is the quota's own definition, in
botocore's elbv2 model (TooManyUniqueTargetGroupsPerLoadBalancerException, an error of CreateRule):
"the number of unique target groups per load balancer across all listeners. If a target group is
used by multiple actions for a load balancer, it is counted as only one use." So the count walks
every listener of the load balancer and every rule of each (default rules included), and collects
the target groups their actions forward to. DescribeTargetGroups' LoadBalancerArn filter is not
used: its documentation does not say it lists exactly the groups the quota counts.

Each fleet stack adds two (its canary and live target groups, both in its listener rule's
forward action), so one load balancer holds at most 50 applications, fewer if anything else on
it forwards to a target group.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TARGET_GROUPS_PER_LOAD_BALANCER = 100
TARGET_GROUPS_PER_APPLICATION = 2  # CanaryTargetGroup and LiveTargetGroup (fleet/template.yaml)
APPLICATION_TAG = "canaryfleet:application"  # on both of a fleet stack's target groups
_TAGS_PER_CALL = 20  # DescribeTags: "You can specify up to 20 resources in a single call"
MAX_RULE_PRIORITY = 50_000  # CreateRule's Priority: 1-50000 (botocore elbv2 model, RulePriority)


@dataclass(frozen=True)
class LoadBalancerUse:
    """The target groups a load balancer's listeners forward to, each once; and the rules of the
    listener asked about, by priority (each with the target groups it forwards to)."""

    load_balancer_arn: str
    target_groups: frozenset[str]
    rules_by_priority: dict[int, frozenset[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``app/<name>/<id>``, as the console and CloudWatch's LoadBalancer dimension show it."""
        return self.load_balancer_arn.split(":loadbalancer/", 1)[-1]


def forwarded_target_groups(actions: Iterable[dict[str, Any]]) -> set[str]:
    """The target groups actions forward to: TargetGroupArn and ForwardConfig's TargetGroups."""
    groups: set[str] = set()
    for action in actions:
        if action.get("TargetGroupArn"):
            groups.add(str(action["TargetGroupArn"]))
        for group in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            if group.get("TargetGroupArn"):
                groups.add(str(group["TargetGroupArn"]))
    return groups


def load_balancer_use(elbv2: Any, listener_arn: str) -> LoadBalancerUse:
    """The unique target groups the load balancer of ``listener_arn`` uses (every page read).

    Raises botocore's ClientError as AWS answers it (ListenerNotFound, AccessDenied, ...).
    """
    listener = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
    balancer = str(listener["LoadBalancerArn"])
    groups: set[str] = set()
    priorities: dict[int, frozenset[str]] = {}
    for page in elbv2.get_paginator("describe_listeners").paginate(LoadBalancerArn=balancer):
        for each in page["Listeners"]:
            groups |= forwarded_target_groups(each.get("DefaultActions") or [])
            for rules in elbv2.get_paginator("describe_rules").paginate(ListenerArn=each["ListenerArn"]):
                for rule in rules["Rules"]:
                    forwarded = forwarded_target_groups(rule.get("Actions") or [])
                    groups |= forwarded
                    # A rule's Priority is a string, "default" for the default rule.
                    if each["ListenerArn"] == listener_arn and str(rule.get("Priority", "")).isdigit():
                        priorities[int(rule["Priority"])] = frozenset(forwarded)
    return LoadBalancerUse(balancer, frozenset(groups), priorities)


def _applications(elbv2: Any, target_groups: Iterable[str]) -> dict[str, str]:
    """Each of ``target_groups`` a fleet stack made, and the application it names (its tag)."""
    arns = sorted(target_groups)
    found: dict[str, str] = {}
    for start in range(0, len(arns), _TAGS_PER_CALL):
        described = elbv2.describe_tags(ResourceArns=arns[start : start + _TAGS_PER_CALL])
        for resource in described["TagDescriptions"]:
            tags = {tag["Key"]: tag.get("Value") for tag in resource.get("Tags") or []}
            if tags.get(APPLICATION_TAG):
                found[str(resource["ResourceArn"])] = str(tags[APPLICATION_TAG])
    return found


def groups_of_application(elbv2: Any, target_groups: Iterable[str], application: str) -> set[str]:
    """Those of ``target_groups`` that ``application``'s fleet stack made (tagged with its name)."""
    return {arn for arn, owner in _applications(elbv2, target_groups).items() if owner == application}


def applications_of(elbv2: Any, target_groups: Iterable[str]) -> set[str]:
    """The applications whose fleet stacks made any of ``target_groups``."""
    return set(_applications(elbv2, target_groups).values())
