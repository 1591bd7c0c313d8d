"""The window functions' services: the rollout store, the freeze calendar and the callbacks."""

from __future__ import annotations

from collections.abc import Callable

from canaryfleet.adapters.fleet import Metrics
from canaryfleet.adapters.freeze_store import DynamoFreezeCalendar
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic import window
from canaryfleet.models.calendar import WindowCheck, WindowCheckTask, WindowHoldTask
from canaryfleet.ports.clock import SystemClock
from canaryfleet.settings import BaseSettings


def check_window(settings: BaseSettings) -> Callable[[WindowCheckTask], WindowCheck]:
    clock = SystemClock()
    store = DynamoRolloutStore(settings.state_table_name, clock)
    calendar = DynamoFreezeCalendar(settings.state_table_name)

    def run(task: WindowCheckTask) -> WindowCheck:
        return window.check_window(task, store, calendar, clock)

    return run


def hold_for_window(settings: BaseSettings) -> Callable[[WindowHoldTask], str]:
    clock = SystemClock()
    store = DynamoRolloutStore(settings.state_table_name, clock)
    calendar = DynamoFreezeCalendar(settings.state_table_name)

    def run(task: WindowHoldTask) -> str:
        return window.hold_for_window(task, store, calendar, StepFunctionsCallbacks(), clock, Metrics())

    return run
