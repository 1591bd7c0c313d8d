"""Entry point: an instance is leaving (hook, Spot warning, rebalance): deregister it, queue its drain."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.drain_store import DrainStore
from canaryfleet.adapters.drains import (
    AutoScalingLifecycleHooks,
    Ec2InstanceDirectory,
    ElbTargetGroups,
    SqsDrainQueue,
)
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.logic.drain_request import DrainRequests, request_drain
from canaryfleet.models.drain import DrainEvent
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import DrainRequestSettings, load_settings


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(DrainRequestSettings)
    leaving = parse_event(DrainEvent, event)
    requests = DrainRequests(
        directory=Ec2InstanceDirectory(),
        registry=SsmRegistry(),
        store=DrainStore(settings.state_table_name),
        rollouts=DynamoRolloutStore(settings.state_table_name),
        targets=ElbTargetGroups(),
        queue=SqsDrainQueue(settings.drain_queue_url),
        hooks=AutoScalingLifecycleHooks(),
    )
    return request_drain(leaving, requests, datetime.now(UTC)).model_dump(mode="json", exclude_none=True)
