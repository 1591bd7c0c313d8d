"""watch --version follows the rollout of the build now published, never an earlier one of it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from canaryfleet.models.rollout_record import RolloutRecord

from canaryfleet_cli.watch import _Follow
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
