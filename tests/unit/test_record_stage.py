from datetime import UTC, datetime, timedelta

import pytest
from canaryfleet.errors import InvalidEvent
from canaryfleet.logic.record_stage import record_stage
from canaryfleet.models.events import parse_event
from canaryfleet.models.rollout import RecordStageRequest, Stage
from canaryfleet.ports.clock import FixedClock

from tests.helpers import FakeContext, load_event, load_handler
from tests.unit.fakes import InMemoryRolloutStore, RecordingNotifier, a_rollout

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
REF = load_event("record_stage/started")["ref"]


def request(stage: Stage, at: datetime = T0) -> RecordStageRequest:
    payload = load_event("record_stage/started") | {"stage": stage.value, "at": at.isoformat()}
    return parse_event(RecordStageRequest, payload)


def test_given_a_new_stage_then_it_is_notified_with_the_time_spent_in_the_previous_one() -> None:
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)
    record_stage(request(Stage.STARTED), store, notifier)

    result = record_stage(request(Stage.CANARY_DEPLOYED, T0 + timedelta(seconds=95)), store, notifier)

    assert result.first_time and result.previous_stage is Stage.STARTED
    assert result.previous_stage_seconds == 95
    kinds = [kind for kind, _, _ in notifier.sent]
    assert kinds == ["rollout.started", "rollout.canary_deployed"]
    assert notifier.sent[1][2]["previous_stage_seconds"] == 95


def test_given_a_stage_recorded_twice_then_it_is_notified_once() -> None:
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)
    record_stage(request(Stage.STARTED), store, notifier)

    again = record_stage(request(Stage.STARTED), store, notifier)

    assert not again.first_time
    assert len(notifier.sent) == 1


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"stage": "deploying"}, "stage: Input should be"),
        ({"ref": REF | {"application": "Bad App"}}, "ref.application: String should match pattern"),
        ({"ref": REF | {"rollout_id": "../other"}}, "ref.rollout_id: String should match pattern"),
        ({"application": "payments-api"}, "application: Extra inputs are not permitted"),
        ({"at": "yesterday"}, "at: Input should be a valid datetime"),
        ({"unexpected": 1}, "unexpected: Extra inputs are not permitted"),
    ],
)
def test_given_a_malformed_payload_when_handled_then_a_typed_error_names_it(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, object], problem: str
) -> None:
    monkeypatch.setenv("STATE_TABLE_NAME", "canaryfleet-state")
    monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:canaryfleet")
    handler = load_handler("record_stage")

    with pytest.raises(InvalidEvent, match=problem):
        handler.lambda_handler(load_event("record_stage/started") | change, FakeContext())


def rolled_back(**errors: object) -> RecordStageRequest:
    detail = {"reason": "canary alarm payments-api-canary-5xx-rate", "outcome": "rolled_back"}
    detail |= {"live_restore_error": None, "canary_restore_error": None, "release_color_error": None} | errors
    payload = load_event("record_stage/started") | {"stage": "rolled_back", "at": T0.isoformat()}
    return parse_event(RecordStageRequest, payload | {"detail": detail})


def test_given_a_rollback_whose_restores_succeeded_then_its_reason_is_the_rollbacks_own() -> None:
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)

    record_stage(rolled_back(), store, notifier)

    [(_, _, message)] = notifier.sent
    assert message["detail"]["reason"] == "canary alarm payments-api-canary-5xx-rate"


def test_given_a_restore_that_failed_then_the_notice_and_the_record_say_the_fleet_may_run_the_build() -> None:
    # The Catch of "Redeploy last good revision to live" kept the task's error: a deployment
    # failure (a plain Cause) and a Lambda error (a JSON Cause) are both told in words.
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)
    live = {"Error": "DeploymentFailed", "Cause": "deployment d-7 stopped: alarms were activated"}
    canary = {
        "Error": "DeploymentGroupBusy",
        "Cause": '{"errorMessage": "app/app-canary: busy", "errorType": "x"}',
    }

    record_stage(rolled_back(live_restore_error=live, canary_restore_error=canary), store, notifier)

    [(_, _, message)] = notifier.sent
    reason = message["detail"]["reason"]
    assert reason.startswith("canary alarm payments-api-canary-5xx-rate; the live group was not restored")
    assert "(deployment d-7 stopped: alarms were activated)" in reason
    assert (
        "the canary group was not restored to the last good revision and may still run this build" in reason
    )
    assert "(app/app-canary: busy)" in reason
    record = store.get(REF["application"], REF["rollout_id"])
    assert record is not None and (record.outcome, record.reason) == ("rolled_back", reason)


def test_given_a_release_color_left_up_then_the_rollback_says_it_still_runs_the_build() -> None:
    # The Catch of "Scale the release color to zero": the traffic could not be returned to live
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)
    left = {
        "Error": "ColorStillServing",
        "Cause": '{"errorMessage": "green still takes 10% of the requests (the traffic was not returned'
        ' to blue): it keeps its instances", "errorType": "ColorStillServing"}',
    }

    record_stage(rolled_back(release_color_error=left), store, notifier)

    [(_, _, message)] = notifier.sent
    assert message["detail"]["reason"] == (
        "canary alarm payments-api-canary-5xx-rate; the release color was not scaled to zero and still"
        " runs this build (green still takes 10% of the requests (the traffic was not returned to blue):"
        " it keeps its instances)"
    )
