"""fleet/template.yaml created on the local cloud: the registry entry names resources that exist."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError
from canaryfleet.models.app_config import AppConfig, Approvers, FleetGroup, registry_parameter
from canaryfleet.models.policy import RolloutPolicy
from moto.codedeploy.models import codedeploy_backends

from canaryfleet_cli.app_commands import Strategy, registry_entry_at_most
from canaryfleet_local import fleet as fleet_module
from canaryfleet_local.cloud import LocalCloudError
from canaryfleet_local.cloudformation_rules import TEMPLATE_BODY_LIMIT, TEMPLATE_OBJECT_LIMIT
from canaryfleet_local.fleet import (
    LOCAL_DEREGISTRATION_DELAY_SECONDS,
    deploy_fleet,
    ensure_network,
    fleet_stack_name,
)
from canaryfleet_local.parsing import parse_template
from canaryfleet_local.standins.ssm import SSM_ASSOCIATIONS
from tests.integration.helpers import DeployedFleet, deployed_fleet


@pytest.fixture(scope="module")
def fleet() -> Iterator[DeployedFleet]:
    """One local cloud with the hello-app fleet on it (created once: the tests only read)."""
    with deployed_fleet("hello-app") as deployed:
        yield deployed


def sides(config: AppConfig) -> list[tuple[str, FleetGroup]]:
    return [("canary", config.canary), ("live", config.live)]


def test_the_registry_entry_in_ssm_parses_into_the_returned_app_config(fleet: DeployedFleet) -> None:
    value = fleet.cloud.client("ssm").get_parameter(Name=registry_parameter("hello-app"))["Parameter"][
        "Value"
    ]

    assert AppConfig.model_validate_json(value) == fleet.config
    assert fleet.config.application == "hello-app"
    assert fleet.config.log_prefix == "hello-app/"


def test_the_target_groups_exist_and_check_health(fleet: DeployedFleet) -> None:
    elbv2 = fleet.cloud.client("elbv2")
    arns = [group.target_group_arn for _, group in sides(fleet.config)]

    described = elbv2.describe_target_groups(TargetGroupArns=arns)["TargetGroups"]

    assert {g["TargetGroupArn"] for g in described} == set(arns)
    for group in described:
        assert group["HealthCheckEnabled"] and group["HealthCheckPath"] == "/"
        attributes = elbv2.describe_target_group_attributes(TargetGroupArn=group["TargetGroupArn"])
        delay = {"Key": "deregistration_delay.timeout_seconds", "Value": LOCAL_DEREGISTRATION_DELAY_SECONDS}
        assert delay in attributes["Attributes"]


def test_the_listener_rule_forwards_100_to_live_and_0_to_canary(fleet: DeployedFleet) -> None:
    elbv2 = fleet.cloud.client("elbv2")

    (rule,) = elbv2.describe_rules(RuleArns=[fleet.config.listener_rule_arn])["Rules"]

    (action,) = rule["Actions"]
    weights = {g["TargetGroupArn"]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}
    assert weights == {fleet.config.live.target_group_arn: 100, fleet.config.canary.target_group_arn: 0}
    assert rule["Conditions"] == [
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["hello-app.canaryfleet.local"]}}
    ]


def test_the_listener_rule_carries_the_tag_the_traffic_functions_grant_requires(fleet: DeployedFleet) -> None:
    # The platform's traffic function may modify only rules tagged canaryfleet:application
    # (template.yaml); the fleet stack tags its rule so, as CloudFormation does on create.
    elbv2 = fleet.cloud.client("elbv2")

    (described,) = elbv2.describe_tags(ResourceArns=[fleet.config.listener_rule_arn])["TagDescriptions"]

    tags = {tag["Key"]: tag["Value"] for tag in described["Tags"]}
    assert tags == {
        "application": fleet.config.application,
        "canaryfleet:application": fleet.config.application,
    }


def test_each_group_runs_its_instances_behind_its_own_target_group(fleet: DeployedFleet) -> None:
    autoscaling = fleet.cloud.client("autoscaling")
    elbv2 = fleet.cloud.client("elbv2")
    for role, side in sides(fleet.config):
        (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[side.auto_scaling_group])[
            "AutoScalingGroups"
        ]

        assert group["TargetGroupARNs"] == [side.target_group_arn]
        assert group["CapacityRebalance"] is True
        distribution = group["MixedInstancesPolicy"]["InstancesDistribution"]
        assert distribution["SpotAllocationStrategy"] == "price-capacity-optimized"
        assert distribution["OnDemandPercentageAboveBaseCapacity"] == 50
        assert len(group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]) == 5
        assert {t["Key"]: t["Value"] for t in group["Tags"]} == {
            "application": "hello-app",
            "canaryfleet:application": "hello-app",
            "role": role,
        }
        instances = {i["InstanceId"] for i in group["Instances"]}
        assert len(instances) == group["DesiredCapacity"] >= 1
        # Propagated at launch: the drain may run commands only on instances that carry it.
        fleet_tags = fleet.cloud.client("ec2").describe_tags(
            Filters=[
                {"Name": "resource-id", "Values": sorted(instances)},
                {"Name": "key", "Values": ["canaryfleet:application"]},
            ]
        )["Tags"]
        assert {(t["ResourceId"], t["Value"]) for t in fleet_tags} == {(i, "hello-app") for i in instances}
        health = elbv2.describe_target_health(TargetGroupArn=side.target_group_arn)[
            "TargetHealthDescriptions"
        ]
        assert {h["Target"]["Id"] for h in health} == instances


def test_each_group_has_the_termination_hook_the_drain_serves(fleet: DeployedFleet) -> None:
    autoscaling = fleet.cloud.client("autoscaling")
    for _, side in sides(fleet.config):
        hooks = autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=side.auto_scaling_group)[
            "LifecycleHooks"
        ]

        terminating = [h for h in hooks if h["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"]
        assert [(h["LifecycleHookName"], h["HeartbeatTimeout"], h["DefaultResult"]) for h in terminating] == [
            ("canaryfleet-drain", 300, "CONTINUE")
        ]


def test_each_deployment_group_deploys_to_its_own_group_and_target_group(fleet: DeployedFleet) -> None:
    codedeploy = fleet.cloud.client("codedeploy")
    elbv2 = fleet.cloud.client("elbv2")
    for _, side in sides(fleet.config):
        info = codedeploy.get_deployment_group(
            applicationName=fleet.config.codedeploy_application, deploymentGroupName=side.deployment_group
        )["deploymentGroupInfo"]

        assert [g["name"] for g in info["autoScalingGroups"]] == [side.auto_scaling_group]
        (target_group,) = elbv2.describe_target_groups(TargetGroupArns=[side.target_group_arn])[
            "TargetGroups"
        ]
        assert info["loadBalancerInfo"]["targetGroupInfoList"] == [{"name": target_group["TargetGroupName"]}]
        assert info["deploymentStyle"] == {
            "deploymentType": "IN_PLACE",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        }
        assert info["autoRollbackConfiguration"] == {
            "enabled": True,
            "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
        }
        assert info["outdatedInstancesStrategy"] == "UPDATE"


def test_each_deployment_group_stops_on_its_own_alarms(fleet: DeployedFleet) -> None:
    # moto's GetDeploymentGroup answers alarmConfiguration empty; its backend keeps what was set.
    backend = codedeploy_backends[fleet.cloud.account_id][fleet.cloud.region]
    for _, side in sides(fleet.config):
        group = backend.get_deployment_group(fleet.config.codedeploy_application, side.deployment_group)

        alarms: dict[str, Any] = cast("dict[str, Any]", group.alarm_configuration)  # kept as the API got it
        assert alarms["enabled"] is True
        assert [a["name"] for a in alarms["alarms"]] == list(side.alarms)


def test_the_alarms_of_the_registry_entry_exist(fleet: DeployedFleet) -> None:
    cloudwatch = fleet.cloud.client("cloudwatch")
    for _, side in sides(fleet.config):
        described = cloudwatch.describe_alarms(AlarmNames=list(side.alarms))["MetricAlarms"]

        assert sorted(a["AlarmName"] for a in described) == sorted(side.alarms)
        assert len(side.alarms) == 3


def test_the_deployed_error_rate_alarms_count_the_requests_the_load_balancer_answered(
    fleet: DeployedFleet,
) -> None:
    cloudwatch = fleet.cloud.client("cloudwatch")
    for _, side in sides(fleet.config):
        [alarm] = cloudwatch.describe_alarms(AlarmNames=[side.alarms[0]])["MetricAlarms"]

        # As CloudFormation made it (ErrorRateCountsUnanswered true by default): the answered
        # counts beside the 5xx, and the rate of failed requests, the unanswered among them
        stats = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
        expressions = {m["Id"]: m["Expression"] for m in alarm["Metrics"] if "Expression" in m}
        assert {f"HTTPCode_Target_{kind}XX_Count" for kind in (2, 3, 4, 5)} <= stats
        assert "100 * failed / requests" in expressions["error_rate"]
        assert "unanswered" in expressions["failed"]


def test_the_launch_template_requires_imdsv2_and_bootstraps_with_ansible_pull(fleet: DeployedFleet) -> None:
    ec2 = fleet.cloud.client("ec2")

    (version,) = ec2.describe_launch_template_versions(LaunchTemplateName="hello-app-fleet")[
        "LaunchTemplateVersions"
    ]

    data = version["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    script = base64.b64decode(data["UserData"]).decode()
    assert "APPLICATION='hello-app'" in script and "ansible-pull" in script
    assert f"LOG_BUCKET='{fleet.cloud.output('LogBucketName')}'" in script


def test_the_hourly_log_sync_targets_the_application_instances(fleet: DeployedFleet) -> None:
    cfn = fleet.cloud.client("cloudformation")
    association_id = cfn.describe_stack_resource(
        StackName=fleet_stack_name("hello-app"), LogicalResourceId="LogSyncAssociation"
    )["StackResourceDetail"]["PhysicalResourceId"]

    association = SSM_ASSOCIATIONS[association_id]

    assert association["ScheduleExpression"] == "cron(0 0/1 * * ? *)"
    assert association["Targets"] == [{"Key": "tag:application", "Values": ["hello-app"]}]


def test_a_second_application_gets_its_own_rule_and_settings_on_the_same_listener(
    fleet: DeployedFleet,
) -> None:
    config = deploy_fleet(
        fleet.cloud,
        "billing",
        {
            # As people type a list: CloudFormation trims each member (moto does not).
            "ApproverEmails": "ana@example.com, bo@example.com",
            "SlackChannel": "C0123ABCD",
            "DrainOnRebalance": "true",
            "HostHeaders": "",
            "PathPatterns": "/billing/*",
            "InstanceTypes": "c6i.large,c6a.large",
        },
    )

    assert config.approvers.emails == ("ana@example.com", "bo@example.com")
    assert config.approvers.slack_channel == "C0123ABCD"
    assert config.drain_on_rebalance is True
    rules = fleet.cloud.client("elbv2").describe_rules(
        RuleArns=[config.listener_rule_arn, fleet.config.listener_rule_arn]
    )
    assert len({rule["Priority"] for rule in rules["Rules"]}) == 2
    listed = fleet.cloud.client("ssm").get_parameters_by_path(Path="/canaryfleet/apps", Recursive=True)
    assert {p["Name"] for p in listed["Parameters"]} >= {
        "/canaryfleet/apps/hello-app",
        "/canaryfleet/apps/billing",
    }


def test_an_invalid_application_name_is_refused(fleet: DeployedFleet) -> None:
    with pytest.raises(LocalCloudError, match="lowercase"):
        deploy_fleet(fleet.cloud, "Hello_App")


def test_an_unknown_parameter_is_refused(fleet: DeployedFleet) -> None:
    with pytest.raises(LocalCloudError, match="no parameter Colour"):
        deploy_fleet(fleet.cloud, "paint", {"Colour": "blue"})


def test_a_fleet_with_neither_hosts_nor_paths_is_refused_by_the_templates_rule(fleet: DeployedFleet) -> None:
    # Given no host header and no path pattern for the listener rule
    # When the fleet is deployed
    # Then the template's rule refuses it before anything is created, as CloudFormation does
    with pytest.raises(LocalCloudError, match="Give HostHeaders, PathPatterns or both"):
        deploy_fleet(fleet.cloud, "nowhere", {"HostHeaders": ""})
    stacks = fleet.cloud.client("cloudformation").list_stacks()["StackSummaries"]
    assert fleet_stack_name("nowhere") not in {s["StackName"] for s in stacks}


def test_the_fleet_template_with_its_old_defects_is_refused_with_awss_reasons(
    fleet: DeployedFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: Fn::Join in Rules; ApplyOnlyAtCronInterval with rate(1 hour) (SSM refuses it)."""
    # Given fleet/template.yaml as it was before both defects were fixed
    old = parse_template(fleet_module.fleet_template_body())
    old["Rules"]["RuleNeedsACondition"]["Assertions"][0]["Assert"] = {
        "Fn::Or": [
            {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "HostHeaders"}]}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "PathPatterns"}]}, ""]}]},
        ]
    }
    old["Resources"]["LogSyncAssociation"]["Properties"]["ScheduleExpression"] = "rate(1 hour)"
    monkeypatch.setattr(fleet_module, "fleet_template_body", lambda: json.dumps(old))

    # When an application is deployed from it
    with pytest.raises(LocalCloudError) as refused:
        deploy_fleet(fleet.cloud, "old-template")

    # Then the local cloud refuses it as AWS would, and says why
    assert "rule RuleNeedsACondition uses Fn::Join" in str(refused.value)
    assert "ApplyOnlyAtCronInterval isn't supported for rate expressions" in str(refused.value)


