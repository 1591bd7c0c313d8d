"""The claim that makes one upload the rollout of its version (logic.start_rollout), on the
in-memory store: what stands, what is taken over, and the version read again after a takeover."""

from __future__ import annotations

import pytest
from canaryfleet.logic.start_rollout import Rejected, _claim_version
from canaryfleet.models.artifact import ArtifactRef
from canaryfleet.models.rollout import RolloutInput
from canaryfleet.ports.clock import FixedClock

from tests.unit.fakes import InMemoryRolloutStore

APP = "payments-api"


def recorded(store: InMemoryRolloutStore, clock: FixedClock, rollout_id: str) -> None:
    artifact = ArtifactRef.from_object("artifacts-bucket", f"{APP}/2.0.0.zip")
    rollout = RolloutInput(rollout_id=rollout_id, application=APP, version="2.0.0", artifact=artifact)
    store.create(rollout, received_at=clock.now())


def test_a_claim_whose_rollout_ended_meanwhile_is_taken_over_and_the_decided_version_refused(
    clock: FixedClock,
) -> None:
    # Given 2.0.0 claimed by a rollout that has since been released (after the upload's first checks)
    store = InMemoryRolloutStore(clock)
    recorded(store, clock, "first")
    assert store.claim_version(APP, "2.0.0", "first") is None
    store.decide_version(APP, "2.0.0", "released", "first", "released")
    store.record_outcome(APP, "first", "released", "", ended_at=clock.now())

    # When a second upload claims it
    with pytest.raises(Rejected) as refused:
        _claim_version(store, clock, APP, "2.0.0", "second")

    # Then the ended claim is taken over, and the version, read again, is refused as released
    assert (
        str(refused.value)
        == "version 2.0.0 of payments-api was already released (rollout first); upload a new version"
    )
    assert store.claims[(APP, "2.0.0")].rollout_id == "second"


def test_a_retried_event_keeps_its_own_claim_and_another_upload_is_refused_while_it_stands(
    clock: FixedClock,
) -> None:
    # Given 2.0.0 claimed by an upload now waiting in the queue
    store = InMemoryRolloutStore(clock)
    _claim_version(store, clock, APP, "2.0.0", "first")
    recorded(store, clock, "first")
    store.enqueue(
        APP, "20261126T100000#a", "first", "arn:aws:states:us-east-1:123456789012:execution:r:first"
    )
    clock.advance(7200)  # long past any Lambda timeout: the queue is what holds it now

    # When its event comes again, and another upload of 2.0.0 comes
    _claim_version(store, clock, APP, "2.0.0", "first")
    with pytest.raises(Rejected) as refused:
        _claim_version(store, clock, APP, "2.0.0", "second")

    # Then the first keeps the version, and the second is refused naming it
    assert store.claims[(APP, "2.0.0")].rollout_id == "first"
    assert "is already rolling out (rollout first)" in str(refused.value)
