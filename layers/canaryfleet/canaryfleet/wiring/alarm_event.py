"""The alarm handler's service: one effect per CloudWatch alarm state change.

Apart from ``wiring.rollouts``: only this function records its events for idempotency
(Powertools' idempotency utility), and every function imports the whole of its wiring module at
cold start.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.utilities.typing import LambdaContext

from canaryfleet.adapters.approval_expiry import StepFunctionsApprovalExpiry
from canaryfleet.adapters.idempotency import once_per_key
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic import canary
from canaryfleet.models.tasks import AlarmStateChange
from canaryfleet.ports.clock import SystemClock
from canaryfleet.settings import AlarmEventSettings


def alarm_event(
    settings: AlarmEventSettings, context: LambdaContext
) -> Callable[[str, AlarmStateChange], dict[str, str]]:
    """EventBridge delivers at least once: a repeat of a state change (its event id) has no effect."""
    clock = SystemClock()
    store = DynamoRolloutStore(settings.state_table_name, clock)
    ended_approvals = StepFunctionsApprovalExpiry(settings.approval_expiry_state_machine_arn)
    react = once_per_key(
        canary.on_alarm_event,
        table_name=settings.idempotency_table_name,
        data_keyword="event",
        key="id",
        context=context,
    )

    def run(event_id: str, detail: AlarmStateChange) -> dict[str, str]:
        return react(
            event={"id": event_id},
            alarm_name=detail.alarm_name,
            state=detail.state,
            description=str(detail.configuration.get("description", "")),
            registry=SsmRegistry(),
            store=store,
            callbacks=StepFunctionsCallbacks(),
            clock=clock,
            ended_approvals=ended_approvals,
        )

    return run
