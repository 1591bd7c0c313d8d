"""Auto Scaling: fleet stack groups as AWS creates them, and termination lifecycle hooks."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import (
    AutoScalingBackend,
    FakeAutoScalingGroup,
    TerminateInstanceActivity,
    autoscaling_backends,
)
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import EmptyResult

from canaryfleet_local.standins.cfn_resources import completing_cloudformation_create
from canaryfleet_local.standins.cloudformation import cfn_bool
from canaryfleet_local.standins.eventbridge import emit_service_event, service_event


class CloudFormationAutoScalingGroupProperties:
    """Stands in for what moto's ``AWS::AutoScaling::AutoScalingGroup`` skips or gets wrong.

    moto ignores ``CapacityRebalance`` and ``LifecycleHookSpecificationList`` (the
    termination hook the drains serve), and with a mixed instances policy it rounds the
    On-Demand share down and drops the remainder: a group of one at 50% On-Demand gets no
    instance, where AWS fills the whole desired capacity. While installed, the hooks and
    the setting are applied through moto's Auto Scaling backend right after the group is
    created, then the instances it is short of are launched and registered with its
    target groups.
    """

    @staticmethod
    def _complete(group: Any, props: dict[str, Any], account_id: str, region_name: str) -> None:
        backend = autoscaling_backends[account_id][region_name]
        for hook in props.get("LifecycleHookSpecificationList", []):
            backend.create_lifecycle_hook(
                name=hook["LifecycleHookName"],
                as_name=group.name,
                transition=hook["LifecycleTransition"],
                timeout=int(hook["HeartbeatTimeout"]) if "HeartbeatTimeout" in hook else None,
                result=hook.get("DefaultResult", "ABANDON"),
            )
        group.capacity_rebalance = cfn_bool(props.get("CapacityRebalance", False))
        missing = (group.desired_capacity or 0) - len(group.instance_states)
        if missing > 0:
            group.replace_autoscaling_group_instances(missing, group.get_propagated_tags())
            backend.update_attached_target_groups(group.name)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        with completing_cloudformation_create(FakeAutoScalingGroup, self._complete):
            yield


# CompleteLifecycleAction's result: "You can specify either CONTINUE or ABANDON" (botocore
# autoscaling model, CompleteLifecycleActionType.LifecycleActionResult). The model types it as a
# plain string, so botocore sends anything; the refusal's wording here is the stand-in's own.
LIFECYCLE_ACTION_RESULTS = frozenset({"CONTINUE", "ABANDON"})


@dataclass
class LifecycleAction:
    """An instance in Terminating:Wait, held by a termination hook."""

    token: str
    hook: str
    group: str
    instance_id: str
    started: float
    heartbeats: int = 0
    result: str | None = None
    ended_by: str | None = None  # CompleteLifecycleAction, or the Spot notice's end
    ended: float | None = None


class AutoScalingTerminationLifecycle:
    """Stands in for termination lifecycle hooks, which moto skips, and for the two calls that end them.

    moto terminates a scaled-in instance at once, whatever hooks its group has, and has no
    CompleteLifecycleAction or RecordLifecycleActionHeartbeat. Here, in a group with an
    ``autoscaling:EC2_INSTANCE_TERMINATING`` hook, scale-in (SetDesiredCapacity,
    UpdateAutoScalingGroup) and TerminateInstanceInAutoScalingGroup put the instances in
    ``Terminating:Wait`` and emit Auto Scaling's "EC2 Instance-terminate Lifecycle Action"
    event with a new token. CompleteLifecycleAction (by token, or by instance id; its result
    CONTINUE or ABANDON, else ``ValidationError``) ends the wait and terminates the instance;
    RecordLifecycleActionHeartbeat counts a heartbeat; both answer ``ValidationError`` when no
    action is active, as AWS does. An instance terminated while its group keeps its desired
    capacity is replaced (``terminate``). Neither the group's own deregistration before the wait
    nor the hook's timeout is played: ``pending`` lists what would be left to time out. moto
    also registers every instance of a group in its target groups on any change; instances that
    are leaving are left out here.
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self.actions: dict[str, LifecycleAction] = {}
        self._lock = threading.RLock()

    @property
    def pending(self) -> list[LifecycleAction]:
        with self._lock:
            return [a for a in self.actions.values() if a.ended is None]

    @property
    def completed(self) -> list[LifecycleAction]:
        with self._lock:
            return [a for a in self.actions.values() if a.ended_by == "CompleteLifecycleAction"]

    def _backend(self) -> Any:
        return autoscaling_backends[self.account_id][self.region]

    def termination_hook(self, group: Any) -> Any:
        for hook in self._backend().lifecycle_hooks.values():
            if (
                hook.auto_scaling_group_name == group.name
                and hook.lifecycle_transition == "autoscaling:EC2_INSTANCE_TERMINATING"
            ):
                return hook
        return None

    def begin(self, group: Any, state: Any) -> LifecycleAction | None:
        """Put one InService instance of ``group`` in Terminating:Wait; None if it has no hook."""
        hook = self.termination_hook(group)
        if hook is None or state.lifecycle_state != "InService":
            return None
        state.lifecycle_state = "Terminating:Wait"
        action = LifecycleAction(
            str(uuid.uuid4()), hook.name, group.name, state.instance.id, time.monotonic()
        )
        with self._lock:
            self.actions[action.token] = action
        event = service_event(
            self.account_id,
            self.region,
            "aws.autoscaling",
            "EC2 Instance-terminate Lifecycle Action",
            [group.arn],
            {
                "LifecycleActionToken": action.token,
                "AutoScalingGroupName": group.name,
                "LifecycleHookName": hook.name,
                "EC2InstanceId": action.instance_id,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "Origin": "AutoScalingGroup",
                "Destination": "EC2",
            },
        )
        emit_service_event(self.account_id, self.region, event)
        return action

    def _find(self, token: str | None, instance_id: str | None, hook: str, group: str) -> LifecycleAction:
        with self._lock:
            for action in self.actions.values():
                if action.ended is not None or (action.hook, action.group) != (hook, group):
                    continue
                if (token and action.token == token) or (not token and action.instance_id == instance_id):
                    return action
        raise ValidationError(f"No active Lifecycle Action found with token {token or instance_id}")

    def terminate(self, instance_id: str, ended_by: str, result: str | None = None) -> None:
        """End the instance: out of its group, terminated in EC2; its pending action ends too.

        A group left below its desired capacity (a Spot instance reclaimed, an instance terminated
        without decrementing the desired capacity) launches a replacement, as Auto Scaling does:
        "If you do not decrement the desired capacity, Amazon EC2 Auto Scaling launches instances
        to replace the ones that are terminated" (EC2 Auto Scaling API Reference,
        TerminateInstanceInAutoScalingGroup); for Spot, the group "attempts to launch a
        replacement instance" (CloudFormation, AWS::AutoScaling::AutoScalingGroup
        MixedInstancesPolicy), within the Spot capacity AutoScalingLaunches allows. A scale-in
        lowered the desired capacity first: nothing is replaced. Held by tests/e2e/test_blue_green.py
        (the Spot-during-bake story: replaced; the lost-capacity story: no Spot, not replaced).
        """
        backend = self._backend()
        short: list[Any] = []
        with self._lock:
            for action in self.actions.values():
                if action.instance_id == instance_id and action.ended is None:
                    action.ended, action.ended_by, action.result = time.monotonic(), ended_by, result
            for group in backend.autoscaling_groups.values():
                kept = [s for s in group.instance_states if s.instance.id != instance_id]
                if len(kept) < len(group.instance_states) and (group.desired_capacity or 0) > len(
                    [s for s in kept if not s.lifecycle_state.startswith("Terminating")]
                ):
                    short.append(group)
                group.instance_states = kept
        instance = backend.ec2_backend.get_instance(instance_id)
        if instance.state != "terminated":
            backend.ec2_backend.terminate_instances([instance_id])
        for group in short:
            group.set_desired_capacity(group.desired_capacity)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        stand_in = self
        original_desired = FakeAutoScalingGroup.set_desired_capacity
        original_terminate = AutoScalingBackend.terminate_instance
        original_register = AutoScalingBackend.update_attached_target_groups

        def set_desired_capacity(group: FakeAutoScalingGroup, new_capacity: int | None) -> None:
            active = group.active_instances()
            target = (group.min_size or 0) if new_capacity is None else new_capacity
            if stand_in.termination_hook(group) is None or target >= len(active):
                original_desired(group, new_capacity)
                return
            group.desired_capacity = target
            leaving = [s for s in active if not s.protected_from_scale_in][: len(active) - target]
            for state in leaving:
                stand_in.begin(group, state)

        def terminate_instance(backend: AutoScalingBackend, instance_id: str, should_decrement: bool) -> Any:
            state: Any = next(
                (
                    s
                    for g in backend.autoscaling_groups.values()
                    for s in g.instance_states
                    if s.instance.id == instance_id
                ),
                None,
            )
            group: Any = getattr(state.instance, "autoscaling_group", None) if state is not None else None
            if group is None or stand_in.termination_hook(group) is None:
                return original_terminate(backend, instance_id, should_decrement)
            original_size = group.desired_capacity
            if should_decrement:
                group.desired_capacity = (group.desired_capacity or 0) - 1
            stand_in.begin(group, state)
            return TerminateInstanceActivity(state.instance, original_size)

        def update_attached_target_groups(backend: AutoScalingBackend, group_name: str) -> None:
            group = backend.autoscaling_groups[group_name]
            leaving = [s for s in group.instance_states if s.lifecycle_state.startswith("Terminating")]
            group.instance_states = [s for s in group.instance_states if s not in leaving]
            try:
                original_register(backend, group_name)
            finally:
                group.instance_states.extend(leaving)

        def action_of(response: AutoScalingResponse) -> LifecycleAction:
            return stand_in._find(
                response._get_param("LifecycleActionToken"),
                response._get_param("InstanceId"),
                response._get_param("LifecycleHookName"),
                response._get_param("AutoScalingGroupName"),
            )

        def complete_lifecycle_action(response: AutoScalingResponse) -> EmptyResult:
            result = response._get_param("LifecycleActionResult")
            if result not in LIFECYCLE_ACTION_RESULTS:
                raise ValidationError(
                    f"LifecycleActionResult {result!r} is not valid: specify CONTINUE or ABANDON."
                )
            action = action_of(response)
            stand_in.terminate(action.instance_id, "CompleteLifecycleAction", result)
            return EmptyResult()

        def record_lifecycle_action_heartbeat(response: AutoScalingResponse) -> EmptyResult:
            action = action_of(response)
            with stand_in._lock:
                action.heartbeats += 1
            return EmptyResult()

        with (
            mock.patch.object(FakeAutoScalingGroup, "set_desired_capacity", set_desired_capacity),
            mock.patch.object(AutoScalingBackend, "terminate_instance", terminate_instance),
            mock.patch.object(
                AutoScalingBackend, "update_attached_target_groups", update_attached_target_groups
            ),
            mock.patch.object(
                AutoScalingResponse, "complete_lifecycle_action", complete_lifecycle_action, create=True
            ),
            mock.patch.object(
                AutoScalingResponse,
                "record_lifecycle_action_heartbeat",
                record_lifecycle_action_heartbeat,
                create=True,
            ),
        ):
            yield


