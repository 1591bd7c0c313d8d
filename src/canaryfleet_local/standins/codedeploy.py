"""CodeDeploy: revisions, deployments that progress, StopDeployment, CodeDeploy's own rollbacks,
and the application and deployment group resources of fleet stacks."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self
from unittest import mock

from moto.autoscaling.models import autoscaling_backends
from moto.cloudwatch.models import CloudWatchBackend, cloudwatch_backends
from moto.codedeploy import responses as codedeploy_responses
from moto.codedeploy.exceptions import DeploymentDoesNotExistException
from moto.codedeploy.models import CodeDeployBackend, DeploymentInfo, codedeploy_backends
from moto.codedeploy.responses import CodeDeployResponse
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.utils import utcnow

from canaryfleet_local.standins.aws_clients import shared_client
from canaryfleet_local.standins.cloudformation import CloudFormationStandIn, cfn_bool

# Statuses of a deployment that has not ended (botocore codedeploy model, shape DeploymentStatus:
# Created | Queued | InProgress | Baking | Ready, the others being Succeeded | Failed | Stopped).
ACTIVE_STATUSES = frozenset({"Created", "Queued", "InProgress", "Baking", "Ready"})
# A deployment that has not reached any instance yet stops at once; one that has, stops when its
# instances finish the lifecycle event they are in (StopDeploymentOutput.status: Pending).
NOT_STARTED_STATUSES = frozenset({"Created", "Queued"})


@dataclass
class _DeploymentState:
    """What CodeDeploy knows of a deployment and moto does not keep."""

    rollback_info: dict[str, str] = field(default_factory=dict)  # GetDeployment's rollbackInfo
    error_information: dict[str, str] = field(default_factory=dict)  # GetDeployment's errorInformation
    stop_rolls_back: bool | None = None  # None: not stopped; else whether its stop rolls it back
    stop_error: dict[str, str] = field(default_factory=dict)  # errorInformation its stop ends with


class CodeDeployLifecycle:
    """Stands in for CodeDeploy's deployment lifecycle and the API calls moto lacks.

    moto records a created deployment and leaves it "Created" for ever, allows any number of
    them in one deployment group, never rolls one back, and has no RegisterApplicationRevision,
    GetApplicationRevision or StopDeployment. Here, as on AWS:

    - a deployment group has one active deployment at a time: CreateDeployment refuses a second
      with ``DeploymentLimitExceededException`` (CodeDeploy quotas, "Concurrent deployments per
      deployment group: 1", https://docs.aws.amazon.com/codedeploy/latest/userguide/limits.html;
      botocore codedeploy model: CreateDeployment's errors);
    - a deployment that fails, or is stopped, with automatic rollback on for it (its own
      ``autoRollbackConfiguration`` when CreateDeployment gave one, else its group's) is rolled
      back by a NEW deployment of the group's last successful revision, created by
      ``codeDeployRollback``, with ``rollbackInfo`` on both; a group with no earlier successful
      deployment is not rolled back ("Redeploy and roll back a deployment with CodeDeploy",
      https://docs.aws.amazon.com/codedeploy/latest/userguide/deployments-rollback-and-redeploy.html;
      botocore shapes RollbackInfo, DeploymentCreator, CreateDeploymentInput.autoRollbackConfiguration);
    - StopDeployment answers ``Pending`` while the instances finish their lifecycle event (the
      deployment stays active until then) and ``DeploymentAlreadyCompletedException`` for one that
      ended (botocore: StopDeploymentOutput.status Pending | Succeeded, StopDeployment's errors);
    - GetDeployment reports ``creator``, ``createTime``, ``completeTime``, ``rollbackInfo`` and
      ``errorInformation`` (moto answers the last two empty);
    - a deployment whose alarm configuration is enabled (its own ``overrideAlarmConfiguration``
      when CreateDeployment gave one, else its group's) is stopped, ending ``Stopped`` with error
      code ``ALARM_ACTIVE``, when one of its alarms is in ALARM at any moment while it is active:
      CodeDeploy can "stop a deployment whenever any CloudWatch alarm you associate with the
      deployment group is activated" and "If any of the specified alarms are activated, the
      deployment stops, and the status is updated to Stopped" ("Monitoring deployments with
      CloudWatch alarms in CodeDeploy",
      https://docs.aws.amazon.com/codedeploy/latest/userguide/monitoring-create-alarms.html;
      botocore codedeploy model: ``ErrorCode`` ``ALARM_ACTIVE``, AutoRollbackEvent
      ``DEPLOYMENT_STOP_ON_ALARM``, and ``CreateDeploymentInput.overrideAlarmConfiguration``,
      which turns the polling off for a deployment "so that the new deployment proceeds without
      being blocked by the alarm that was generated by the previous, failed, deployment").
      The alarms are read as the deployment is created, each time one of CloudWatch's alarms
      goes to ALARM (every SetAlarmState, the simulator's and the evaluated alarms' alike, so an
      alarm back to OK before the deployment ends has still stopped it), and as its instances
      finish. A deployment that has not started stops at once; one that has stops as a stop by
      request does: its instances finish their lifecycle event (``on_stop_requested``,
      :meth:`complete_stop`). moto keeps both configurations and reads neither. Not played:
      ``ignorePollAlarmFailure`` (the local CloudWatch always answers).

    Revisions are kept per application. Whoever plays the instances (the fleet simulator, or a
    test) gets every created deployment through ``on_created`` and ends it with :meth:`finish`;
    a stop it is told of through ``on_stop_requested`` ends with :meth:`complete_stop`.
    """

    def __init__(self) -> None:
        self.revisions: dict[str, list[dict[str, Any]]] = {}
        self.on_created: Callable[[Any], None] | None = None
        self.on_stop_requested: Callable[[Any], None] | None = None
        self.created: list[Any] = []
        self._backends: dict[str, CodeDeployBackend] = {}
        self._states: dict[str, _DeploymentState] = {}
        # Deployments whose player is being given them (on_created): their status is the
        # player's to change, so an alarm's stop waits until it has returned.
        self._handing: set[str] = set()
        # One lock for every group: the one-active-deployment check and the creation are one step.
        self._lock = threading.RLock()
        self._original_create: Callable[..., str] = CodeDeployBackend.create_deployment

    # -- the rules -------------------------------------------------------------------------
    def _create(self, backend: CodeDeployBackend, creator: str, *args: Any, **kwargs: Any) -> str:
        """CreateDeployment, refused while the group has an active deployment."""
        application, group = _application_and_group(args, kwargs)
        with self._lock:
            for other in backend.deployments.values():
                if (
                    other.application_name == application
                    and other.deployment_group_name == group
                    and other.status in ACTIVE_STATUSES
                ):
                    raise JsonRESTError(
                        "DeploymentLimitExceededException",
                        f"The Deployment {other.deployment_id} is already in progress for deployment group "
                        f"{group} of application {application}.",
                    )
            deployment_id = self._original_create(backend, *args, **kwargs)
            deployment = backend.deployments[deployment_id]
            deployment.creator = creator  # moto writes "user" whoever created it
            self._backends[deployment_id] = backend
            self._states[deployment_id] = _DeploymentState()
            self.created.append(deployment)
            self._handing.add(deployment_id)
        self._stop_if_alarmed(deployment)  # not started yet: it stops at once
        try:
            if self.on_created is not None:
                self.on_created(deployment)
        finally:
            with self._lock:
                self._handing.discard(deployment_id)
        # An alarm that went to ALARM while its player was taking it was not acted on then.
        self._stop_if_alarmed(deployment)
        return deployment_id

    def _deployment(self, deployment_id: str) -> DeploymentInfo:
        backend = self._backends.get(deployment_id)
        if backend is None:
            raise DeploymentDoesNotExistException(f"The deployment {deployment_id} could not be found.")
        return backend.deployments[deployment_id]

    @staticmethod
    def _rollback_configuration(deployment: DeploymentInfo) -> dict[str, Any]:
        """The deployment's ``autoRollbackConfiguration`` if CreateDeployment gave one, else its group's."""
        own = deployment.auto_rollback_configuration
        group = deployment.deployment_group.auto_rollback_configuration
        return dict(own if own is not None else group or {})

    def _alarms_in_alarm(self, deployment: DeploymentInfo) -> list[str]:
        """The deployment's alarms in ALARM now, if its alarm configuration is enabled."""
        own = deployment.override_alarm_configuration
        config = _alarm_configuration(
            own if own is not None else deployment.deployment_group.alarm_configuration
        )
        if not config.get("enabled"):
            return []
        backend = self._backends[deployment.deployment_id]
        alarms = cloudwatch_backends[backend.account_id][backend.region_name].alarms
        names = [str(alarm.get("name", "")) for alarm in config.get("alarms") or []]
        return [name for name in names if name in alarms and alarms[name].state_value == "ALARM"]

    def _alarm_stop(self, deployment: DeploymentInfo) -> bool | None:
        """Poll an active deployment's alarms (lock held): one in ALARM starts its stop.

        None when it goes on (no alarm in ALARM, or it ended or is stopping already); else whether
        it had not started, so that its stop ends at once.
        """
        state = self._states[deployment.deployment_id]
        if deployment.status not in ACTIVE_STATUSES or state.stop_rolls_back is not None:
            return None
        firing = self._alarms_in_alarm(deployment)
        if not firing:
            return None
        state.stop_rolls_back = self._rolls_back_on(deployment, "DEPLOYMENT_STOP_ON_ALARM")
        state.stop_error = {
            "code": "ALARM_ACTIVE",
            "message": f"The deployment was stopped because its alarms were activated: {', '.join(firing)}.",
        }
        return deployment.status in NOT_STARTED_STATUSES

    def _stop_if_alarmed(self, deployment: DeploymentInfo) -> None:
        """Poll the deployment's alarms; one in ALARM stops it, at once or once its instances finish."""
        with self._lock:
            at_once = self._alarm_stop(deployment)
        if at_once:
            self.complete_stop(deployment.deployment_id)
        elif at_once is not None and self.on_stop_requested is not None:
            self.on_stop_requested(deployment)

    def _alarm_went_off(self) -> None:
        """One of CloudWatch's alarms went to ALARM: CodeDeploy's poll of every active deployment."""
        with self._lock:
            active = [
                d
                for d in self.created
                if d.status in ACTIVE_STATUSES and d.deployment_id not in self._handing
            ]
        for deployment in active:
            self._stop_if_alarmed(deployment)

    def _rolls_back_on(self, deployment: DeploymentInfo, event: str) -> bool:
        """Whether automatic rollback is on for this deployment and this AutoRollbackEvent."""
        config = self._rollback_configuration(deployment)
        return bool(config.get("enabled")) and event in (config.get("events") or [])

    def _roll_back(self, deployment: DeploymentInfo) -> str | None:
        """CodeDeploy's rollback: the group's last successful revision, as a new deployment."""
        if deployment.creator == "codeDeployRollback":
            return None  # a rollback that fails is not rolled back in its turn
        backend = self._backends[deployment.deployment_id]
        succeeded = [
            other
            for other in backend.deployments.values()
            if other.application_name == deployment.application_name
            and other.deployment_group_name == deployment.deployment_group_name
            and other.status == "Succeeded"
        ]
        if not succeeded:
            self._states[deployment.deployment_id].rollback_info = {
                "rollbackMessage": "Automatic rollback was not performed: the deployment group has no "
                "earlier successful deployment to roll back to."
            }
            return None
        last_good = max(succeeded, key=lambda d: d.complete_time or d.create_time)
        rollback_id = self._create(
            backend,
            "codeDeployRollback",
            deployment.application_name,
            deployment.deployment_group_name,
            last_good.revision,
            description=f"Rollback of {deployment.deployment_id}",
        )
        self._states[deployment.deployment_id].rollback_info = {
            "rollbackDeploymentId": rollback_id,
            "rollbackMessage": f"Automatic rollback started: deployment {rollback_id}.",
        }
        self._states[rollback_id].rollback_info = {
            "rollbackTriggeringDeploymentId": deployment.deployment_id,
            "rollbackMessage": f"Rollback of deployment {deployment.deployment_id}.",
        }
        return rollback_id

    # -- what the instances' player calls --------------------------------------------------
    def finish(self, deployment_id: str, succeeded: bool, error: dict[str, str] | None = None) -> bool:
        """The deployment ended on its instances; False if it had ended or is being stopped.

        Its status is then Succeeded, Failed, or Stopped when one of its alarms is in ALARM (the
        alarms are polled once more; its instances are done, so the stop ends at once). A failure
        rolls back when DEPLOYMENT_FAILURE is among its rollback events, an alarm's stop when
        DEPLOYMENT_STOP_ON_ALARM is. ``error`` is GetDeployment's ``errorInformation`` (``code``,
        ``message``) of a failure.
        """
        with self._lock:
            deployment = self._deployment(deployment_id)
            state = self._states[deployment_id]
            if deployment.status not in ACTIVE_STATUSES or state.stop_rolls_back is not None:
                return False  # a stopping deployment ends as Stopped (complete_stop)
            if self._alarm_stop(deployment) is not None:
                rolls_back = bool(self._end_stop(deployment))
            else:
                deployment.status = "Succeeded" if succeeded else "Failed"
                deployment.complete_time = utcnow()
                if not succeeded:
                    state.error_information = dict(error or {})
                rolls_back = not succeeded and self._rolls_back_on(deployment, "DEPLOYMENT_FAILURE")
        if rolls_back:
            self._roll_back(deployment)
        return True

    def request_stop(self, deployment_id: str, auto_rollback: bool | None) -> str:
        """StopDeployment: ``Succeeded`` (stopped now) or ``Pending`` (instances finishing)."""
        with self._lock:
            deployment = self._deployment(deployment_id)
            if deployment.status not in ACTIVE_STATUSES:
                raise JsonRESTError(
                    "DeploymentAlreadyCompletedException", f"The deployment {deployment_id} has completed."
                )
            state = self._states[deployment_id]
            if state.stop_rolls_back is None:
                # StopDeploymentInput.autoRollbackEnabled decides when given; without it, the
                # deployment's rollback configuration and its DEPLOYMENT_STOP_ON_REQUEST event do.
                state.stop_rolls_back = (
                    auto_rollback
                    if auto_rollback is not None
                    else self._rolls_back_on(deployment, "DEPLOYMENT_STOP_ON_REQUEST")
                )
            started = deployment.status not in NOT_STARTED_STATUSES
        if not started:
            self.complete_stop(deployment_id)
            return "Succeeded"
        if self.on_stop_requested is not None:
            self.on_stop_requested(deployment)
        return "Pending"

    def complete_stop(self, deployment_id: str) -> bool:
        """The stopped deployment's instances finished their lifecycle event: it ends Stopped."""
        with self._lock:
            deployment = self._deployment(deployment_id)
            rolls_back = self._end_stop(deployment)
            if rolls_back is None:
                return False
        if rolls_back:
            self._roll_back(deployment)
        return True

    def _end_stop(self, deployment: DeploymentInfo) -> bool | None:
        """A stopping deployment ends Stopped (lock held); whether it rolls back, None if not stopping."""
        state = self._states[deployment.deployment_id]
        if deployment.status not in ACTIVE_STATUSES or state.stop_rolls_back is None:
            return None
        deployment.status = "Stopped"
        deployment.complete_time = utcnow()
        if state.stop_error:
            state.error_information = dict(state.stop_error)
        return state.stop_rolls_back

    def any_active(self) -> bool:
        """Whether any deployment has not ended yet."""
        with self._lock:
            return any(d.status in ACTIVE_STATUSES for d in self.created)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        lifecycle = self
        lifecycle._original_create = CodeDeployBackend.create_deployment
        original_info = codedeploy_responses._deployment_info
        original_set_alarm_state = CloudWatchBackend.set_alarm_state

        def set_alarm_state(
            backend: CloudWatchBackend, alarm_name: str, reason: str, reason_data: str, state_value: str
        ) -> None:
            original_set_alarm_state(backend, alarm_name, reason, reason_data, state_value)
            if state_value == "ALARM":
                lifecycle._alarm_went_off()

        def create_deployment(backend: CodeDeployBackend, *args: Any, **kwargs: Any) -> str:
            return lifecycle._create(backend, "user", *args, **kwargs)

        def deployment_info(deployment: DeploymentInfo) -> dict[str, Any]:
            info: dict[str, Any] = original_info(deployment)
            state = lifecycle._states.get(deployment.deployment_id, _DeploymentState())
            info["rollbackInfo"] = dict(state.rollback_info)
            info["errorInformation"] = dict(state.error_information)
            return info

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
            if deployment_id not in response.codedeploy_backend.deployments:
                raise DeploymentDoesNotExistException(f"The deployment {deployment_id} could not be found.")
            requested = response._get_param("autoRollbackEnabled")
            status = lifecycle.request_stop(deployment_id, None if requested is None else bool(requested))
            message = "Stopped by request" if status == "Succeeded" else "Stop requested; instances finishing"
            return ActionResult({"status": status, "statusMessage": message})

        with (
            mock.patch.object(CodeDeployBackend, "create_deployment", create_deployment),
            mock.patch.object(codedeploy_responses, "_deployment_info", deployment_info),
            mock.patch.object(
                CodeDeployResponse,
                "register_application_revision",
                register_application_revision,
                create=True,
            ),
            mock.patch.object(CodeDeployResponse, "stop_deployment", stop_deployment, create=True),
            # CloudWatch's alarms, as CodeDeploy polls them while deployments are active.
            mock.patch.object(CloudWatchBackend, "set_alarm_state", set_alarm_state),
        ):
            yield


def _application_and_group(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    """CreateDeployment's application and group names, however moto's caller passed them."""
    names = list(args[:2])
    application = kwargs.get("application_name", names[0] if names else "")
    group = kwargs.get("deployment_group_name", names[1] if len(names) > 1 else "")
    return str(application), str(group)


def _alarm_configuration(value: Any) -> dict[str, Any]:
    """An AlarmConfiguration as the API's dict, whether moto kept the request's dict or its model."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    return {"enabled": value.enabled, "alarms": value.alarms}


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
        shared_client("codedeploy", region).create_application(
            applicationName=name,
            computePlatform=props.get("ComputePlatform", "Server"),
            tags=props.get("Tags", []),
        )
        return cls(name, {"ApplicationName": name})

    @classmethod
    def delete_resource(cls, physical_id: str, props: dict[str, Any], account_id: str, region: str) -> None:
        with contextlib.suppress(Exception):
            shared_client("codedeploy", region).delete_application(applicationName=physical_id)


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
        shared_client("codedeploy", region).create_deployment_group(**request)
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
            shared_client("codedeploy", region).delete_deployment_group(
                applicationName=props["ApplicationName"], deploymentGroupName=physical_id
            )
