from datetime import UTC, datetime, timedelta

import pytest
from canaryfleet.errors import InvalidEvent, TransientAwsError
from canaryfleet.logic.record_stage import record_stage
from canaryfleet.models.events import parse_event
from canaryfleet.models.rollout import RecordStageRequest, Stage
from canaryfleet.observability import metrics
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
    restores = {"live_restore_error": None, "canary_restore_error": None, "release_color_error": None}
    detail |= restores | {"traffic_return": {"returned": True}} | errors
    payload = load_event("record_stage/started") | {"stage": "rolled_back", "at": T0.isoformat()}
    return parse_event(RecordStageRequest, payload | {"detail": detail})


def test_given_a_rollback_whose_restores_succeeded_then_its_reason_is_the_rollbacks_own() -> None:
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)

    record_stage(rolled_back(), store, notifier)

    [(_, _, message)] = notifier.sent
    assert message["detail"]["reason"] == "canary alarm payments-api-canary-5xx-rate"


def test_given_traffic_not_returned_to_live_then_the_notice_and_the_record_say_so_and_it_counts() -> None:
    # "Return all traffic to live" failed after its retries: its Catch kept the error
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)
    refused = {"Error": "Lambda.ServiceException", "Cause": "Lambda is unavailable"}
    metrics.clear_metrics()

    record_stage(rolled_back(traffic_return=refused), store, notifier)

    [(_, _, message)] = notifier.sent
    reason = message["detail"]["reason"]
    assert reason == (
        "canary alarm payments-api-canary-5xx-rate; the traffic was not returned to live: requests may "
        "still reach this build (Lambda is unavailable)"
    )
    record = store.get(REF["application"], REF["rollout_id"])
    assert record is not None and (record.outcome, record.reason) == ("rolled_back", reason)
    assert "RestoresFailed" in metrics.metric_set  # its platform alarm pages on-call
    metrics.clear_metrics()


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


# --- stages met at each canary step -------------------------------------------------------------
# A policy of set_weight 10 -> bake -> set_weight 50 -> bake -> approval shifts the traffic and
# judges the canary at two steps: each step's shift and verdict is news of its own.


def at_step(stage: Stage, step: int, at: datetime) -> RecordStageRequest:
    return request(stage, at).model_copy(update={"step": step})


