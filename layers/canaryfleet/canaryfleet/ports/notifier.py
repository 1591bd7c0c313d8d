"""Publishing what happened to a rollout or a drain (the notifications topic)."""

from __future__ import annotations

from typing import Any, Protocol


class Notifier(Protocol):
    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        """Publish one notice; ``kind`` is e.g. ``rollout.started``."""
        ...
