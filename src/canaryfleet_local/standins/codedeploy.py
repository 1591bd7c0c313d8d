"""CodeDeploy: revisions, deployments that progress, StopDeployment, and the application and
deployment group resources of fleet stacks."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Self
from unittest import mock

import boto3
from moto.autoscaling.models import autoscaling_backends
from moto.codedeploy.exceptions import DeploymentDoesNotExistException
from moto.codedeploy.models import CodeDeployBackend, codedeploy_backends
from moto.codedeploy.responses import CodeDeployResponse
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult

from canaryfleet_local.standins.cloudformation import CloudFormationStandIn, cfn_bool


class CodeDeployLifecycle:
    """Stands in for CodeDeploy's deployment lifecycle and the API calls moto lacks.

    moto records a created deployment and leaves it "Created" for ever, and has no
    RegisterApplicationRevision, GetApplicationRevision or StopDeployment. Here revisions
    are kept per application, every created deployment is handed to ``on_created`` (the
    fleet simulator decides how it progresses), and StopDeployment stops a running one.
    """

    def __init__(self) -> None:
        self.revisions: dict[str, list[dict[str, Any]]] = {}
        self.on_created: Callable[[Any], None] | None = None
        self.on_stopped: Callable[[Any], None] | None = None
        self.created: list[Any] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        lifecycle = self
        original_create = CodeDeployBackend.create_deployment

        def create_deployment(backend: CodeDeployBackend, *args: Any, **kwargs: Any) -> str:
            deployment_id = original_create(backend, *args, **kwargs)
            deployment = backend.deployments[deployment_id]
            lifecycle.created.append(deployment)
            if lifecycle.on_created is not None:
                lifecycle.on_created(deployment)
            return deployment_id

        def register_application_revision(response: CodeDeployResponse) -> ActionResult:
            application = response._get_param("applicationName")
            backend = response.codedeploy_backend
            backend.get_application(application)  # moto's own error for an unknown application
            lifecycle.revisions.setdefault(application, []).append(
                {
                    "revision": response._get_param("revision"),
                    "description": response._get_param("description"),
                }
            )
            return ActionResult({})

        def stop_deployment(response: CodeDeployResponse) -> ActionResult:
            deployment_id = response._get_param("deploymentId")
            deployment = response.codedeploy_backend.deployments.get(deployment_id)
            if deployment is None:
                raise DeploymentDoesNotExistException(f"The deployment {deployment_id} could not be found.")
            if deployment.status in ("Succeeded", "Failed", "Stopped"):
                raise JsonRESTError(
                    "DeploymentAlreadyCompletedException", f"The deployment {deployment_id} has completed."
                )
            deployment.status = "Stopped"
            deployment.complete_time = datetime.now(UTC)
            if lifecycle.on_stopped is not None:
                lifecycle.on_stopped(deployment)
            return ActionResult({"status": "Succeeded", "statusMessage": "Stopped by request"})

        with (
            mock.patch.object(CodeDeployBackend, "create_deployment", create_deployment),
            mock.patch.object(
                CodeDeployResponse,
                "register_application_revision",
                register_application_revision,
                create=True,
            ),
            mock.patch.object(CodeDeployResponse, "stop_deployment", stop_deployment, create=True),
        ):
            yield


def _lower_camel(value: Any) -> Any:
    """CloudFormation's PascalCase property names as the CodeDeploy API's camelCase (not tags)."""
    if isinstance(value, list):
        return [_lower_camel(item) for item in value]
    if isinstance(value, dict):
        return {
            key[:1].lower() + key[1:]: item if key == "Tags" else _lower_camel(item)
            for key, item in value.items()
        }
    return value


class CloudFormationCodeDeployApplication(CloudFormationStandIn, CloudFormationModel):
    """Stands in for the ``AWS::CodeDeploy::Application`` resource, which moto's CloudFormation lacks.

    moto's CodeDeploy API has applications; this creates one through it (Ref: the name).
    """

    RESOURCE_TYPE = "AWS::CodeDeploy::Application"
    NAME_PROPERTY = "ApplicationName"
    ATTRIBUTES = ("ApplicationName",)
    ON_UPDATE = "kept"

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        boto3.client("codedeploy", region_name=region).create_application(
            applicationName=name,
            computePlatform=props.get("ComputePlatform", "Server"),
            tags=props.get("Tags", []),
        )
        return cls(name, {"ApplicationName": name})

    @classmethod
    def delete_resource(cls, physical_id: str, props: dict[str, Any], account_id: str, region: str) -> None:
        with contextlib.suppress(Exception):
            boto3.client("codedeploy", region_name=region).delete_application(applicationName=physical_id)


class CloudFormationCodeDeployDeploymentGroup(CloudFormationStandIn, CloudFormationModel):
    """Stands in for the ``AWS::CodeDeploy::DeploymentGroup`` resource, which moto's CloudFormation lacks.

    The properties go to moto's CodeDeploy ``CreateDeploymentGroup`` as they are (camelCase
    keys, booleans as booleans). As CodeDeploy does, each named Auto Scaling group gets a
    launch hook (a new instance receives the last successful revision before it takes
    traffic), and ``GetDeploymentGroup`` names the groups and hooks in AWS's shape (moto
    answers ``[{}]``). moto always answers ``alarmConfiguration`` empty; its backend keeps
    the alarms set here. Ref: the group's name.
    """

    RESOURCE_TYPE = "AWS::CodeDeploy::DeploymentGroup"
    NAME_PROPERTY = "DeploymentGroupName"

    @staticmethod
    def _request(resource_name: str, props: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = _lower_camel(
            {key: value for key, value in props.items() if key != "Deployment"}
        )
        request["deploymentGroupName"] = resource_name
        for section in ("autoRollbackConfiguration", "alarmConfiguration"):
            if section in request:
                request[section]["enabled"] = cfn_bool(request[section].get("enabled"))
        alarms = request.get("alarmConfiguration", {})
        if "ignorePollAlarmFailure" in alarms:
            alarms["ignorePollAlarmFailure"] = cfn_bool(alarms["ignorePollAlarmFailure"])
        if "terminationHookEnabled" in request:
            request["terminationHookEnabled"] = cfn_bool(request["terminationHookEnabled"])
        terminate = request.get("blueGreenDeploymentConfiguration", {}).get(
            "terminateBlueInstancesOnDeploymentSuccess", {}
        )
        if "terminationWaitTimeInMinutes" in terminate:
            terminate["terminationWaitTimeInMinutes"] = int(terminate["terminationWaitTimeInMinutes"])
        return request

    @classmethod
    def create_resource(cls, name: str, props: dict[str, Any], account_id: str, region: str) -> Self:
        request = cls._request(name, props)
        application = request["applicationName"]
        boto3.client("codedeploy", region_name=region).create_deployment_group(**request)
        group = codedeploy_backends[account_id][region].get_deployment_group(application, name)
        groups: list[Any] = []  # moto keeps names; its GetDeploymentGroup serializes AWS's {name, hook}
        for group_name in request.get("autoScalingGroups", []):
            hook = f"CodeDeploy-managed-automatic-launch-deployment-hook-{name}-{uuid.uuid4().hex[:8]}"
            autoscaling_backends[account_id][region].create_lifecycle_hook(
                name=hook,
                as_name=group_name,
                transition="autoscaling:EC2_INSTANCE_LAUNCHING",
                timeout=600,
                result="ABANDON",
            )
            groups.append({"name": group_name, "hook": hook})
        group.auto_scaling_groups = groups
        return cls(name)

    @classmethod
    def delete_resource(cls, physical_id: str, props: dict[str, Any], account_id: str, region: str) -> None:
        with contextlib.suppress(Exception):
            boto3.client("codedeploy", region_name=region).delete_deployment_group(
                applicationName=props["ApplicationName"], deploymentGroupName=physical_id
            )
