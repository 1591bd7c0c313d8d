"""API Gateway: the approval page's HTTP API and its stage from templates
(canaryfleet_local.http_api serves them)."""

from __future__ import annotations

import json
from typing import Any, Self

from moto.core.common_models import CloudFormationModel

from canaryfleet_local.standins.aws_clients import shared_client
from canaryfleet_local.standins.cloudformation import ApprovalGateResource, cfn_bool


class CloudFormationHttpApi(ApprovalGateResource, CloudFormationModel):
    """Stands in for ``AWS::ApiGatewayV2::Api`` (an HTTP API with an OpenAPI ``Body``, as SAM writes it).

    moto's CloudFormation lacks the type; its API Gateway v2 API imports the body, so the
    routes and Lambda integrations the template declares exist as on AWS. Ref: the API id;
    ApiEndpoint: its execute-api URL (the local server is canaryfleet_local.http_api).
    """

    RESOURCE_TYPE = "AWS::ApiGatewayV2::Api"
    ATTRIBUTES = ("ApiEndpoint", "ApiId")

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        body = props.get("Body", {})
        client = shared_client("apigatewayv2", region)
        title = body.get("info", {}).get("title") or props.get("Name") or name
        api = client.create_api(Name=str(title), ProtocolType=props.get("ProtocolType", "HTTP"))
        if body:
            client.reimport_api(ApiId=api["ApiId"], Body=json.dumps(body))
        return cls(api["ApiId"], {"ApiEndpoint": api["ApiEndpoint"], "ApiId": api["ApiId"]})


class CloudFormationHttpApiStage(ApprovalGateResource, CloudFormationModel):
    """Stands in for ``AWS::ApiGatewayV2::Stage``, which moto's CloudFormation lacks (Ref: its name)."""

    RESOURCE_TYPE = "AWS::ApiGatewayV2::Stage"

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        settings = {
            key: int(value) if key == "ThrottlingBurstLimit" else float(value)
            for key, value in props.get("DefaultRouteSettings", {}).items()
            if key in ("ThrottlingBurstLimit", "ThrottlingRateLimit")
        }
        optional = {"DefaultRouteSettings": settings, "AccessLogSettings": props.get("AccessLogSettings")}
        shared_client("apigatewayv2", region).create_stage(
            ApiId=props["ApiId"],
            StageName=props.get("StageName", "$default"),
            AutoDeploy=cfn_bool(props.get("AutoDeploy", False)),
            **{key: value for key, value in optional.items() if value},
        )
        return cls(props.get("StageName", "$default"))
