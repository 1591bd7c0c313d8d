"""Approve, reject, abort and promote: one path, first decision wins, refused when nothing runs."""

from datetime import UTC, datetime

import pytest
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.errors import NotAwaitingApproval, RolloutNotRunning
from canaryfleet.logic.canary import begin_wait
from canaryfleet.logic.decisions import decide
from canaryfleet.models.artifact import ArtifactRef
from canaryfleet.models.decision import Decision
from canaryfleet.models.rollout import RolloutInput, RolloutRef, Stage
from canaryfleet.models.rollout_record import Wait
from canaryfleet.ports.clock import SystemClock

from canaryfleet_local.cloud import LocalCloud
from tests.integration.helpers import RecordingCallbacks, invoke

APP = "hello-app"

NOW = datetime.now(UTC)


@pytest.fixture
def store(cloud: LocalCloud) -> DynamoRolloutStore:
    return DynamoRolloutStore(cloud.output("StateTableName"))


def running(store: DynamoRolloutStore, cloud: LocalCloud, wait_kind: str | None) -> str:
    """A rollout holding the lock, waiting in ``wait_kind`` (or between waits)."""
    artifact = ArtifactRef.from_object("artifacts", f"{APP}/2.0.0.zip", version_id="v1")
    rollout = RolloutInput(
        rollout_id=artifact.rollout_id, application=APP, version="2.0.0", artifact=artifact
    )
    store.create(rollout, datetime.now(UTC))
    cloud.client("dynamodb").put_item(
        TableName=cloud.output("StateTableName"),
        Item={
            "pk": {"S": f"APP#{APP}"},
            "sk": {"S": "LOCK"},
            "owner": {"S": "arn:aws:states:us-east-1:123456789012:execution:rollout:x"},
            "rollout_id": {"S": rollout.rollout_id},
        },
    )
    if wait_kind:
        store.set_wait(APP, rollout.rollout_id, Wait(kind=wait_kind, token="token-1", started_at=NOW))
    return rollout.rollout_id


def decision(action: str, **changes: str) -> Decision:
    return Decision.model_validate(
        {"application": APP, "action": action, "by": "alice@example.com", **changes}
    )


def test_nothing_running_is_refused_with_a_typed_error(store: DynamoRolloutStore) -> None:
    with pytest.raises(RolloutNotRunning, match="hello-app has no running rollout"):
        decide(decision("abort"), store, RecordingCallbacks(), SystemClock())


def test_approve_outside_an_approval_wait_is_refused(cloud: LocalCloud, store: DynamoRolloutStore) -> None:
    running(store, cloud, "bake")

    with pytest.raises(NotAwaitingApproval, match=r"is not waiting for approval \(stage: bake\)"):
        decide(decision("approve"), store, RecordingCallbacks(), SystemClock())