class _FlakyNotifier(RecordingNotifier):
    """Its next ``failures`` publishes fail (SNS timed out)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    def publish(self, kind: str, application: str, message: dict[str, object]) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientAwsError("SNS Publish: read timeout")
        super().publish(kind, application, message)


def test_given_a_second_canary_step_then_its_shift_and_verdict_are_notified_with_their_step() -> None:
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)
    record_stage(at_step(Stage.TRAFFIC_SHIFTED, 0, T0), store, notifier)
    record_stage(at_step(Stage.VERDICT, 1, T0 + timedelta(seconds=60)), store, notifier)

    shifted = record_stage(at_step(Stage.TRAFFIC_SHIFTED, 2, T0 + timedelta(seconds=70)), store, notifier)
    judged = record_stage(at_step(Stage.VERDICT, 3, T0 + timedelta(seconds=130)), store, notifier)

    assert shifted.first_time and shifted.previous_stage is Stage.VERDICT
    assert judged.first_time and judged.previous_stage_seconds == 60
    assert [(kind, message["step"]) for kind, _, message in notifier.sent] == [
        ("rollout.traffic_shifted", 0),
        ("rollout.verdict", 1),
        ("rollout.traffic_shifted", 2),
        ("rollout.verdict", 3),
    ]
    record = store.get(REF["application"], REF["rollout_id"])
    assert record is not None and record.stage_at(Stage.TRAFFIC_SHIFTED) == T0  # the first entry


def test_given_a_steps_publish_failed_then_its_retry_tells_it_and_a_late_duplicate_does_not() -> None:
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), _FlakyNotifier()
    a_rollout(store)
    record_stage(at_step(Stage.TRAFFIC_SHIFTED, 0, T0), store, notifier)
    # Given step 2's shift was recorded and its publish failed
    step_2 = at_step(Stage.TRAFFIC_SHIFTED, 2, T0 + timedelta(seconds=70))
    notifier.failures = 1
    with pytest.raises(TransientAwsError):
        record_stage(step_2, store, notifier)

    # When Step Functions retries the task, and a late duplicate comes after
    retried = record_stage(step_2.model_copy(update={"at": T0 + timedelta(seconds=75)}), store, notifier)
    duplicate = record_stage(step_2.model_copy(update={"at": T0 + timedelta(seconds=80)}), store, notifier)

    # Then step 2 is told on the retry, once, and the duplicate moves nothing
    assert (retried.first_time, duplicate.first_time) == (False, False)
    assert [message["step"] for _, _, message in notifier.sent] == [0, 2]
    record = store.get(REF["application"], REF["rollout_id"])
    assert record is not None and record.current_stage_at == T0 + timedelta(seconds=70)


def test_given_a_stage_a_step_told_when_it_comes_again_without_a_step_then_nothing_is_told() -> None:
    # blue/green's move of all traffic to the release color shifts the traffic outside the steps
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)
    record_stage(at_step(Stage.TRAFFIC_SHIFTED, 0, T0), store, notifier)

    release = record_stage(request(Stage.TRAFFIC_SHIFTED, T0 + timedelta(seconds=300)), store, notifier)

    assert not release.first_time
    assert len(notifier.sent) == 1


def test_given_a_step_for_a_stage_met_once_per_rollout_then_the_payload_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="step: released is met once per rollout"):
        parse_event(RecordStageRequest, load_event("record_stage/started") | {"stage": "released", "step": 4})


def test_given_an_extended_bake_then_the_verdict_after_it_is_told_once_too() -> None:
    # An inconclusive verdict at step 1 extends the bake; the analysis after the extension
    # judges the whole bake and may now pass or fail: the thread must hear of it.
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)
    first = at_step(Stage.VERDICT, 1, T0)
    extended = first.model_copy(update={"extension": 1, "at": T0 + timedelta(seconds=600)})
    record_stage(first, store, notifier)

    told = record_stage(extended, store, notifier)
    again = record_stage(extended.model_copy(update={"at": T0 + timedelta(seconds=610)}), store, notifier)

    assert (told.first_time, again.first_time) == (True, False)
    assert [(m["step"], m.get("extension")) for _, _, m in notifier.sent] == [(1, None), (1, 1)]


@pytest.mark.parametrize(
    ("stage", "step"), [("verdict", None), ("traffic_shifted", 0), ("released", None)], ids=str
)
def test_given_an_extension_other_than_a_steps_verdicts_then_the_payload_is_refused(
    stage: str, step: int | None
) -> None:
    payload = load_event("record_stage/started") | {"stage": stage, "step": step, "extension": 1}
    with pytest.raises(InvalidEvent, match="extension: only a canary step's verdict"):
        parse_event(RecordStageRequest, payload)


# --- a release whose record failed ---------------------------------------------------------------
# "Record release" (FinalizeFunction) failed after its retries: its Catch passes the task's error
# to "Record rollout released" as record_error (statemachines/rollout.asl.yaml).


def released(record_error: object = None) -> RecordStageRequest:
    payload = load_event("record_stage/started") | {"stage": "released", "at": T0.isoformat()}
    return parse_event(RecordStageRequest, payload | {"detail": {"record_error": record_error}})


def test_given_a_release_recorded_then_its_notice_has_no_reason_and_nothing_is_counted() -> None:
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)
    metrics.clear_metrics()

    record_stage(released(), store, notifier)

    [(kind, _, message)] = notifier.sent
    assert kind == "rollout.released" and "reason" not in message["detail"]
    assert "ReleasesNotRecorded" not in metrics.metric_set


def test_given_a_release_not_recorded_then_its_notice_and_record_say_so_and_on_call_is_paged() -> None:
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)
    metrics.clear_metrics()
    error = {
        "Error": "Lambda.ServiceException",
        "Cause": '{"errorMessage": "An error occurred (AccessDeniedException) when calling the'
        ' UpdateItem operation: not authorized", "errorType": "ClientError"}',
    }

    record_stage(released(error), store, notifier)

    [(kind, _, message)] = notifier.sent
    reason = message["detail"]["reason"]
    assert kind == "rollout.released"
    assert reason.startswith("serves all traffic, but recording the release failed (An error occurred")
    assert "UpdateItem operation: not authorized)" in reason
    assert "last good revision, which a rollback restores, may still be the one released before it" in reason
    record = store.get(REF["application"], REF["rollout_id"])
    assert record is not None
    assert (record.outcome, record.reason, record.ended_at) == ("released", reason, T0)
    assert "ReleasesNotRecorded" in metrics.metric_set  # its platform alarm pages on-call


def test_given_a_release_not_recorded_and_its_record_refused_too_then_on_call_is_still_paged() -> None:
    class RefusingStore(InMemoryRolloutStore):
        def record_outcome(self, *args: object, **kwargs: object) -> None:
            raise TransientAwsError("DynamoDB UpdateItem: throttled")

    store, notifier = RefusingStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)
    metrics.clear_metrics()

    with pytest.raises(TransientAwsError):
        record_stage(released({"Error": "States.TaskFailed", "Cause": "throttled"}), store, notifier)

    assert "ReleasesNotRecorded" in metrics.metric_set  # flushed whatever the handler raises


def test_given_the_sample_of_a_release_not_recorded_then_its_reason_quotes_the_functions_error() -> None:
    store, notifier = InMemoryRolloutStore(FixedClock(T0)), RecordingNotifier()
    a_rollout(store)

    record_stage(
        parse_event(RecordStageRequest, load_event("record_stage/released_not_recorded")), store, notifier
    )

    [(_, _, message)] = notifier.sent
    assert message["detail"]["reason"].startswith(
        "serves all traffic, but recording the release failed (An error occurred"
        " (ProvisionedThroughputExceededException) when calling the UpdateItem operation"
    )
