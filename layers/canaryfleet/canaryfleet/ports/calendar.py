"""The release calendar's freezes, as logic reads and changes them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from canaryfleet.models.calendar import Freeze


class FreezeReader(Protocol):
    def freezes(self) -> list[Freeze]:
        """Every freeze declared, removed ones included, in no particular order."""
        ...


class FreezeCalendar(FreezeReader, Protocol):
    def declare(self, freeze: Freeze) -> None:
        """Store a new freeze; FreezeExists if its id is taken (nothing is changed then)."""
        ...

    def remove(self, freeze_id: str, by: str, reason: str, at: datetime) -> Freeze:
        """Mark the freeze removed (kept for the audit); UnknownFreeze if there is none standing."""
        ...