def test_the_first_decision_wins_and_later_ones_learn_it(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    rollout_id = running(store, cloud, "approval")
    callbacks = RecordingCallbacks()

    first = decide(decision("approve", reason="ship it"), store, callbacks, SystemClock())
    store.set_wait(APP, rollout_id, Wait(kind="approval", token="token-1", started_at=NOW))  # a second click
    second = decide(decision("reject"), store, callbacks, SystemClock())

    assert (first.outcome, second.outcome) == ("applied", "already_decided")
    assert callbacks.succeeded == ["token-1"] and callbacks.failed == []
    record = store.get(APP, rollout_id)
    assert record is not None
    assert [(e.kind, e.by, e.reason) for e in record.audit] == [("approve", "alice@example.com", "ship it")]


def test_an_abort_between_waits_ends_the_next_wait(cloud: LocalCloud, store: DynamoRolloutStore) -> None:
    rollout_id = running(store, cloud, None)
    callbacks = RecordingCallbacks()

    recorded = decide(decision("abort", reason="incident"), store, callbacks, SystemClock())
    outcome = begin_wait(
        Wait(kind="bake", token="token-2", started_at=NOW),
        RolloutRef(application=APP, rollout_id=rollout_id, version="2.0.0"),
        store,
        callbacks,
    )

    assert (recorded.outcome, outcome) == ("recorded", "aborted")
    assert callbacks.failed == [("token-2", "Aborted", "aborted by alice@example.com: incident")]


@pytest.mark.parametrize(
    ("shifts", "too_late"),
    [
        ([("step-0", 10), ("release", 100)], True),  # blue/green moved all traffic to the release
        ([("step-0", 10), ("final", 0)], True),  # in place: live deployed, the canary's share back
        ([("step-0", 10)], False),  # still a canary: the abort rolls it back
        ([("step-0", 10), ("release", 100), ("rollback", 0)], False),  # rolling back already
    ],
)
def test_an_abort_once_the_build_serves_all_traffic_is_answered_too_late_and_changes_nothing(
    cloud: LocalCloud, store: DynamoRolloutStore, shifts: list[tuple[str, int]], too_late: bool
) -> None:
    # Given a running rollout between waits, its canary weights logged so far
    rollout_id = running(store, cloud, None)
    for seq, weight in shifts:
        store.log_weight(APP, rollout_id, seq, weight, NOW)

    # When on-call aborts it
    result = decide(decision("abort", reason="incident"), store, RecordingCallbacks(), SystemClock())

    # Then, once every request is the build's, nothing would honour it: said so, nothing written
    record = store.get(APP, rollout_id)
    assert record is not None
    if too_late:
        assert (result.outcome, result.detail) == (
            "already_decided",
            "too late to abort: 2.0.0 already serves all traffic and its rollout is ending as released;"
            " to go back, roll out the build before it",
        )
        assert record.abort_requested is None and record.audit == []
    else:
        assert result.outcome == "recorded"
        assert record.abort_requested is not None and [e.kind for e in record.audit] == ["abort"]


@pytest.mark.parametrize(
    ("outcome", "too_late"),
    [
        ("Succeeded", True),  # every instance, canary and live, runs the build
        (None, False),  # still deploying: its wait's token ends with the abort
        ("Failed", False),  # the rollback is on its way
    ],
)
def test_an_abort_once_the_live_deployment_succeeded_is_answered_too_late(
    cloud: LocalCloud, store: DynamoRolloutStore, outcome: str | None, too_late: bool
) -> None:
    # Given an in-place rollout whose live deployment has its outcome (or none yet), between the
    # deployment's end and the canary's share going back to live (no wait open, no final shift)
    rollout_id = running(store, cloud, None)
    store.log_weight(APP, rollout_id, "step-0", 10, NOW)
    store.remember_deployment(rollout_id, "live", "d-live", "hello-app-live")
    if outcome is not None:
        store.record_deployment_outcome("d-live", outcome, "")

    # When on-call aborts it
    result = decide(decision("abort", reason="incident"), store, RecordingCallbacks(), SystemClock())

    # Then after a success nothing would honour it: said so, nothing written; before, recorded
    record = store.get(APP, rollout_id)
    assert record is not None
    if too_late:
        assert result.outcome == "already_decided" and result.detail.startswith("too late to abort: 2.0.0 ")
        assert record.abort_requested is None and record.audit == []
    else:
        assert result.outcome == "recorded" and record.abort_requested is not None


def test_an_abort_after_a_rollback_began_is_recorded_even_if_the_live_deployment_succeeded(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    rollout_id = running(store, cloud, None)
    store.remember_deployment(rollout_id, "live", "d-live", "hello-app-live")
    store.record_deployment_outcome("d-live", "Succeeded", "")
    store.log_weight(APP, rollout_id, "rollback", 0, NOW)

    result = decide(decision("abort", reason="incident"), store, RecordingCallbacks(), SystemClock())

    assert result.outcome == "recorded"


def test_an_abort_once_the_release_is_recorded_is_answered_too_late(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    # Given a rollout whose released stage is recorded, its lock not freed yet
    rollout_id = running(store, cloud, None)
    store.record_stage(APP, rollout_id, Stage.RELEASED, NOW)

    result = decide(decision("abort", reason="incident"), store, RecordingCallbacks(), SystemClock())

    assert result.outcome == "already_decided" and result.detail.startswith("too late to abort: ")
    record = store.get(APP, rollout_id)
    assert record is not None and record.abort_requested is None


def test_a_late_answer_to_one_steps_approval_never_ends_the_next_steps_wait(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    # Given a rollout that has moved on from approval A (first step) to approval B (next step):
    # the answer to A was checked against the record just before B's wait began
    rollout_id = running(store, cloud, None)
    store.set_wait(
        APP,
        rollout_id,
        Wait(kind="approval", token="token-B", started_at=NOW, approval_id="B" * 22, approval_step=2),
    )
    callbacks = RecordingCallbacks()

    # When the answer to A reaches the one decision path
    with pytest.raises(NotAwaitingApproval, match=f"no longer waits for approval {'A' * 22}"):
        decide(decision("approve", approval_id="A" * 22), store, callbacks, SystemClock())

    # Then B's wait goes on untouched, and nothing is recorded as decided
    assert callbacks.succeeded == [] and callbacks.failed == []
    record = store.get(APP, rollout_id)
    assert record is not None and record.wait_token == "token-B" and record.audit == []
    # while an answer to B itself ends it
    assert (
        decide(decision("approve", approval_id="B" * 22), store, callbacks, SystemClock()).outcome
        == "applied"
    )
    assert callbacks.succeeded == ["token-B"]


def test_an_approval_id_goes_with_approve_or_reject_only() -> None:
    with pytest.raises(ValueError, match="approval_id goes with approve or reject only"):
        decision("abort", approval_id="A" * 22)


def test_a_decision_for_another_rollout_is_refused(cloud: LocalCloud, store: DynamoRolloutStore) -> None:
    running(store, cloud, "approval")

    with pytest.raises(RolloutNotRunning, match="rollout old-one is not running"):
        decide(decision("approve", rollout_id="old-one"), store, RecordingCallbacks(), SystemClock())


def test_the_decide_function_answers_a_malformed_decision_with_a_typed_error(cloud: LocalCloud) -> None:
    body, error = invoke(cloud, "DecideFunction", {"application": APP, "action": "merge", "by": "x"})

    assert (error, body["errorType"]) == ("Unhandled", "InvalidEvent")
    assert "action: Input should be 'approve', 'reject', 'abort' or 'promote'" in body["errorMessage"]


@pytest.mark.parametrize("channel", ["page", "slack"])
def test_the_decide_function_does_not_take_a_channel_only_the_approval_gate_records(
    cloud: LocalCloud, store: DynamoRolloutStore, channel: str
) -> None:
    # Given a rollout waiting for its approval
    rollout_id = running(store, cloud, "approval")
    before = store.get(APP, rollout_id)

    # When a caller of the function claims the decision came from the approval page or Slack
    body, error = invoke(
        cloud,
        "DecideFunction",
        {"application": APP, "action": "approve", "by": "alice@example.com", "channel": channel},
    )

    # Then it is refused as malformed, and the rollout still waits
    assert (error, body["errorType"]) == ("Unhandled", "InvalidEvent")
    assert "channel: Input should be 'cli' or 'local'" in body["errorMessage"]
    after = store.get(APP, rollout_id)
    assert after is not None
    assert (after, after.audit) == (before, [])


def test_an_override_whose_announcement_fails_is_taken_and_says_so(
    cloud: LocalCloud, store: DynamoRolloutStore
) -> None:
    # Given a running rollout (between its waits), and a notification topic SNS no longer has
    rollout_id = running(store, cloud, None)
    cloud.client("sns").delete_topic(TopicArn=cloud.resource("NotificationTopic"))

    # When an operator promotes it past the window (`canaryfleet promote --override-window`)
    body, error = invoke(
        cloud,
        "DecideFunction",
        {
            "application": APP,
            "action": "promote",
            "by": "cto@example.com",
            "reason": "outage fix",
            "override_window": True,
        },
    )

    # Then the decision is taken, not an error, and its detail says the announcement did not go out
    assert error is None, body
    assert (body["rollout_id"], body["outcome"]) == (rollout_id, "recorded")
    assert "its announcement in the rollout's Slack thread did not go out" in body["detail"]
    record = store.get(APP, rollout_id)
    assert record is not None and [o.by for o in record.window_overrides] == ["cto@example.com"]
