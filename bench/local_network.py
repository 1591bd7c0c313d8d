"""A local network with room for 500 instances in one Auto Scaling group.

canaryfleet_local.fleet.ensure_network makes two /24 subnets, and moto puts every instance of
a group in the group's first subnet, so one local cloud holds about 250 instances: a drain of
500 at once cannot be played there. ensure_network reuses a network it finds by its name, so
the bench makes the same network first, with /20 subnets.
"""

from __future__ import annotations

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import NETWORK_NAME

_VPC_CIDR = "10.42.0.0/16"
_SUBNETS = (("10.42.0.0/20", "a"), ("10.42.16.0/20", "b"))


def make_roomy_network(cloud: LocalCloud) -> None:
    """The VPC, subnets, load balancer and listener deploy_fleet looks for, with /20 subnets."""
    ec2 = cloud.client("ec2")
    elbv2 = cloud.client("elbv2")
    name_tag = [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": NETWORK_NAME}]}]
    vpc_id = ec2.create_vpc(CidrBlock=_VPC_CIDR, TagSpecifications=name_tag)["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{cloud.region}{zone}")["Subnet"][
            "SubnetId"
        ]
        for cidr, zone in _SUBNETS
    ]
    security_group = ec2.create_security_group(
        GroupName=f"{NETWORK_NAME}-alb", Description="canaryfleet bench load balancer", VpcId=vpc_id
    )["GroupId"]
    balancer_arn = elbv2.create_load_balancer(
        Name=NETWORK_NAME, Subnets=subnet_ids, SecurityGroups=[security_group], Type="application"
    )["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.create_listener(
        LoadBalancerArn=balancer_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
            }
        ],
    )
