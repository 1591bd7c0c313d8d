"""An application's fleet, created from fleet/template.yaml on the local cloud.

The same template an application team deploys with ``aws cloudformation deploy`` is
created here with moto's CloudFormation, so the local platform reads the registry entry
the real stack writes. What the template takes from outside (a VPC with two subnets, an
ALB with its HTTP listener, the platform's buckets) is made first, through the API, once
per local cloud; the resource types and properties moto's CloudFormation lacks are filled
in by :mod:`canaryfleet_local.standins`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from canaryfleet.models.app_config import (
    AppConfig,
    fleet_stack_name,
    fleet_template_key,
    read_registry_entry,
    registry_parameter,
)
from canaryfleet.models.artifact import APP_NAME_PATTERN

from canaryfleet_local.cloud import LocalCloud, LocalCloudError
from canaryfleet_local.parsing import parse_template
from canaryfleet_local.standins.install import fleet_stack_stand_ins
from canaryfleet_local.template import REPO_ROOT

FLEET_TEMPLATE = REPO_ROOT / "fleet" / "template.yaml"
NETWORK_NAME = "canaryfleet-local"
_VPC_CIDR = "10.42.0.0/16"
# /20: moto puts all of a group's instances in its first subnet, and a local drain may make
# 500 instances leave one group.
_SUBNETS = (("10.42.0.0/20", "a"), ("10.42.16.0/20", "b"))
# A stand-in repository: nothing runs the user data on the local cloud.
LOCAL_ANSIBLE_REPOSITORY = "https://git.example.com/platform/ansible-baseline.git"
# The local fleets' deregistration delay: a Spot or rebalance drain waits it out before it stops
# the application (the simulated instances sleep it for real), and the local cloud's durations
# are seconds, not the template's 30.
LOCAL_DEREGISTRATION_DELAY_SECONDS = "1"


@dataclass(frozen=True)
class LocalNetwork:
    """What a fleet stack is given rather than creates: shared by every local application."""

    vpc_id: str
    subnet_ids: tuple[str, ...]
    load_balancer_arn: str
    load_balancer_security_group_id: str
    listener_arn: str


def fleet_template_body(path: Path = FLEET_TEMPLATE) -> str:
    """fleet/template.yaml's text: what `aws cloudformation deploy --template-file` sends as
    CreateStack's TemplateBody (fleet/README.md), so the local cloud holds it to that limit."""
    return path.read_text()


def template_defaults(template: dict[str, Any]) -> dict[str, str]:
    return {
        name: str(spec["Default"])
        for name, spec in template.get("Parameters", {}).items()
        if "Default" in spec
    }


def ensure_network(cloud: LocalCloud) -> LocalNetwork:
    """The VPC, two subnets, load balancer and HTTP listener of the local cloud (made once)."""
    ec2 = cloud.client("ec2")
    elbv2 = cloud.client("elbv2")
    tag = {"Name": "tag:Name", "Values": [NETWORK_NAME]}
    vpcs = ec2.describe_vpcs(Filters=[tag])["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        subnet_ids = tuple(sorted(s["SubnetId"] for s in subnets))
        balancer = elbv2.describe_load_balancers(Names=[NETWORK_NAME])["LoadBalancers"][0]
        listener = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"][0]
        return LocalNetwork(
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            load_balancer_arn=balancer["LoadBalancerArn"],
            load_balancer_security_group_id=balancer["SecurityGroups"][0],
            listener_arn=listener["ListenerArn"],
        )

    name_tag = [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": NETWORK_NAME}]}]
    vpc_id = ec2.create_vpc(CidrBlock=_VPC_CIDR, TagSpecifications=name_tag)["Vpc"]["VpcId"]
    subnet_ids = tuple(
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{cloud.region}{zone}")["Subnet"][
            "SubnetId"
        ]
        for cidr, zone in _SUBNETS
    )
    security_group = ec2.create_security_group(
        GroupName=f"{NETWORK_NAME}-alb", Description="canaryfleet local load balancer", VpcId=vpc_id
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=security_group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    balancer_arn = elbv2.create_load_balancer(
        Name=NETWORK_NAME, Subnets=list(subnet_ids), SecurityGroups=[security_group], Type="application"
    )["LoadBalancers"][0]["LoadBalancerArn"]
    listener_arn = elbv2.create_listener(
        LoadBalancerArn=balancer_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
            }
        ],
    )["Listeners"][0]["ListenerArn"]
    return LocalNetwork(vpc_id, subnet_ids, balancer_arn, security_group, listener_arn)


