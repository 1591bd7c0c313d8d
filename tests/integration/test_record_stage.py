"""functions/record_stage against the stack's table and topic."""

from canaryfleet_local.cloud import LocalCloud
from tests.helpers import load_event
from tests.integration.helpers import drain_queue, invoke, subscribe_queue, table_items


def test_given_a_stage_delivered_twice_then_one_record_and_one_notification(cloud: LocalCloud) -> None:
    queue = subscribe_queue(cloud)
    event = load_event("record_stage/started")

    first, error1 = invoke(cloud, "RecordStageFunction", event)
    second, error2 = invoke(cloud, "RecordStageFunction", event)

    assert (error1, error2) == (None, None)
    assert (first["first_time"], second["first_time"]) == (True, False)
    messages = drain_queue(cloud, queue)
    assert [(m["application"], m["stage"]) for m in messages] == [("payments-api", "started")]
    [record] = table_items(cloud, "APP#payments-api")
    assert record["current_stage"] == "started"
    assert record["stage_started_at"].startswith("2026-11-26T10:15:31.204")


def test_given_a_malformed_payload_then_nothing_is_written_or_sent(cloud: LocalCloud) -> None:
    queue = subscribe_queue(cloud)

    body, error = invoke(
        cloud, "RecordStageFunction", load_event("record_stage/started") | {"stage": "bogus"}
    )

    assert (error, body["errorType"]) == ("Unhandled", "InvalidEvent")
    assert table_items(cloud, "APP#payments-api") == []
    assert drain_queue(cloud, queue) == []
