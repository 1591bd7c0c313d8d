"""`canaryfleet local inject-event` reads an event file as EventBridge would accept it, or says why not."""

import json

import pytest

from canaryfleet_local.drain_job import MAX_EVENT_BYTES, MAX_EVENT_DEPTH, InvalidEvent, read_event

SPOT = {
    "source": "aws.ec2",
    "detail-type": "EC2 Spot Instance Interruption Warning",
    "detail": {"instance-id": "i-1234567890abcdef0", "instance-action": "terminate"},
}


def nested(levels: int) -> dict[str, object]:
    """A Spot event whose detail holds objects ``levels`` deep in all."""
    inner: dict[str, object] = {}
    for _ in range(levels - 2):
        inner = {"a": inner}
    return {**SPOT, "detail": inner}


def test_an_event_as_aws_sends_it_is_read() -> None:
    assert read_event(json.dumps(SPOT)) == SPOT


def test_an_event_at_the_depth_limit_is_read() -> None:
    event = nested(MAX_EVENT_DEPTH)

    assert read_event(json.dumps(event)) == event


def test_an_event_one_level_deeper_is_refused() -> None:
    with pytest.raises(InvalidEvent, match=f"nested deeper than {MAX_EVENT_DEPTH} levels"):
        read_event(json.dumps(nested(MAX_EVENT_DEPTH + 1)))


def test_nesting_deeper_than_the_parser_can_follow_is_refused_the_same_way() -> None:
    # Given JSON nested 100,000 levels: json.loads raises RecursionError on it
    text = "[" * 100_000 + "]" * 100_000

    # Then it is refused as too deep, not as a crash
    with pytest.raises(InvalidEvent, match="nested deeper than"):
        read_event(text)


def test_an_event_larger_than_eventbridge_accepts_is_refused() -> None:
    event = {**SPOT, "detail": {"padding": "x" * MAX_EVENT_BYTES}}

    with pytest.raises(InvalidEvent, match=f"EventBridge accepts events of at most {MAX_EVENT_BYTES} bytes"):
        read_event(json.dumps(event))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not JSON: "),
        ("[1, 2]", "an EventBridge event is a JSON object, not list"),
        ('{"hello": "world"}', "not an EventBridge event: no source, detail-type, detail"),
        (json.dumps({**SPOT, "source": 7}), "source is not a non-empty string"),
        (json.dumps({**SPOT, "detail": "terminate"}), "detail is not a JSON object"),
        (b"\xff\xfe{}", "not JSON: "),
    ],
)
def test_what_is_not_an_event_is_refused_with_its_reason(text: str | bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as refused:
        read_event(text)

    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)
