"""EC2: Spot interruption warnings and rebalance recommendations."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from canaryfleet_local.standins.autoscaling import AutoScalingTerminationLifecycle
from canaryfleet_local.standins.eventbridge import emit_service_event, service_event


class Ec2SpotInterruptions:
    """Stands in for EC2 reclaiming Spot capacity and recommending rebalancing, which moto never does.

    ``interrupt`` emits the "EC2 Spot Instance Interruption Warning" of each instance; the
    instance's Auto Scaling group, if it has a termination hook, then puts it in
    Terminating:Wait (its lifecycle action event), and at the notice's end EC2 terminates
    it, hook or not. ``recommend_rebalance`` emits "EC2 Instance Rebalance Recommendation".
    Both events have the shape the EC2 User Guide documents.
    """

    def __init__(self, lifecycle: AutoScalingTerminationLifecycle, account_id: str, region: str) -> None:
        self.lifecycle = lifecycle
        self.account_id = account_id
        self.region = region
        self.interrupted: list[str] = []
        self.reclaimed: list[str] = []
        self._timers: list[threading.Timer] = []
        self._closed = False

    def _arn(self, instance_id: str) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account_id}:instance/{instance_id}"

    def _emit(self, detail_type: str, instance_id: str, detail: dict[str, Any]) -> None:
        event = service_event(
            self.account_id, self.region, "aws.ec2", detail_type, [self._arn(instance_id)], detail
        )
        emit_service_event(self.account_id, self.region, event)

    def _state(self, instance_id: str) -> Any:
        for group in self.lifecycle._backend().autoscaling_groups.values():
            for state in group.instance_states:
                if state.instance.id == instance_id:
                    return state
        return None

    def interrupt(self, instance_ids: list[str], notice_seconds: float = 120.0) -> None:
        for instance_id in instance_ids:
            self.interrupted.append(instance_id)
            self._emit(
                "EC2 Spot Instance Interruption Warning",
                instance_id,
                {"instance-id": instance_id, "instance-action": "terminate"},
            )
            state = self._state(instance_id)
            if state is not None:
                self.lifecycle.begin(state.instance.autoscaling_group, state)
        timer = threading.Timer(notice_seconds, self._reclaim, (list(instance_ids),))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def recommend_rebalance(self, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            self._emit("EC2 Instance Rebalance Recommendation", instance_id, {"instance-id": instance_id})

    def _reclaim(self, instance_ids: list[str]) -> None:
        if self._closed:
            return
        for instance_id in instance_ids:
            self.reclaimed.append(instance_id)
            with contextlib.suppress(Exception):
                self.lifecycle.terminate(instance_id, "Spot interruption")

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        try:
            yield
        finally:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