def _grown_to(size: int) -> str:
    """fleet/template.yaml grown by a comment to ``size`` bytes."""
    text = fleet_module.fleet_template_body()
    grown = text + "#" + "x" * (size - len(text.encode()) - len("#\n")) + "\n"
    assert len(grown.encode()) == size
    return grown


def test_a_fleet_template_past_the_request_limit_deploys_through_the_artifact_bucket(
    fleet: DeployedFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given fleet/template.yaml past CreateStack's TemplateBody limit (grown to one byte over it
    # if it is not already: the onboarding's command sends it through the artifact bucket,
    # --s3-bucket)
    size = max(TEMPLATE_BODY_LIMIT + 1, len(fleet_module.fleet_template_body().encode()) + 2)
    grown = _grown_to(size)
    monkeypatch.setattr(fleet_module, "fleet_template_body", lambda: grown)

    # When an application is deployed from it
    config = deploy_fleet(fleet.cloud, "grown-template")

    # Then the stack is made from the template's object, kept under the application's prefix
    assert config.application == "grown-template"
    listed = fleet.cloud.client("s3").list_objects_v2(
        Bucket=fleet.cloud.output("ArtifactBucketName"), Prefix="_fleet-templates/grown-template/"
    )
    [stored] = listed["Contents"]
    assert stored["Key"].endswith(".template") and stored["Size"] == size


def test_a_fleet_template_past_the_s3_limit_is_refused_and_no_stack_is_left(
    fleet: DeployedFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given fleet/template.yaml grown to one byte over CreateStack's limit for a template in S3
    grown = _grown_to(TEMPLATE_OBJECT_LIMIT + 1)
    monkeypatch.setattr(fleet_module, "fleet_template_body", lambda: grown)

    # When an application is deployed from it
    with pytest.raises(LocalCloudError) as refused:
        deploy_fleet(fleet.cloud, "huge-template")

    # Then the local cloud refuses it with CloudFormation's answer, and no stack is left
    assert "Template may not exceed 1048576 bytes in size." in str(refused.value)
    assert fleet_stack_name("huge-template") not in {
        s["StackName"] for s in fleet.cloud.client("cloudformation").list_stacks()["StackSummaries"]
    }


def test_a_live_group_whose_maximum_is_under_its_minimum_fails_the_fleet_stack(fleet: DeployedFleet) -> None:
    # Given an in-place fleet whose LiveMaxSize was set under its LiveMinSize (each within its own
    # bounds: CloudFormation compares no two parameters)
    # When it is deployed
    with pytest.raises(LocalCloudError) as refused:
        deploy_fleet(fleet.cloud, "inverted-live", {"LiveMinSize": "4", "LiveMaxSize": "3"})

    # Then Auto Scaling refuses the live group, as AWS refuses a desired capacity (the minimum, when
    # none is given) above the maximum
    assert "Desired capacity:4 must be between the specified min size:4 and max size:3" in str(refused.value)


@pytest.mark.parametrize("written", ["600.5", "0600"])
def test_a_blue_green_timeout_the_registry_could_not_read_is_refused_and_no_stack_is_left(
    fleet: DeployedFleet, written: str
) -> None:
    # Given a capacity timeout CloudFormation's Number type would take (600.5) or that would
    # reach the registry entry as no JSON (0600)
    # When an application is deployed with it
    with pytest.raises(LocalCloudError) as refused:
        deploy_fleet(fleet.cloud, "fractional", {"Strategy": "blue_green", "CapacityTimeoutSeconds": written})

    # Then CloudFormation refuses the stack with the parameter's constraint, and nothing is left:
    # no stack, no registry entry
    assert (
        "Malformed input-Parameter CapacityTimeoutSeconds must be a whole number of seconds from 1 to 3600"
        in str(refused.value)
    )
    assert fleet_stack_name("fractional") not in {
        s["StackName"] for s in fleet.cloud.client("cloudformation").list_stacks()["StackSummaries"]
    }
    assert (
        fleet.cloud.client("ssm").get_parameters(Names=[registry_parameter("fractional")])["Parameters"] == []
    )


def test_a_live_group_of_one_instance_is_refused_since_its_deployments_could_never_succeed(
    fleet: DeployedFleet,
) -> None:
    # CodeDeployDefault.HalfAtATime (the live group's default) keeps half the instances healthy,
    # rounded up: of one, one, so "CodeDeploy will immediately fail the overall deployment"
    # (CodeDeploy User Guide, "Instance health")
    with pytest.raises(LocalCloudError) as refused:
        deploy_fleet(fleet.cloud, "single-live", {"LiveMinSize": "1"})

    assert "LiveMinSize" in str(refused.value)


def test_a_rule_given_hosts_and_paths_matches_on_both(fleet: DeployedFleet) -> None:
    # When an application is deployed with a host and a path (fleet/template.yaml's
    # HasHostHeadersAndPathPatterns: !And [!Condition HasHostHeaders, !Condition HasPathPatterns])
    app = deploy_fleet(
        fleet.cloud, "hosts-and-paths", {"HostHeaders": "orders.example.com", "PathPatterns": "/v2/*"}
    )

    # Then its listener rule has both conditions, as CloudFormation builds it
    [rule] = fleet.cloud.client("elbv2").describe_rules(RuleArns=[app.listener_rule_arn])["Rules"]
    assert [
        (c["Field"], c.get("HostHeaderConfig") or c.get("PathPatternConfig")) for c in rule["Conditions"]
    ] == [
        ("host-header", {"Values": ["orders.example.com"]}),
        ("path-pattern", {"Values": ["/v2/*"]}),
    ]


@pytest.mark.parametrize(
    ("conditions", "said"),
    [
        (
            {"HostHeaders": "a.example.com,b.example.com,c.example.com,d.example.com"},
            "The 'host-header' field contains too many values; the limit is '3'",
        ),
        (
            {"HostHeaders": "a.example.com,b.example.com,c.example.com", "PathPatterns": "/a,/b,/c"},
            "A rule can only have '5' condition values",
        ),
        (
            {"HostHeaders": "*.a.example.com,*.b.example.com", "PathPatterns": "/a/*,/b/*,/c/??"},
            "A rule can only have '5' wildcards",
        ),
    ],
)
def test_a_listener_rule_past_the_load_balancers_condition_quotas_fails_the_fleet_stack(
    fleet: DeployedFleet, conditions: dict[str, str], said: str
) -> None:
    # When an application is deployed with more hosts, paths or wildcards than a rule takes
    with pytest.raises(LocalCloudError) as refused:
        deploy_fleet(fleet.cloud, f"many-hosts-{len(said)}", conditions)

    # Then its listener rule is refused as an Application Load Balancer refuses it
    assert said in str(refused.value)


def test_an_approver_address_the_platform_could_not_use_is_refused_and_no_stack_is_left(
    fleet: DeployedFleet,
) -> None:
    # Given an approver written with a display name, as a mail client copies it
    # When the fleet is deployed
    with pytest.raises(LocalCloudError) as refused:
        deploy_fleet(fleet.cloud, "named", {"ApproverEmails": "ana@example.com,Bob Smith <bob@example.com>"})

    # Then CloudFormation's parameter check refuses it: no stack, no registry entry, no approval
    # request that would fail after its Slack message was posted
    assert "Malformed input-Parameter ApproverEmails must be addresses like name@example.com" in str(
        refused.value
    )
    assert fleet_stack_name("named") not in {
        s["StackName"] for s in fleet.cloud.client("cloudformation").list_stacks()["StackSummaries"]
    }
    with pytest.raises(ClientError):
        fleet.cloud.client("ssm").get_parameter(Name=registry_parameter("named"))


def test_an_application_is_onboarded_once(fleet: DeployedFleet) -> None:
    with pytest.raises(LocalCloudError, match=fleet_stack_name("hello-app")):
        deploy_fleet(fleet.cloud, "hello-app")


def test_each_subnet_has_room_for_the_largest_local_drain(fleet: DeployedFleet) -> None:
    """moto puts a group's instances in its first subnet; a local drain may make 500 leave."""
    network = ensure_network(fleet.cloud)
    subnets = fleet.cloud.client("ec2").describe_subnets(SubnetIds=list(network.subnet_ids))["Subnets"]

    assert len(subnets) == 2
    assert all(s["AvailableIpAddressCount"] >= 500 + 2 for s in subnets)


def test_onboardings_bound_on_the_registry_entry_is_the_entry_the_stack_writes(fleet: DeployedFleet) -> None:
    # Given an application with a long policy, approvers on both channels, blue/green
    policy = json.dumps(
        RolloutPolicy.model_validate(
            {
                "steps": [
                    *[{"kind": "set_weight", "weight": 10 * n} for n in (1, 2, 5)],
                    {"kind": "bake", "duration_seconds": 60},
                    {"kind": "approval"},
                ]
            }
        ).model_dump(mode="json"),
        separators=(",", ":"),
    )
    approvers = Approvers(
        emails=("ana@example.com", "bo@example.com"), slack_user_ids=("U0123ABCD",), slack_channel="C0123ABCD"
    )
    parameters = {
        "Strategy": "blue_green",
        "RolloutPolicy": policy,
        "ApproverEmails": ",".join(approvers.emails),
        "ApproverSlackUserIds": ",".join(approvers.slack_user_ids),
        "SlackChannel": "C0123ABCD",
        "DrainOnRebalance": "true",
    }

    # When its fleet stack is created, and onboarding bounds the entry for the same values
    deploy_fleet(fleet.cloud, "sized-app", parameters)
    written = fleet.cloud.client("ssm").get_parameter(Name=registry_parameter("sized-app"))["Parameter"]
    listener = ensure_network(fleet.cloud).listener_arn
    bound = registry_entry_at_most("sized-app", listener, Strategy.BLUE_GREEN, approvers, policy, True)

    # Then the bound is never shorter, and differs only where CloudFormation or ELB choose
    assert len(written["Value"].encode()) <= len(bound.encode())
    chosen = ("listener_rule_arn", "scale_down_delay_seconds", "capacity_timeout_seconds", "color_capacity")

    def fixed_part(entry: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(entry)
        for key in chosen:
            document.pop(key)
        for side in ("canary", "live"):
            document[side].pop("target_group_arn")
        return document

    assert fixed_part(written["Value"]) == fixed_part(bound)
