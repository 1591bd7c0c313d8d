"""watch --version follows the rollout of the build now published, never an earlier one of it; a rollout
queued behind another is said to be."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from canaryfleet.models.rollout_record import LockRecord, RolloutRecord
from canaryfleet.ports.clock import FixedClock
from typer.testing import CliRunner

from canaryfleet_cli.main import app as cli
from canaryfleet_cli.watch import _Follow
from tests.unit.fakes import InMemoryRolloutStore
from tests.unit.test_rollout_view import T0, app, record


class Store:
    def __init__(self, records: list[RolloutRecord]) -> None:
        self.records = records

    def list_rollouts(self, application: str, version: str | None = None) -> list[RolloutRecord]:
        return [r for r in self.records if r.application == application and version in (None, r.version)]

    def get(self, application: str, rollout_id: str) -> RolloutRecord | None:
        return next((r for r in self.records if r.rollout_id == rollout_id), None)


class Platform:
    def __init__(self, records: list[RolloutRecord]) -> None:
        self.store = Store(records)


def follow(records: list[RolloutRecord], published: tuple[str | None, str] | None) -> _Follow:
    followed = _Follow(Platform(records), app(), "1.2.0")  # type: ignore[arg-type]
    followed._published = lambda: published  # type: ignore[method-assign]
    return followed


EARLIER = record(
    rollout_id="payments-api-1_2_0-first",
    artifact_version_id="v1",
    artifact_etag="e1",
    status="rejected",
    outcome="rejected",
)


def test_a_version_published_again_is_waited_for_not_taken_for_its_earlier_rollout() -> None:
    # Given 1.2.0 was rejected, and published again as S3 object version v2 (no rollout yet)
    followed = follow([EARLIER], ("v2", "e2"))

    # Then watch waits for the new build's rollout rather than exit on the old rejection
    assert followed.read() is None

    # And once the platform received v2, that rollout is followed to its end
    later = record(
        rollout_id="payments-api-1_2_0-second",
        artifact_version_id="v2",
        artifact_etag="e2",
        received_at=T0 + timedelta(minutes=5),
    )
    followed.platform.store.records.append(later)  # type: ignore[attr-defined]
    found = followed.read()
    assert found is not None and found.rollout_id == "payments-api-1_2_0-second"


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        (None, None),  # nothing at <app>/<version>.zip yet: wait
        (("v1", "e1"), "payments-api-1_2_0-first"),  # the build published is the one that ran
        ((None, "e1"), "payments-api-1_2_0-first"),  # a bucket without versioning: by its ETag
    ],
)
def test_the_rollout_followed_is_the_published_objects(published: Any, expected: str | None) -> None:
    found = follow([EARLIER], published).read()

    assert (found.rollout_id if found else None) == expected


def test_watch_says_a_queued_rollout_waits_behind_the_one_holding_the_lock() -> None:
    # Given 1.1.0 holding the application's lock, and 1.2.0's execution queued behind it
    store = InMemoryRolloutStore(FixedClock(T0))
    ahead = record(rollout_id="payments-api-1_1_0-aaa", version="1.1.0", current_stage="traffic_shifted")
    queued = record(artifact_version_id="v2")
    for each in (ahead, queued):
        store.records[(each.application, each.rollout_id)] = each
    store.locks["payments-api"] = LockRecord(owner="arn:execution:1_1_0", rollout_id=ahead.rollout_id)
    platform = mock.Mock(store=store)
    platform.application.return_value = app()

    # When CI watches 1.2.0 (into a pipe) until its timeout
    with (
        mock.patch("canaryfleet_cli.watch.connect_platform", return_value=platform),
        mock.patch.object(_Follow, "_published", return_value=("v2", "e2")),
    ):
        done = CliRunner().invoke(
            cli, ["watch", "payments-api", "--version", "1.2.0", "--interval", "0.1", "--timeout", "1"]
        )

    # Then every line says it is queued behind 1.1.0, none that its canary is being deployed
    assert done.exit_code == 3, done.output
    assert "queued behind 1.1.0 (payments-api-1_1_0-aaa): it starts when that rollout ends" in done.stdout
    assert "deploy the build" not in done.output