def _next_rule_priority(cloud: LocalCloud, listener_arn: str) -> int:
    rules = cloud.client("elbv2").describe_rules(ListenerArn=listener_arn)["Rules"]
    taken = [int(rule["Priority"]) for rule in rules if rule["Priority"].isdigit()]
    return max(taken, default=0) + 1


def fleet_parameters(
    cloud: LocalCloud,
    application: str,
    network: LocalNetwork,
    template: dict[str, Any],
    overrides: dict[str, str] | None = None,
) -> dict[str, str]:
    """Every parameter of the template, given explicitly.

    moto neither splits a list parameter's default nor converts a number's, so defaults
    are passed as if the caller had typed them.
    """
    values = {
        **template_defaults(template),
        "Application": application,
        "AnsibleRepositoryUrl": LOCAL_ANSIBLE_REPOSITORY,
        "ArtifactBucketName": cloud.output("ArtifactBucketName"),
        "LogBucketName": cloud.output("LogBucketName"),
        "VpcId": network.vpc_id,
        "SubnetIds": ",".join(network.subnet_ids),
        "LoadBalancerSecurityGroupId": network.load_balancer_security_group_id,
        "ListenerArn": network.listener_arn,
        "ListenerRulePriority": str(_next_rule_priority(cloud, network.listener_arn)),
        "HostHeaders": f"{application}.canaryfleet.local",
        "DeregistrationDelaySeconds": LOCAL_DEREGISTRATION_DELAY_SECONDS,
    }
    unknown = sorted(set(overrides or {}) - set(template.get("Parameters", {})))
    if unknown:
        raise LocalCloudError(f"fleet/template.yaml has no parameter {', '.join(unknown)}")
    values.update(overrides or {})
    return values


def put_fleet_template(s3: Any, bucket: str, application: str, body: str) -> str:
    """Put the fleet template in ``bucket`` as `aws cloudformation deploy --s3-bucket <bucket>
    --s3-prefix <fleet_template_prefix>` does (the onboarding's command), and return the path-style
    URL it gives CreateStack, naming the object's version in a versioned bucket. ``s3``: a boto3
    S3 client, the local cloud's or a real account's (tests/aws)."""
    data = body.encode()
    key = fleet_template_key(application, data)
    version = s3.put_object(Bucket=bucket, Key=key, Body=data).get("VersionId")
    url = f"{s3.meta.endpoint_url}/{bucket}/{key}"
    return f"{url}?versionId={version}" if version else url


def upload_fleet_template(cloud: LocalCloud, application: str, body: str) -> str:
    """``put_fleet_template`` into the local cloud's artifact bucket."""
    return put_fleet_template(cloud.client("s3"), cloud.output("ArtifactBucketName"), application, body)


def deploy_fleet(cloud: LocalCloud, application: str, parameters: dict[str, str] | None = None) -> AppConfig:
    """Create ``application``'s fleet stack from fleet/template.yaml; return its registry entry.

    ``parameters`` override the template's (and the local cloud's) values. Raises
    LocalCloudError if the stack cannot be created whole.
    """
    if not re.fullmatch(APP_NAME_PATTERN, application):
        raise LocalCloudError(
            f"application {application!r} must be 2-40 lowercase letters, digits or '-', "
            "starting with a letter"
        )
    body = fleet_template_body()
    template: dict[str, Any] = parse_template(body)
    network = ensure_network(cloud)
    values = fleet_parameters(cloud, application, network, template, parameters)
    stack_name = fleet_stack_name(application)
    cfn = cloud.client("cloudformation")
    try:
        template_url = upload_fleet_template(cloud, application, body)
        with fleet_stack_stand_ins():
            cfn.create_stack(
                StackName=stack_name,
                TemplateURL=template_url,
                Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()],
                Capabilities=["CAPABILITY_IAM"],
                Tags=[{"Key": "application", "Value": application}],
            )
    except ClientError as exc:
        raise LocalCloudError(f"stack {stack_name}: {exc.response['Error']['Message']}") from None
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise LocalCloudError(f"stack {stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason')}")

    created = {
        summary["LogicalResourceId"]
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name)
        for summary in page["StackResourceSummaries"]
    }
    unconditional = {name for name, spec in template["Resources"].items() if "Condition" not in spec}
    skipped = sorted(unconditional - created)
    if skipped:  # moto skips a resource type it does not know, with only a warning
        kinds = ", ".join(f"{name} ({template['Resources'][name]['Type']})" for name in skipped)
        raise LocalCloudError(f"stack {stack_name}: moto created no {kinds}")

    name = registry_parameter(application)
    value = cloud.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    return read_registry_entry(name, value)