class AutoScalingDesiredCapacityRange:
    """Stands in for SetDesiredCapacity refusing a capacity outside the group's minimum and maximum.

    "This number must be greater than or equal to the minimum size of the group and less than or
    equal to the maximum size of the group" (botocore ``autoscaling`` 2011-01-01,
    ``SetDesiredCapacityType.DesiredCapacity``); AWS answers ``ValidationError`` and changes
    nothing. moto sets whatever it is given, a negative number included.
    """

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = AutoScalingResponse.set_desired_capacity

        def set_desired_capacity(response: AutoScalingResponse) -> Any:
            name = response._get_param("AutoScalingGroupName")
            desired = response._get_int_param("DesiredCapacity")
            group = response.autoscaling_backend.autoscaling_groups.get(name)
            if group is not None and desired is not None:
                most, least = int(group.max_size or 0), int(group.min_size or 0)
                if desired > most:
                    raise ValidationError(
                        f"New SetDesiredCapacity value {desired} is above max value {most} "
                        "for the AutoScalingGroup."
                    )
                if desired < least:
                    raise ValidationError(
                        f"New SetDesiredCapacity value {desired} is below min value {least} "
                        "for the AutoScalingGroup."
                    )
            return original(response)

        with mock.patch.object(AutoScalingResponse, "set_desired_capacity", set_desired_capacity):
            yield
