"""Blue/green rollouts stopped outside canaryfleet (StopExecution), on the local cloud."""

import time

from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.rollout_record import RolloutRecord

from canaryfleet_local.bundles import bundle
from canaryfleet_local.rollout_job import APPLICATION, scenario_cloud, upload_build
from canaryfleet_local.scenarios import load_scenario
from tests.e2e.test_blue_green import BLUE, _ended, desired, wait_for
from tests.e2e.test_rollout_scenarios import DEADLINE, QUIET

WARM_SECONDS = 8


def _released(store: DynamoRolloutStore) -> RolloutRecord | None:
    """The rollout once it ended with its released stage recorded (two writes)."""
    record = _ended(store)
    return record if record is not None and record.stage_released_at is not None else None


def test_a_release_stopped_while_its_old_color_is_warm_still_takes_that_color_to_zero_in_time() -> None:
    # Given a blue/green release that keeps its old color (blue) warm for 8 s after all traffic moved
    scenario = load_scenario("blue-green").model_copy(update={"scale_down_delay_seconds": WARM_SECONDS})
    deadline = time.monotonic() + DEADLINE
    with scenario_cloud(scenario, APPLICATION, QUIET) as (cloud, _):
        store = DynamoRolloutStore(cloud.output("StateTableName"))
        sfn = cloud.client("stepfunctions")
        upload_build(cloud, APPLICATION, "1.0.0", bundle())
        record = wait_for(lambda: _released(store), deadline)
        assert record.outcome == "released" and record.execution_arn is not None

        # When on-call stops its execution in that wait (the console's Stop button)
        sfn.stop_execution(executionArn=record.execution_arn, error="Manual", cause="looked finished")
        stopped = time.monotonic()
        released_at = record.stage_released_at
        assert released_at is not None and desired(cloud, BLUE) == 2
        wait_for(lambda: desired(cloud, BLUE) == 0, deadline)
        scaled_down = time.monotonic()
        machine = cloud.resource("RolloutStateMachine")
        recoveries = [
            e["name"]
            for e in sfn.list_executions(stateMachineArn=machine)["executions"]
            if e["name"].startswith(f"{record.rollout_id}-recovery-")
        ]
        after = store.get(APPLICATION, record.rollout_id)

    # Then a recovery waits out what was left of the delay and takes blue to zero; the release stands
    assert len(recoveries) == 1
    assert scaled_down - stopped >= 1, "not at the stop: the rest of the delay is kept"
    assert after is not None and (after.outcome, after.reason) == ("released", "")
