"""The local cloud holds an Application Load Balancer to 100 unique target groups, as AWS does.

"Target Groups per Application Load Balancer: 100", not adjustable (Elastic Load Balancing,
"Quotas for your Application Load Balancers"); past it CreateRule, ModifyRule, CreateListener and
ModifyListener are refused with TooManyUniqueTargetGroupsPerLoadBalancer, a target group "used by
multiple actions for a load balancer ... counted as only one use" (botocore elbv2 2015-12-01).
moto takes any number. src/canaryfleet_local/FIDELITY.md lists the rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from canaryfleet_local.cloud import LocalCloud, LocalCloudError
from canaryfleet_local.fleet import deploy_fleet, ensure_network, fleet_stack_name
from canaryfleet_local.standins.elbv2 import load_balancer_target_group_quota
from tests.helpers import a_load_balancer
from tests.integration.helpers import moto_account

REGION = "eu-west-1"
QUOTA = 100


@dataclass
class Balancer:
    elbv2: Any
    arn: str
    listener: str
    groups: list[str]  # 101 target groups, none used yet

    def rule(self, priority: int, *groups: str) -> dict[str, Any]:
        """CreateRule's arguments: a host rule forwarding to ``groups`` (ForwardConfig, as the fleet's)."""
        return {
            "ListenerArn": self.listener,
            "Priority": priority,
            "Conditions": [
                {"Field": "host-header", "HostHeaderConfig": {"Values": [f"r{priority}.example.com"]}}
            ],
            "Actions": [forward(*groups)],
        }

    def fill(self, applications: int) -> list[str]:
        """Rules of ``applications`` fleets, each forwarding to two groups of its own; their ARNs."""
        return [
            self.elbv2.create_rule(**self.rule(n + 1, self.groups[2 * n], self.groups[2 * n + 1]))["Rules"][
                0
            ]["RuleArn"]
            for n in range(applications)
        ]

    def rule_count(self) -> int:
        pages = self.elbv2.get_paginator("describe_rules").paginate(ListenerArn=self.listener)
        return sum(len(page["Rules"]) for page in pages)


def forward(*groups: str) -> dict[str, Any]:
    return {
        "Type": "forward",
        "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": group, "Weight": 1} for group in groups]},
    }


def refused(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return {
        "code": caught.value.response["Error"]["Code"],
        "status": caught.value.response["ResponseMetadata"]["HTTPStatusCode"],
    }


TOO_MANY = {"code": "TooManyUniqueTargetGroupsPerLoadBalancer", "status": 400}
NOT_FOUND = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}


@pytest.fixture
def balancer() -> Iterator[Balancer]:
    """An Application Load Balancer with an HTTP listener whose default action forwards nowhere."""
    with moto_account(REGION), load_balancer_target_group_quota():
        ec2, elbv2 = boto3.client("ec2"), boto3.client("elbv2")
        vpc, arn, listener = a_load_balancer(ec2, elbv2, NOT_FOUND)
        groups = [
            elbv2.create_target_group(Name=f"group-{n:03d}", Protocol="HTTP", Port=8080, VpcId=vpc)[
                "TargetGroups"
            ][0]["TargetGroupArn"]
            for n in range(QUOTA + 1)
        ]
        yield Balancer(elbv2, arn, listener, groups)


def test_the_101st_unique_target_group_of_a_load_balancer_is_refused_and_nothing_is_created(
    balancer: Balancer,
) -> None:
    # Given 50 rules forwarding to two target groups each: the load balancer uses 100
    balancer.fill(50)

    # When a rule forwarding to one more group is created (ForwardConfig, or a bare TargetGroupArn)
    with_config = refused(balancer.elbv2.create_rule, **balancer.rule(51, balancer.groups[QUOTA]))
    bare = balancer.rule(52, balancer.groups[QUOTA])
    bare["Actions"] = [{"Type": "forward", "TargetGroupArn": balancer.groups[QUOTA]}]
    with_arn = refused(balancer.elbv2.create_rule, **bare)

    # Then AWS's error, and no rule was added (50 and the default)
    assert with_config == with_arn == TOO_MANY
    assert balancer.rule_count() == 51


def test_a_target_group_used_by_several_actions_and_listeners_counts_once(balancer: Balancer) -> None:
    # Given a load balancer using 100 target groups
    balancer.fill(50)
    used, unused = balancer.groups[0], balancer.groups[QUOTA]

    # When more rules, and a second listener, forward to groups it already uses
    balancer.elbv2.create_rule(**balancer.rule(51, used, balancer.groups[99]))
    balancer.elbv2.create_rule(**balancer.rule(52, used))
    balancer.elbv2.create_listener(
        LoadBalancerArn=balancer.arn, Protocol="HTTP", Port=8080, DefaultActions=[forward(used)]
    )

    # Then each is taken, but a listener forwarding to a group it does not use yet is not
    assert balancer.rule_count() == 53
    assert (
        refused(
            balancer.elbv2.create_listener,
            LoadBalancerArn=balancer.arn,
            Protocol="HTTP",
            Port=8081,
            DefaultActions=[forward(unused)],
        )
        == TOO_MANY
    )


def test_modifying_a_rule_or_a_default_action_counts_the_groups_it_leaves_and_takes(
    balancer: Balancer,
) -> None:
    # Given a load balancer using 100 target groups, the first rule the only user of groups 0 and 1
    rules = balancer.fill(50)
    first, second = rules[0], rules[1]
    group = balancer.groups

    # When the first rule moves from groups 0 and 1 to groups 0 and 100: still 100
    balancer.elbv2.modify_rule(RuleArn=first, Actions=[forward(group[0], group[QUOTA])])

    # Then group 1, no longer used, is a 101st again for another rule or the listener's default action
    assert (
        refused(balancer.elbv2.modify_rule, RuleArn=second, Actions=[forward(group[2], group[3], group[1])])
        == TOO_MANY
    )
    assert (
        refused(
            balancer.elbv2.modify_listener, ListenerArn=balancer.listener, DefaultActions=[forward(group[1])]
        )
        == TOO_MANY
    )
    # And a default action forwarding to a group in use is taken
    balancer.elbv2.modify_listener(ListenerArn=balancer.listener, DefaultActions=[forward(group[2])])
    described = balancer.elbv2.describe_rules(RuleArns=[second])["Rules"][0]
    assert [g["TargetGroupArn"] for g in described["Actions"][0]["ForwardConfig"]["TargetGroups"]] == [
        group[2],
        group[3],
    ]


# moto answers CreateStack with the ELB error, which CloudFormation's model does not list.
@pytest.mark.filterwarnings("ignore:Exception\\(TooManyUniqueTargetGroupsPerLoadBalancerError\\)")
def test_a_fleet_stack_past_the_quota_fails_at_its_listener_rule(cloud: LocalCloud) -> None:
    # Given the local load balancer using 99 target groups (rules of five groups, the most an
    # action takes)
    network = ensure_network(cloud)
    elbv2 = cloud.client("elbv2")
    groups = [
        elbv2.create_target_group(Name=f"other-{n:03d}", Protocol="HTTP", Port=8080, VpcId=network.vpc_id)[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for n in range(QUOTA - 1)
    ]
    for start in range(0, len(groups), 5):
        elbv2.create_rule(
            ListenerArn=network.listener_arn,
            Priority=1000 + start,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": [f"/other/{start}/*"]}}],
            Actions=[forward(*groups[start : start + 5])],
        )

    # When an application's fleet stack adds its two
    with pytest.raises(LocalCloudError) as failed:
        deploy_fleet(cloud, "one-too-many")

    # Then its listener rule is refused as AWS refuses it
    assert "unique target groups per load balancer" in str(failed.value)
    assert fleet_stack_name("one-too-many") in str(failed.value)
