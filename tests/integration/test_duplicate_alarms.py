"""A canary alarm's state change delivered again (EventBridge delivers at least once) has one effect."""

from __future__ import annotations

import json
from typing import Any

from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.app_config import FleetGroup, registry_parameter

from canaryfleet_local.cloud import LocalCloud
from tests.helpers import load_event
from tests.integration.approval_gate import app_config
from tests.integration.helpers import put_state_item

APP = "payments-api"
ALARM = "payments-api-canary-5xx-rate"
ROLLOUT = "payments-api-1_4_2-5c1d9a0e7b3f42a8d6e1f0b9"


def _baking(cloud: LocalCloud) -> DynamoRolloutStore:
    """payments-api onboarded with its canary alarm, its rollout holding the lock and baking."""
    entry = app_config(APP)
    canary = FleetGroup(**{**entry.canary.model_dump(), "alarms": (ALARM,)})
    cloud.client("ssm").put_parameter(
        Name=registry_parameter(APP),
        Value=entry.model_copy(update={"canary": canary}).model_dump_json(),
        Type="String",
        Overwrite=True,
    )
    put_state_item(
        cloud,
        f"APP#{APP}",
        "LOCK",
        owner="arn:aws:states:us-east-1:123456789012:execution:rollout:x",
        rollout_id=ROLLOUT,
    )
    put_state_item(
        cloud,
        f"APP#{APP}",
        f"ROLLOUT#{ROLLOUT}",
        rollout_id=ROLLOUT,
        application=APP,
        version="1.0.0",
        artifact_bucket="artifacts",
        artifact_key=f"{APP}/1.0.0.zip",
        received_at="2026-11-26T10:00:00+00:00",
        wait_kind="bake",
        wait_token="a-token-step-functions-no-longer-knows",
        audit=[],
    )
    return DynamoRolloutStore(cloud.output("StateTableName"))


def _deliver(cloud: LocalCloud, event: dict[str, Any]) -> dict[str, Any]:
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.resource("AlarmEventFunction"), Payload=json.dumps(event).encode()
    )
    assert "FunctionError" not in response
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    return answer


def test_an_alarm_delivered_three_times_is_recorded_once_and_a_new_one_again(cloud: LocalCloud) -> None:
    store = _baking(cloud)
    event = load_event("alarm_event/alarm")

    answers = [_deliver(cloud, event) for _ in range(3)]
    alarms = [e.stored() for e in store.get(APP, ROLLOUT).audit if e.kind == "alarm"]  # type: ignore[union-attr]

    assert len({json.dumps(a, sort_keys=True) for a in answers}) == 1  # the same answer each time
    assert len(alarms) == 1
    _deliver(cloud, {**event, "id": "another-state-change"})
    assert len([e for e in store.get(APP, ROLLOUT).audit if e.kind == "alarm"]) == 2  # type: ignore[union-attr]


def test_an_entry_someone_broke_in_the_registry_does_not_stop_other_applications_alarms(
    cloud: LocalCloud,
) -> None:
    # Given payments-api baking, and another application's registry entry edited into bad JSON
    store = _baking(cloud)
    ssm = cloud.client("ssm")
    ssm.put_parameter(Name=registry_parameter("ledger"), Value='{"application": "ledger",', Type="String")
    ssm.put_parameter(Name=registry_parameter("fx-rates"), Value='{"application": "fx-rates"}', Type="String")

    # When payments-api's canary alarm goes to ALARM
    answer = _deliver(cloud, load_event("alarm_event/alarm"))

    # Then its rollout still hears of it: the broken entries are left out of the lookup, not fatal
    assert [e.alarm for e in store.get(APP, ROLLOUT).audit if e.kind == "alarm"] == [ALARM]  # type: ignore[union-attr]
    assert "not a canaryfleet alarm" not in json.dumps(answer)
