"""The recovery sweep's service: every onboarded application's lock whose owner has ended.

Apart from ``wiring.rollouts``: only the sweep reads the whole registry, and every function
imports the whole of its wiring module at cold start (the registry's SSM provider is not needed
by the rollout's other functions).
"""

from __future__ import annotations

from collections.abc import Callable

from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.adapters.workflow import StepFunctionsExecutions, StepFunctionsRolloutWorkflow
from canaryfleet.logic import recovery
from canaryfleet.ports.clock import SystemClock
from canaryfleet.settings import RolloutWorkflowSettings


def sweep_locks(settings: RolloutWorkflowSettings) -> Callable[[], dict[str, str]]:
    clock = SystemClock()
    store = DynamoRolloutStore(settings.state_table_name, clock)
    workflow = StepFunctionsRolloutWorkflow(settings.rollout_state_machine_arn)

    def run() -> dict[str, str]:
        applications = [app.application for app in SsmRegistry().all()]
        callbacks, executions = StepFunctionsCallbacks(), StepFunctionsExecutions()
        return recovery.sweep(applications, store, workflow, callbacks, executions, clock)

    return run
