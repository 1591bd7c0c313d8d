"""Rotating the signing key: Secrets Manager's four steps, each safe to repeat."""

import pytest
from canaryfleet.errors import ConfigurationError
from canaryfleet.logic.key_rotation import rotate_signing_key
from canaryfleet.models.approval import RotationEvent
from canaryfleet.ports.approvals import SecretVersions

from tests.helpers import load_event

CURRENT, NEW = "11111111-1111-4111-8111-111111111111", "2b7c5e1a-9f3d-4c8e-a6b0-d1e2f3a4b5c6"


class Versions(SecretVersions):
    """A secret's versions in memory, with Secrets Manager's staging labels."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.labels = {CURRENT: ["AWSCURRENT"], NEW: ["AWSPENDING"]}
        self.values = {(CURRENT, "AWSCURRENT"): "k" * 64}

    def stages(self) -> tuple[bool, dict[str, list[str]]]:
        return self.enabled, {v: list(s) for v, s in self.labels.items()}

    def value(self, version_id: str, stage: str) -> str | None:
        return self.values.get((version_id, stage))

    def put_pending(self, version_id: str, value: str) -> None:
        self.values[(version_id, "AWSPENDING")] = value

    def make_current(self, version_id: str, current_version_id: str) -> None:
        self.labels[current_version_id] = ["AWSPREVIOUS"]
        self.labels[version_id].append("AWSCURRENT")

    def release_pending(self, version_id: str) -> None:
        self.labels[version_id].remove("AWSPENDING")


def step(name: str) -> RotationEvent:
    return RotationEvent.model_validate({**load_event("rotate_signing_key/create_secret"), "Step": name})


def test_the_four_steps_make_a_new_random_key_current_and_keep_the_old_one_previous() -> None:
    versions = Versions()

    results = [
        rotate_signing_key(step(s), versions)
        for s in ("createSecret", "setSecret", "testSecret", "finishSecret")
    ]

    assert results[0] == "created" and results[-1] == "finished"
    new_key = versions.values[(NEW, "AWSPENDING")]
    assert len(new_key) == 64 and new_key != "k" * 64
    # and the new version no longer holds AWSPENDING, so the next RotateSecret may start
    assert versions.labels == {CURRENT: ["AWSPREVIOUS"], NEW: ["AWSCURRENT"]}


def test_a_repeated_create_keeps_the_pending_key() -> None:
    versions = Versions()
    rotate_signing_key(step("createSecret"), versions)
    first = versions.values[(NEW, "AWSPENDING")]

    assert rotate_signing_key(step("createSecret"), versions) == "pending key exists"
    assert versions.values[(NEW, "AWSPENDING")] == first


def test_a_repeated_finish_changes_nothing() -> None:
    versions = Versions()
    for name in ("createSecret", "finishSecret"):
        rotate_signing_key(step(name), versions)

    assert rotate_signing_key(step("finishSecret"), versions) == "already current"
    assert versions.labels[NEW] == ["AWSCURRENT"]


def test_a_finish_retried_after_its_move_still_releases_the_pending_label() -> None:
    # Given a finish that moved AWSCURRENT and stopped before it took AWSPENDING off
    versions = Versions()
    rotate_signing_key(step("createSecret"), versions)
    versions.make_current(NEW, CURRENT)

    # When Secrets Manager retries the step
    assert rotate_signing_key(step("finishSecret"), versions) == "already current"

    # Then the label is released all the same
    assert versions.labels == {CURRENT: ["AWSPREVIOUS"], NEW: ["AWSCURRENT"]}


def test_testing_a_missing_pending_key_fails_the_rotation() -> None:
    with pytest.raises(ConfigurationError, match="pending signing key is missing"):
        rotate_signing_key(step("testSecret"), Versions())


def test_rotation_that_is_not_enabled_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not enabled"):
        rotate_signing_key(step("createSecret"), Versions(enabled=False))
