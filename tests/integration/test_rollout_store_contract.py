"""One contract, two rollout stores: DynamoRolloutStore on moto and the unit tests' in-memory one.

- A record's audit lists a bounded number of alarms. A rollout record is one DynamoDB item, and
  an item holds at most 400 KB (DynamoDB's service quotas): an alarm that flaps while a rollout
  waits for days (a window, an approval) must not fill it. Past MAX_LISTED_ALARMS alarms the
  record only counts them, and decisions are always listed.
- A wait's end is written only while its token is the record's, and a stopped execution's reason
  with it, in the same write: whoever finds the wait gone finds why (logic/recovery.py).
- A stage recorded twice says whether its notice was published since: a retried "Record ..."
  task whose first attempt wrote the stage but did not publish (SNS failed, or the function
  died between) publishes it then, and only then.
- A stage met at each canary step (traffic shifted, verdict, awaiting approval) counts once a
  step, and says so of each step's notice; the stage's entry time stays its first (the timeline
  reads it), and a repeat without a step of a stage a step told is no news.
- An abort asked for is read by a write that changes nothing (ShiftTraffic's role may update the
  record, not read it), and reading a record that is not there makes none.
- A version's rollouts are listed without reading the others: `canaryfleet watch --version`
  looks for its upload's rollout every two seconds, and the store reads only the records whose
  id begins as that version's ids do (a DynamoDB key prefix), not the application's history.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.errors import TransientAwsError
from canaryfleet.logic.record_stage import record_stage
from canaryfleet.models.artifact import ArtifactRef
from canaryfleet.models.rollout import RecordStageRequest, RolloutInput, RolloutRef, Stage
from canaryfleet.models.rollout_record import MAX_LISTED_ALARMS, AbortRequest, AuditEntry, Wait
from canaryfleet.ports.clock import FixedClock

from tests.integration.state_tables import create_state_table, moto_tables
from tests.unit.fakes import InMemoryRolloutStore, RecordingNotifier, a_rollout

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
APP = "payments-api"


@pytest.fixture(scope="module")
def aws() -> Iterator[itertools.count[int]]:
    with moto_tables() as numbers:
        yield numbers


@pytest.fixture(params=["dynamodb", "in-memory"])
def store(request: pytest.FixtureRequest, aws: itertools.count[int]) -> Any:
    if request.param == "in-memory":
        return InMemoryRolloutStore(FixedClock(NOW))
    return DynamoRolloutStore(create_state_table(f"state-{next(aws)}"), FixedClock(NOW))


def upload(store: Any, version: str, etag: str) -> str:
    key = f"{APP}/{version}.zip"
    artifact = ArtifactRef(bucket="artifacts", key=key, etag=etag, application=APP, version=version)
    store.create(
        RolloutInput(rollout_id=artifact.rollout_id, application=APP, version=version, artifact=artifact), NOW
    )
    return artifact.rollout_id


# --- the audit ------------------------------------------------------------------------------
def test_past_the_listed_alarms_a_record_counts_them_and_still_lists_decisions(store: Any) -> None:
    # Given a rollout whose live alarm flapped more often than its record lists
    record = a_rollout(store, received_at=NOW)
    alarm_name = "payments-api-live-5xx-rate-" + "x" * 200  # long names: the worst case in bytes
    for minute in range(MAX_LISTED_ALARMS + 3):
        entry = AuditEntry(kind="alarm", alarm=alarm_name, side="live", at=NOW + timedelta(minutes=minute))
        store.append_audit(record.application, record.rollout_id, entry)

    # When someone aborts it
    abort = AuditEntry(kind="abort", by="oncall@example.com", reason="flapping", channel="cli", at=NOW)
    store.append_audit(record.application, record.rollout_id, abort)

    # Then the record lists the first alarms, counts the rest, and lists the abort
    after = store.get(record.application, record.rollout_id)
    alarms = [e for e in after.audit if e.kind == "alarm"]
    assert len(alarms) == MAX_LISTED_ALARMS
    assert alarms[-1].at == NOW + timedelta(minutes=MAX_LISTED_ALARMS - 1)
    assert after.alarms_not_listed == 3
    assert after.audit[-1] == abort


# --- a wait's end ---------------------------------------------------------------------------
def test_a_waits_end_says_why_its_execution_stopped_and_leaves_a_newer_wait_alone(store: Any) -> None:
    record = a_rollout(store, received_at=NOW)
    app, rollout_id = record.application, record.rollout_id
    store.set_wait(
        app, rollout_id, Wait(kind="approval", token="token-1", started_at=NOW, approval_id="a" * 22)
    )

    # An older token's end changes nothing, its reason included
    store.clear_wait(app, rollout_id, "token-0", stopped_because="stale")
    kept = store.get(app, rollout_id)
    assert (kept.wait_kind, kept.wait_token, kept.stopped_because) == ("approval", "token-1", None)

    # The current one's end forgets it and says why
    store.clear_wait(app, rollout_id, "token-1", stopped_because="stopped outside canaryfleet: Manual: paged")
    ended = store.get(app, rollout_id)
    assert (ended.wait_kind, ended.wait_token) == (None, None)
    assert ended.stopped_because == "stopped outside canaryfleet: Manual: paged"
    assert ended.approval_id == "a" * 22  # the approval it waited for is still named

    # A wait ended for no stop (a decision, an alarm) is forgotten all the same
    store.set_wait(app, rollout_id, Wait(kind="bake", token="token-2", started_at=NOW))
    store.clear_wait(app, rollout_id, "token-2")
    assert store.get(app, rollout_id).wait_kind is None


# --- an abort asked for -------------------------------------------------------------------
def test_an_abort_is_read_without_changing_the_record_and_a_missing_record_has_none(store: Any) -> None:
    # Given a rollout on-call has not aborted
    record = a_rollout(store, received_at=NOW)
    app, rollout_id = record.application, record.rollout_id
    assert store.abort_requested(app, rollout_id) is None

    # When on-call asks to abort it
    store.request_abort(app, rollout_id, AbortRequest(by="oncall@example.com", reason="bad metrics"))
    before = store.get(app, rollout_id)

    # Then the abort is read (the shift function's role reads it by a write that changes nothing)
    assert store.abort_requested(app, rollout_id) == AbortRequest(
        by="oncall@example.com", reason="bad metrics"
    )
    assert store.get(app, rollout_id) == before
    assert store.abort_requested(app, "no-such-rollout") is None
    assert store.get(app, "no-such-rollout") is None, "no record is made by the read"


def test_a_deployments_outcome_is_read_once_recorded_and_only_the_first_counts(store: Any) -> None:
    # Given a deployment a rollout created, its token stored, its end not yet known
    store.remember_deployment("r-1", "live", "d-1", "payments-api-live")
    store.attach_deployment_token("d-1", "token-1", {"purpose": "live"})
    assert store.deployment_outcome("d-1") is None
    assert store.deployment_outcome("d-unknown") is None

    # When its end is recorded, then recorded again by a late or duplicate event
    store.record_deployment_outcome("d-1", "Succeeded", "")
    store.record_deployment_outcome("d-1", "Failed", "late")

    # Then the first end is the one read
    assert store.deployment_outcome("d-1") == "Succeeded"


# --- the queue ------------------------------------------------------------------------------
def test_a_rollout_takes_its_place_in_the_queue_once_even_after_the_place_was_handed_over(store: Any) -> None:
    # Given a rollout queued, waiting, and handed the lock with its place
    execution = "arn:aws:states:us-east-1:123456789012:execution:rollout:first"
    store.enqueue("payments-api", "1#a", "first", execution)
    store.enqueue("payments-api", "1#a", "first", execution)  # a retry before the hand-over: one place
    assert store.queue_length("payments-api") == 1
    store.attach_queue_token("payments-api", "1#a", "first", execution, "token-first")
    head = store.queue_head("payments-api")
    assert head is not None and store.hand_lock_to("payments-api", head)

    # When its upload's start is retried (the first attempt started the execution, then failed)
    store.enqueue("payments-api", "1#a", "first", execution)

    # Then no place is taken again: nothing heads the queue that no wait stands behind
    assert store.queue_length("payments-api") == 0 and store.queue_head("payments-api") is None
    assert store.lock("payments-api").rollout_id == "first"


# --- listing by version ---------------------------------------------------------------------
def test_a_versions_rollouts_are_listed_and_only_they(store: Any) -> None:
    # Given uploads of 2.7.0 (twice), of versions whose ids begin alike, and of another version
    mine = {upload(store, "2.7.0", "a"), upload(store, "2.7.0", "b")}
    for version, etag in (("2_7_0", "c"), ("2.7.0-rc1", "d"), ("3.0.0", "e")):
        upload(store, version, etag)

    # When 2.7.0's rollouts are listed
    listed = store.list_rollouts(APP, "2.7.0")

    # Then they are exactly its two, and every rollout is listed without a version
    assert {r.rollout_id for r in listed} == mine
    assert len(store.list_rollouts(APP)) == 5


def test_the_table_reads_only_the_records_that_begin_as_the_versions_ids(aws: itertools.count[int]) -> None:
    store = DynamoRolloutStore(create_state_table(f"state-{next(aws)}"), FixedClock(NOW))
    for index in range(20):
        upload(store, f"1.{index}.0", "x")
    upload(store, "2.7.0", "a")

    # When 2.7.0's rollouts are listed, DynamoDB reads one record, not the application's 21
    scanned: list[int] = []
    real_query = store._db.query

    def query(**request: Any) -> Any:
        response = real_query(**request)
        scanned.append(int(response["ScannedCount"]))
        return response

    with mock.patch.object(store._db, "query", side_effect=query):
        assert len(store.list_rollouts(APP, "2.7.0")) == 1

    assert sum(scanned) == 1


# --- a stage's notice ---------------------------------------------------------------------------
class _FailsOnce(RecordingNotifier):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def publish(self, kind: str, application: str, message: dict[str, Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientAwsError("SNS Publish: read timeout")
        super().publish(kind, application, message)


def test_a_stage_whose_notice_failed_is_told_when_its_task_is_retried_and_only_then(store: Any) -> None:
    rollout_id = upload(store, "2.7.0", "e1")
    ref = RolloutRef(application=APP, rollout_id=rollout_id, version="2.7.0")
    stage = RecordStageRequest(ref=ref, stage=Stage.CANARY_DEPLOYED, at=NOW)
    notifier = _FailsOnce()

    # Given the first attempt recorded the stage, and its publish failed
    with pytest.raises(TransientAwsError):
        record_stage(stage, store, notifier)

    # When Step Functions retries the task, and a late duplicate comes after
    retried = record_stage(stage, store, notifier)
    duplicate = record_stage(stage, store, notifier)

    # Then the notice goes out on the retry, once
    assert (retried.first_time, duplicate.first_time) == (False, False)
    assert [(kind, message["stage"]) for kind, _, message in notifier.sent] == [
        ("rollout.canary_deployed", "canary_deployed")
    ]


# --- a stage met at each canary step ------------------------------------------------------------
def test_a_stage_counts_once_at_each_canary_step_and_its_first_entry_stays(store: Any) -> None:
    rollout_id = upload(store, "2.7.0", "e1")
    shifted = Stage.TRAFFIC_SHIFTED

    # Given the shifts of steps 0 and 2 (set_weight 10, then 50), the first one told
    step_0 = store.record_stage(APP, rollout_id, shifted, NOW, 0)
    store.stage_notified(APP, rollout_id, shifted, 0)
    step_2 = store.record_stage(APP, rollout_id, shifted, NOW + timedelta(minutes=10), 2)

    # When step 2's task is retried late
    duplicate = store.record_stage(APP, rollout_id, shifted, NOW + timedelta(minutes=11), 2)

    # Then each step counted once, and the repeat says step 2's notice is not out yet
    assert (step_0.first_time, step_2.first_time, duplicate.first_time) == (True, True, False)
    assert step_2.previous_stage is shifted and step_2.previous_at == NOW
    assert not duplicate.notified
    record = store.get(APP, rollout_id)
    assert record.stage_at(shifted) == NOW
    assert (record.current_stage, record.current_stage_at) == (shifted, NOW + timedelta(minutes=10))
    store.stage_notified(APP, rollout_id, shifted, 2)
    assert store.record_stage(APP, rollout_id, shifted, NOW + timedelta(minutes=12), 2).notified


def test_a_verdict_after_an_extended_bake_counts_once_besides_the_bakes_own(store: Any) -> None:
    rollout_id = upload(store, "2.7.0", "e1")
    verdict = Stage.VERDICT
    first = store.record_stage(APP, rollout_id, verdict, NOW, 1)
    store.stage_notified(APP, rollout_id, verdict, 1)

    extended = store.record_stage(APP, rollout_id, verdict, NOW + timedelta(minutes=10), 1, extension=1)
    duplicate = store.record_stage(APP, rollout_id, verdict, NOW + timedelta(minutes=11), 1, extension=1)

    assert (first.first_time, extended.first_time, duplicate.first_time) == (True, True, False)
    assert not duplicate.notified  # the extension's notice is not out yet, whatever the bake's was
    store.stage_notified(APP, rollout_id, verdict, 1, extension=1)
    assert store.record_stage(APP, rollout_id, verdict, NOW + timedelta(minutes=12), 1, extension=1).notified
    record = store.get(APP, rollout_id)
    assert record.stage_at(verdict) == NOW  # the first entry stays the first
    assert record.current_stage_at == NOW + timedelta(minutes=10)


def test_a_stage_a_step_told_is_no_news_again_without_a_step(store: Any) -> None:
    # blue/green's move of all traffic to the release color shifts it outside the canary steps
    rollout_id = upload(store, "2.7.0", "e1")
    store.record_stage(APP, rollout_id, Stage.TRAFFIC_SHIFTED, NOW, 0)
    store.stage_notified(APP, rollout_id, Stage.TRAFFIC_SHIFTED, 0)

    release = store.record_stage(APP, rollout_id, Stage.TRAFFIC_SHIFTED, NOW + timedelta(minutes=30))

    assert (release.first_time, release.notified) == (False, True)


def test_the_same_audit_entry_written_twice_is_listed_once_and_a_like_one_at_another_time_is_listed(
    store: Any,
) -> None:
    # Given a rollout whose approval two completions record at once (or an invocation retried)
    record = a_rollout(store, received_at=NOW)
    app, rollout_id = record.application, record.rollout_id
    approve = AuditEntry(kind="approve", by="ana@example.com", reason="ok", channel="slack", at=NOW)

    # When both append the same entry, and the same person later decides again
    store.append_audit(app, rollout_id, approve)
    store.append_audit(app, rollout_id, approve.model_copy())
    later = approve.model_copy(update={"at": NOW + timedelta(minutes=5)})
    store.append_audit(app, rollout_id, later)

    # Then the audit lists the decision once, and the later one too
    after = store.get(app, rollout_id)
    assert after.audit == [approve, later]
