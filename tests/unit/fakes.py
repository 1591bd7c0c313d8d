"""In-memory adapters with the same contracts as the AWS ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from canaryfleet.adapters.notifier import Notifier
from canaryfleet.adapters.rollout_store import RolloutStore, StageTransition
from canaryfleet.models.rollout import RolloutInput, Stage


class InMemoryRolloutStore(RolloutStore):
    def __init__(self) -> None:
        self.rollouts: dict[str, RolloutInput] = {}
        self.stages: dict[str, dict[Stage, datetime]] = {}
        self.current: dict[str, tuple[Stage, datetime]] = {}

    def create(self, rollout: RolloutInput, received_at: datetime) -> bool:
        if rollout.rollout_id in self.rollouts:
            return False
        self.rollouts[rollout.rollout_id] = rollout
        return True

    def record_stage(self, application: str, rollout_id: str, stage: Stage, at: datetime) -> StageTransition:
        seen = self.stages.setdefault(rollout_id, {})
        if stage in seen:
            return StageTransition(first_time=False, previous_stage=None, previous_at=None)
        seen[stage] = at
        previous = self.current.get(rollout_id)
        self.current[rollout_id] = (stage, at)
        return StageTransition(
            first_time=True,
            previous_stage=previous[0] if previous else None,
            previous_at=previous[1] if previous else None,
        )


class RecordingNotifier(Notifier):
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        self.sent.append((kind, application, message))
