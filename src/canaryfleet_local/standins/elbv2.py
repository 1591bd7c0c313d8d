"""Elastic Load Balancing: what moto's target groups lack in fleet stacks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.elbv2.models import FakeTargetGroup, elbv2_backends

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
