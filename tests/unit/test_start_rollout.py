import pytest
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from canaryfleet.errors import InvalidEvent
from canaryfleet.models.events import parse_event

from tests.helpers import FakeContext, load_event, load_handler


@pytest.mark.parametrize("sample", ["start_rollout/object_created", "start_rollout/object_created_multipart"])
def test_the_events_aws_documents_parse(sample: str) -> None:
    event = parse_event(S3EventNotificationEventBridgeModel, load_event(sample))

    assert event.detail.object.key.endswith(".zip")


def test_given_a_malformed_event_when_handled_then_a_typed_error_names_the_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STATE_TABLE_NAME", "canaryfleet-state")
    monkeypatch.setenv("ROLLOUT_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:r")
    monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:canaryfleet")
    monkeypatch.setenv("APPROVAL_EMAIL_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:approval-emails")
    event = load_event("start_rollout/object_created")
    del event["detail"]["bucket"]
    handler = load_handler("start_rollout")

    with pytest.raises(InvalidEvent, match=r"detail\.bucket: Field required"):
        handler.lambda_handler(event, FakeContext())
