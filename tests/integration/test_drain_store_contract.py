"""One contract, two drain stores: DynamoDrainStore on moto and the unit tests' InMemoryDrainStore.

The unit tests trust the in-memory store to refuse what DynamoDB's conditions refuse; these
tests hold both to the same answers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import boto3
import pytest
from canaryfleet.adapters.drain_store import DynamoDrainStore
from canaryfleet.models.drain import (
    LIFECYCLE_BUDGET,
    SPOT_BUDGET,
    DrainRecord,
    DrainStatus,
    DrainTrigger,
    LifecycleHookRef,
)
from canaryfleet.ports.drains import DrainStore

from tests.integration.state_tables import create_state_table, moto_tables
from tests.unit.drain_fakes import InMemoryDrainStore

APP = "orders-api"
INSTANCE = "i-0598c7d356eba48d7"
NOW = datetime(2026, 11, 26, 10, 15, 40, tzinfo=UTC)
HOOK = LifecycleHookRef(name="canaryfleet-drain", auto_scaling_group="asg", token="t" * 36)


@dataclass
class Subject:
    store: DrainStore
    start_rollout: Callable[[str], None]


@pytest.fixture(scope="module")
def aws() -> Iterator[itertools.count[int]]:
    with moto_tables() as numbers:
        yield numbers


@pytest.fixture(params=["dynamodb", "in-memory"])
def subject(request: pytest.FixtureRequest, aws: itertools.count[int]) -> Subject:
    if request.param == "in-memory":
        memory = InMemoryDrainStore()
        return Subject(memory, lambda rollout_id: memory.rollouts.start(APP, rollout_id))
    table = f"state-{next(aws)}"
    create_state_table(table)

    def start_rollout(rollout_id: str) -> None:
        boto3.client("dynamodb").put_item(
            TableName=table, Item={"pk": {"S": f"APP#{APP}"}, "sk": {"S": f"ROLLOUT#{rollout_id}"}}
        )

    return Subject(DynamoDrainStore(table), start_rollout)


def fresh(
    trigger: DrainTrigger = DrainTrigger.LIFECYCLE, hook: LifecycleHookRef | None = HOOK
) -> DrainRecord:
    return DrainRecord(
        instance_id=INSTANCE,
        application=APP,
        trigger=trigger,
        status=DrainStatus.REQUESTED,
        log_prefix=f"{APP}/",
        started_at=NOW,
        budget=LIFECYCLE_BUDGET,
        hook_name=hook.name if hook else None,
        hook_auto_scaling_group=hook.auto_scaling_group if hook else None,
        hook_token=hook.token if hook else None,
    )


def test_an_instance_begins_one_drain_and_later_events_join_it(subject: Subject) -> None:
    store = subject.store
    # Given no drain of the instance; When two events begin one
    first, second = store.begin(fresh(DrainTrigger.SPOT, hook=None)), store.begin(fresh())

    # Then only the first writes; later events join it: the hook kept, the deadline only moved earlier
    assert first is not None and second is None and store.owner(INSTANCE) == APP
    assert store.join(APP, "i-00000000000000bad", DrainTrigger.SPOT, None, None) is None
    joined = store.join(APP, INSTANCE, DrainTrigger.LIFECYCLE, HOOK, NOW + timedelta(seconds=120))
    later = store.join(APP, INSTANCE, DrainTrigger.SPOT, None, NOW + timedelta(seconds=300))
    assert joined is not None and later is not None
    assert set(later.triggers) == {DrainTrigger.SPOT, DrainTrigger.LIFECYCLE}
    assert later.hook == HOOK and later.deadline == NOW + timedelta(seconds=120)


@pytest.mark.parametrize("in_flight", [30, None], ids=["spot", "hook"])
def test_the_wait_for_requests_in_flight_is_what_the_claim_reads(
    subject: Subject, in_flight: int | None
) -> None:
    # Given a drain deregistered from its group, its order not queued yet
    store = subject.store
    store.begin(fresh(DrainTrigger.SPOT, hook=None))
    until = NOW + timedelta(seconds=in_flight) if in_flight is not None else None
    store.mark_deregistered(APP, INSTANCE, ["tg"], NOW, until)

    # When a dispatcher claims it (before or after it is marked queued)
    claimed = store.claim(APP, INSTANCE, NOW, NOW - timedelta(seconds=60))
    store.mark_queued(APP, INSTANCE)

    # Then it reads where the instance went and until when requests may still reach it
    assert claimed is not None and claimed.status is DrainStatus.DISPATCHING
    assert (claimed.deregistered_from, claimed.deregistered_at) == (("tg",), NOW)
    assert claimed.in_flight_until == until
    assert store.get(APP, INSTANCE).status is DrainStatus.DISPATCHING  # type: ignore[union-attr]


def test_a_drain_is_claimed_once_until_its_claim_goes_stale(subject: Subject) -> None:
    # Given a queued drain
    store = subject.store
    store.begin(fresh())
    store.mark_queued(APP, INSTANCE)

    # When two dispatchers claim it, and a third after the first claim went stale
    claimed = store.claim(APP, INSTANCE, NOW, NOW - timedelta(seconds=60))
    again = store.claim(APP, INSTANCE, NOW, NOW - timedelta(seconds=60))
    stale = store.claim(APP, INSTANCE, NOW + timedelta(seconds=61), NOW + timedelta(seconds=1))

    # Then one claim at a time; a claimed drain's budget stays until the claim is given back
    assert claimed is not None and claimed.status is DrainStatus.DISPATCHING
    assert again is None and stale is not None
    assert not store.use_budget(APP, INSTANCE, SPOT_BUDGET)  # claimed: its command may be on its way
    store.release(APP, INSTANCE)
    assert store.use_budget(APP, INSTANCE, SPOT_BUDGET)


def test_a_command_is_recorded_and_a_failed_attempt_retried_once(subject: Subject) -> None:
    # Given a drain whose first command is recorded
    store = subject.store
    store.begin(fresh())
    store.record_command(APP, INSTANCE, "c-1", "20261126T101540Z", f"{APP}/{INSTANCE}/r/manifest.json", NOW)

    # When its failure is retried twice, then given back; Then one retry claim, and it runs as before
    stale = NOW - timedelta(seconds=60)
    assert store.claim_retry(APP, INSTANCE, 1, NOW, stale) and not store.claim_retry(
        APP, INSTANCE, 1, NOW, stale
    )
    store.unclaim_retry(APP, INSTANCE)
    record = store.find(INSTANCE)
    assert record is not None
    assert (record.status, record.attempts, record.command_ids) == (DrainStatus.RUNNING, 1, ("c-1",))


def test_a_retry_claim_whose_function_died_is_taken_again_once_stale_and_only_for_its_attempt(
    subject: Subject,
) -> None:
    # Given a drain whose first command failed and whose retry claim was never followed by a command
    store = subject.store
    store.begin(fresh())
    store.record_command(APP, INSTANCE, "c-1", "20261126T101540Z", f"{APP}/{INSTANCE}/r/manifest.json", NOW)
    assert store.claim_retry(APP, INSTANCE, 1, NOW, NOW - timedelta(seconds=60))

    # When it is claimed again within the minute, after it, and after it for another attempt
    later = NOW + timedelta(seconds=61)
    live = store.claim_retry(APP, INSTANCE, 1, NOW + timedelta(seconds=30), NOW - timedelta(seconds=30))
    other_attempt = store.claim_retry(APP, INSTANCE, 2, later, later - timedelta(seconds=60))
    stale = store.claim_retry(APP, INSTANCE, 1, later, later - timedelta(seconds=60))

    # Then only the stale claim of the same attempt is taken
    assert (live, other_attempt, stale) == (False, False, True)


def test_a_late_runs_look_is_kept_on_a_running_drain_for_its_attempt_latest_first(subject: Subject) -> None:
    # Given a drain not yet running
    store = subject.store
    store.begin(fresh())
    due = NOW + timedelta(seconds=240)

    def kept() -> tuple[str | None, datetime | None]:
        record = store.find(INSTANCE)
        assert record is not None
        return record.late_run_command, record.late_run_look_at

    # When a look is recorded before its command runs, Then nothing is kept
    store.record_late_run_look(APP, INSTANCE, "c-1", 0, due)
    assert kept() == (None, None)

    # When command c-1 (attempt 1) runs: its look is kept; an earlier one does not put it back
    # (a slow writer), a later one replaces it
    store.record_command(APP, INSTANCE, "c-1", "20261126T101540Z", f"{APP}/{INSTANCE}/r/manifest.json", NOW)
    store.record_late_run_look(APP, INSTANCE, "c-1", 1, due)
    store.record_late_run_look(APP, INSTANCE, "c-1", 1, due - timedelta(seconds=10))
    assert kept() == ("c-1", due)
    store.record_late_run_look(APP, INSTANCE, "c-1", 1, due + timedelta(seconds=10))
    assert kept() == ("c-1", due + timedelta(seconds=10))
    # (times within one second, with and without a fraction, and given in another zone, order as
    # the times do)
    store.record_late_run_look(APP, INSTANCE, "c-1", 1, due + timedelta(seconds=10.5))
    store.record_late_run_look(APP, INSTANCE, "c-1", 1, due + timedelta(seconds=10.25))
    assert kept() == ("c-1", due + timedelta(seconds=10.5))
    paris = timezone(timedelta(hours=1))
    store.record_late_run_look(APP, INSTANCE, "c-1", 1, (due + timedelta(seconds=10.4)).astimezone(paris))
    assert kept() == ("c-1", due + timedelta(seconds=10.5))
    store.record_late_run_look(APP, INSTANCE, "c-1", 1, (due + timedelta(seconds=11)).astimezone(paris))
    assert kept() == ("c-1", due + timedelta(seconds=11))

    # When a retry runs c-2 (attempt 2): a slow writer of c-1 is refused; c-2's look is kept,
    # whatever its time
    store.record_command(APP, INSTANCE, "c-2", "20261126T102000Z", f"{APP}/{INSTANCE}/r2/manifest.json", NOW)
    store.record_late_run_look(APP, INSTANCE, "c-1", 1, due + timedelta(seconds=60))
    assert kept() == ("c-1", due + timedelta(seconds=11))
    store.record_late_run_look(APP, INSTANCE, "c-2", 2, due)
    assert kept() == ("c-2", due)

    # When the drain has ended, or the instance is not draining, Then nothing more is recorded
    store.finish(APP, INSTANCE, status="logs_lost", outcome="logs_lost", reason="gone")
    store.record_late_run_look(APP, INSTANCE, "c-2", 2, due + timedelta(seconds=60))
    store.record_late_run_look(APP, "i-00000000000000bad", "c-2", 2, due)
    assert kept() == ("c-2", due)
    assert store.find("i-00000000000000bad") is None


def test_an_outcome_is_set_once(subject: Subject) -> None:
    # Given a drain under way
    store = subject.store
    store.begin(fresh())

    # When its outcome is set twice (and once with a status that is not final)
    with pytest.raises(ValueError, match="not a final status"):
        store.finish(APP, INSTANCE, status="running")
    first = store.finish(APP, INSTANCE, status="drained", outcome="drained", bytes=10)
    second = store.finish(APP, INSTANCE, status="logs_lost", outcome="logs_lost", reason="late")

    # Then the first outcome stays
    assert first is not None and (first.outcome, first.bytes) == ("drained", 10)
    assert second is None and store.list_drains(APP)[0].outcome == "drained"


def test_a_canary_interruption_is_recorded_on_an_existing_rollout_once(subject: Subject) -> None:
    # Given a canary's Spot drain; When its interruption is recorded before and after its rollout exists
    store = subject.store
    store.begin(fresh(DrainTrigger.SPOT, hook=None))

    # Then only on an existing rollout, and once
    assert not store.record_canary_interruption(APP, "r1", INSTANCE, NOW)  # no such rollout
    subject.start_rollout("r1")
    assert store.record_canary_interruption(APP, "r1", INSTANCE, NOW)
    assert not store.record_canary_interruption(APP, "r1", INSTANCE, NOW)
    assert store.mark_canary_interruption(APP, INSTANCE, "r1")
    assert not store.mark_canary_interruption(APP, INSTANCE, "r1")
