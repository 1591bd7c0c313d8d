from typing import Any

import pytest

from canaryfleet.errors import InvalidEvent
from canaryfleet.logic.start_rollout import start_rollout
from canaryfleet.models.events import parse_event
from tests.helpers import FakeContext, load_event, load_handler
from tests.unit.fakes import FakeArtifacts, InMemoryRolloutStore, RecordingWorkflow
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel


def upload(key: str = "payments-api/2.7.0.zip", **object_fields: Any) -> S3EventNotificationEventBridgeModel:
    event = load_event("start_rollout/object_created")
    event["detail"]["object"]["key"] = key
    event["detail"]["object"].update(object_fields)
    return parse_event(S3EventNotificationEventBridgeModel, event)


@pytest.fixture
def store() -> InMemoryRolloutStore:
    return InMemoryRolloutStore()


@pytest.fixture
def workflow() -> RecordingWorkflow:
    return RecordingWorkflow()


def test_given_an_upload_when_started_then_one_execution_carries_the_artifact_and_its_metadata(
    store: InMemoryRolloutStore, workflow: RecordingWorkflow
) -> None:
    artifacts = FakeArtifacts({"commit": "9fceb02d0ae598e95dc970b74767f19372d61af8", "build-url": "https://ci/1"})

    result = start_rollout(upload(), artifacts, store, workflow)

    assert result.status == "started"
    rollout = workflow.started[result.rollout_id or ""]
    assert (rollout.application, rollout.version) == ("payments-api", "2.7.0")
    assert rollout.artifact.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert (rollout.commit, rollout.build_url) == ("9fceb02d0ae598e95dc970b74767f19372d61af8", "https://ci/1")
    assert list(store.rollouts) == [result.rollout_id]


def test_given_the_same_event_twice_then_the_second_changes_nothing(
    store: InMemoryRolloutStore, workflow: RecordingWorkflow
) -> None:
    first = start_rollout(upload(), FakeArtifacts(), store, workflow)

    second = start_rollout(upload(), FakeArtifacts(), store, workflow)

    assert (first.status, second.status) == ("started", "duplicate")
    assert second.rollout_id == first.rollout_id
    assert len(workflow.started) == 1


def test_given_a_new_version_of_the_same_object_then_it_is_a_new_rollout(
    store: InMemoryRolloutStore, workflow: RecordingWorkflow
) -> None:
    start_rollout(upload(**{"version-id": "v1"}), FakeArtifacts(), store, workflow)
    start_rollout(upload(**{"version-id": "v2"}), FakeArtifacts(), store, workflow)

    assert len(workflow.started) == 2


def test_given_an_off_layout_key_then_it_is_rejected_with_a_reason_and_nothing_starts(
    store: InMemoryRolloutStore, workflow: RecordingWorkflow
) -> None:
    result = start_rollout(upload("payments-api/builds/2.7.0.zip"), FakeArtifacts(), store, workflow)

    assert result.status == "rejected"
    assert "is not <app>/<version>.zip" in (result.reason or "")
    assert workflow.started == {} and store.rollouts == {}


@pytest.mark.parametrize("sample", ["start_rollout/object_created", "start_rollout/object_created_multipart"])
def test_the_events_aws_documents_parse(sample: str) -> None:
    event = parse_event(S3EventNotificationEventBridgeModel, load_event(sample))

    assert event.detail.object.key.endswith(".zip")


def test_given_a_malformed_event_when_handled_then_a_typed_error_names_the_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STATE_TABLE_NAME", "canaryfleet-state")
    monkeypatch.setenv("ROLLOUT_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:r")
    event = load_event("start_rollout/object_created")
    del event["detail"]["bucket"]
    handler = load_handler("start_rollout")

    with pytest.raises(InvalidEvent, match=r"detail\.bucket: Field required"):
        handler.lambda_handler(event, FakeContext())
