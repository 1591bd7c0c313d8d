"""CloudFormation: what moto's CloudFormation leaves out of a stack, and what its stand-in
resource types share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, cast
from unittest import mock

from moto.cloudformation import parsing
from moto.cloudformation.utils import yaml_tag_constructor

from canaryfleet_local.standins.aws_clients import shared_client

if TYPE_CHECKING:  # the stubs are a development dependency
    from mypy_boto3_s3.type_defs import LifecycleRuleTypeDef, PublicAccessBlockConfigurationTypeDef


def register_cloudformation_resource_types() -> None:
    """Make moto's CloudFormation see the stand-ins' resource types (see install.py)."""
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def _resolve_parameters(value: Any, parameters: dict[str, str]) -> Any:
    """Resolve ``Ref`` to template parameters, the only intrinsic these properties use."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            name = value["Ref"]
            if name not in parameters:
                raise ValueError(f"cannot resolve Ref {name} outside moto's CloudFormation")
            return parameters[name]
        return {key: _resolve_parameters(item, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_parameters(item, parameters) for item in value]
    return value


def apply_properties_moto_skips(
    cfn_template: dict[str, Any], physical_ids: dict[str, str], parameters: dict[str, str]
) -> None:
    """Stands in for the properties moto's CloudFormation accepts but does not apply.

    ``AWS::S3::Bucket``: versioning, public access block, ownership controls, lifecycle
    rules and EventBridge notifications (without which S3 sends no event at all).
    ``AWS::DynamoDB::Table``: time to live and point-in-time recovery. Each is applied
    through the service's own API, as CloudFormation would.
    """
    defaults = {
        name: str(spec["Default"])
        for name, spec in cfn_template.get("Parameters", {}).items()
        if "Default" in spec
    }
    values = {**defaults, **parameters}
    s3 = shared_client("s3")
    dynamodb = shared_client("dynamodb")
    for logical_id, resource in cfn_template["Resources"].items():
        physical = physical_ids.get(logical_id)
        if physical is None or resource["Type"] not in ("AWS::S3::Bucket", "AWS::DynamoDB::Table"):
            continue
        props = _resolve_parameters(resource.get("Properties", {}), values)
        if resource["Type"] == "AWS::S3::Bucket":
            if "VersioningConfiguration" in props:
                s3.put_bucket_versioning(
                    Bucket=physical,
                    VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]},
                )
            if "PublicAccessBlockConfiguration" in props:
                s3.put_public_access_block(
                    Bucket=physical,
                    PublicAccessBlockConfiguration=cast(
                        "PublicAccessBlockConfigurationTypeDef",
                        {
                            key: value in (True, "true")
                            for key, value in props["PublicAccessBlockConfiguration"].items()
                        },
                    ),
                )
            if "OwnershipControls" in props:
                s3.put_bucket_ownership_controls(
                    Bucket=physical, OwnershipControls=props["OwnershipControls"]
                )
            if "LifecycleConfiguration" in props:
                s3.put_bucket_lifecycle_configuration(
                    Bucket=physical,
                    LifecycleConfiguration={
                        "Rules": [
                            cast("LifecycleRuleTypeDef", _lifecycle_rule(r))
                            for r in props["LifecycleConfiguration"]["Rules"]
                        ]
                    },
                )
            notification = props.get("NotificationConfiguration", {})
            if notification.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled") in (True, "true"):
                s3.put_bucket_notification_configuration(
                    Bucket=physical, NotificationConfiguration={"EventBridgeConfiguration": {}}
                )
        elif resource["Type"] == "AWS::DynamoDB::Table":
            ttl = props.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled") in (True, "true"):
                dynamodb.update_time_to_live(
                    TableName=physical,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )
            pitr = props.get("PointInTimeRecoverySpecification", {})
            if pitr.get("PointInTimeRecoveryEnabled") in (True, "true"):
                dynamodb.update_continuous_backups(
                    TableName=physical,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the shape of the S3 API."""
    api: dict[str, Any] = {
        "ID": rule.get("Id", ""),
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return api


def cfn_bool(value: Any) -> bool:
    """A CloudFormation boolean, which may arrive as a string."""
    return value in (True, "true", "True")


class CloudFormationNoValueInLists:
    """Stands in for ``AWS::NoValue`` as an element of a list.

    CloudFormation drops a list element that resolves to ``AWS::NoValue`` (an ``Fn::If``
    whose branch is empty, such as an optional instance type); moto's template parser
    keeps it as a null that the resource then fails on. While installed, nulls are left
    out of every list moto resolves.
    """

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = parsing.clean_json

        def clean_json(resource_json: Any, resources_map: Any) -> Any:
            cleaned = original(resource_json, resources_map)
            if isinstance(resource_json, list) and isinstance(cleaned, list):
                return [item for item in cleaned if item is not None]
            return cleaned

        with mock.patch.object(parsing, "clean_json", clean_json):
            yield


UpdateKind = Literal["kept", "replaced", "rewritten", "replaced when renamed"]


class CloudFormationStandIn:
    """What every CloudFormation stand-in shares: moto's resource interface, told by class attributes.

    A mixin: moto finds resource types among CloudFormationModel's direct subclasses only, so a
    stand-in names both (``class X(CloudFormationStandIn, CloudFormationModel)``). A stand-in sets
    ``RESOURCE_TYPE``, makes the resource in ``create_resource`` and, where something outlives
    the stack, removes it in ``delete_resource``. ``ON_UPDATE`` says what a stack update does:
    ``kept`` (changed in place by ``update_resource``, if at all), ``replaced`` (the old one
    deleted, a new one created), ``rewritten`` (created again over the old one), or
    ``replaced when renamed`` (rewritten while its name stays).
    """

    RESOURCE_TYPE: ClassVar[str]
    NAME_PROPERTY: ClassVar[str] = ""  # the property naming it; moto generates a name when it is absent
    ATTRIBUTES: ClassVar[tuple[str, ...]] = ()  # the names Fn::GetAtt answers
    ON_UPDATE: ClassVar[UpdateKind] = "replaced"

    def __init__(self, physical_id: str, attributes: dict[str, str] | None = None) -> None:
        self.physical_id = physical_id
        self.attributes = attributes or {}

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.RESOURCE_TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.attributes[attribute_name]

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        raise NotImplementedError(f"{cls.__name__} creates nothing")

    @classmethod
    def update_resource(cls, resource: Self, props: dict[str, Any]) -> None:
        """Nothing to change by default in a resource that is kept through an update."""

    @classmethod
    def delete_resource(cls, physical_id: str, props: dict[str, Any], account_id: str, region: str) -> None:
        """Nothing to remove by default: the resource lives only in the stand-in."""

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Self:
        return cls.create_resource(
            resource_name, cloudformation_json.get("Properties", {}), account_id, region_name
        )

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Self:
        if cls.ON_UPDATE == "kept":
            kept = cast(Self, original_resource)
            cls.update_resource(kept, cloudformation_json.get("Properties", {}))
            return kept
        old = original_resource.physical_resource_id
        renamed = old != new_resource_name
        if cls.ON_UPDATE == "replaced" or (cls.ON_UPDATE == "replaced when renamed" and renamed):
            cls.delete_from_cloudformation_json(old, cloudformation_json, account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        cls.delete_resource(resource_name, cloudformation_json.get("Properties", {}), account_id, region_name)


class ApprovalGateResource(CloudFormationStandIn):
    """What the approval gate's CloudFormation stand-ins share: no update, no cleanup needed."""

    ON_UPDATE: ClassVar[UpdateKind] = "kept"


def cloudformation_yaml_tag(loader: Any, tag: str, node: Any) -> Any:
    """Stands in for CloudFormation's YAML short form ``!Condition``, as moto reads every other tag.

    AWS: the Condition function "returns the evaluated result of the specified condition"; its
    short form ``!Condition conditionName`` is ``{"Condition": "conditionName"}`` (AWS CloudFormation
    Template Reference, "Condition"), as in ``!And [!Equals [...], !Condition SomeOtherCondition]``.
    moto's tag constructor makes every ``!X`` an ``Fn::X``, and its condition parser knows
    ``Condition``, not ``Fn::Condition``: ``!And [!Condition A, !Condition B]`` was false whatever
    A and B, so fleet/template.yaml's rule with both hosts and paths matched on hosts alone.
    """
    if tag == "!Condition":
        return {"Condition": loader.construct_scalar(node)}
    return yaml_tag_constructor(loader, tag, node)
