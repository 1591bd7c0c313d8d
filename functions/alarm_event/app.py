"""Entry point: a CloudWatch alarm going to ALARM ends the bake of the canary it watches."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.idempotency import once_per_key
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.logic.canary import on_alarm_event
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import AlarmStateChange
from canaryfleet.observability import entry_point
from canaryfleet.settings import AlarmEventSettings, load_settings


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    settings = load_settings(AlarmEventSettings)
    envelope = parse_event(EventBridgeModel, event)
    detail = parse_event(AlarmStateChange, envelope.detail)
    # EventBridge delivers at least once: a repeat of a state change (its event id) has no effect.
    react = once_per_key(
        on_alarm_event,
        table_name=settings.idempotency_table_name,
        data_keyword="event",
        key="id",
        context=context,
    )
    return react(
        event={"id": envelope.id},
        alarm_name=detail.alarm_name,
        state=detail.state,
        registry=SsmRegistry(),
        store=DynamoRolloutStore(settings.state_table_name),
        callbacks=StepFunctionsCallbacks(),
    )
