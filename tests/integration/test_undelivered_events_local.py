"""Events EventBridge cannot deliver to a canaryfleet function are kept in UndeliveredEventQueue."""

import json
from typing import Any

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.standins.eventbridge import emit_service_event, service_event


def _rule_arn(cloud: LocalCloud, rule_logical_id: str) -> str:
    return str(cloud.client("events").describe_rule(Name=cloud.resource(rule_logical_id))["Arn"])


def _revoke_eventbridge_invoke(cloud: LocalCloud, function_logical_id: str) -> None:
    """Remove every statement of the function's resource policy that lets EventBridge invoke it."""
    lambda_ = cloud.client("lambda")
    name = cloud.resource(function_logical_id)
    policy = json.loads(lambda_.get_policy(FunctionName=name)["Policy"])
    for statement in policy["Statement"]:
        if statement["Principal"] == {"Service": "events.amazonaws.com"}:
            lambda_.remove_permission(FunctionName=name, StatementId=statement["Sid"])


def _undelivered(cloud: LocalCloud) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    answer = sqs.receive_message(
        QueueUrl=cloud.output("UndeliveredEventQueueUrl"),
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
    )
    return list(answer.get("Messages", []))


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {key: value["StringValue"] for key, value in message["MessageAttributes"].items()}


def test_an_upload_whose_function_may_not_be_invoked_is_kept_with_its_rule_target_and_error(
    cloud: LocalCloud,
) -> None:
    # Given the platform, with StartRolloutFunction's permission for its rule gone
    _revoke_eventbridge_invoke(cloud, "StartRolloutFunction")
    function_arn = cloud.client("lambda").get_function(FunctionName=cloud.resource("StartRolloutFunction"))[
        "Configuration"
    ]["FunctionArn"]

    # When a bundle is uploaded
    cloud.client("s3").put_object(
        Bucket=cloud.output("ArtifactBucketName"), Key="payments-api/2.0.0.zip", Body=b"x"
    )
    cloud.wait_idle()

    # Then no rollout starts, and the event is in UndeliveredEventQueue, which says why
    assert [i for i in cloud.runtime.invocations if i.logical_id == "StartRolloutFunction"] == []
    [message] = _undelivered(cloud)
    assert json.loads(message["Body"]) == cloud.s3_events.sent[-1]
    attributes = _attributes(message)
    assert attributes["RULE_ARN"] == _rule_arn(cloud, "StartRolloutFunctionArtifactUploaded")
    assert attributes["TARGET_ARN"] == function_arn
    assert attributes["ERROR_CODE"] == "NO_PERMISSIONS"
    assert "lambda:InvokeFunction" in attributes["ERROR_MESSAGE"]

    # When on-call invokes the target with the message's body, as the README says
    cloud.client("lambda").invoke(
        FunctionName=attributes["TARGET_ARN"], InvocationType="Event", Payload=message["Body"].encode()
    )
    cloud.wait_idle()

    # Then the function gets the upload's event and handles it (here: refused, and its team told,
    # for an application not onboarded)
    first = cloud.runtime.invocations[0]
    assert (first.logical_id, first.error_type) == ("StartRolloutFunction", None)


def test_a_spot_warning_for_a_function_that_no_longer_exists_is_kept_at_once(cloud: LocalCloud) -> None:
    # Given the platform, with DrainRequestFunction deleted
    lambda_ = cloud.client("lambda")
    function_arn = lambda_.get_function(FunctionName=cloud.resource("DrainRequestFunction"))["Configuration"][
        "FunctionArn"
    ]
    lambda_.delete_function(FunctionName=cloud.resource("DrainRequestFunction"))
    event = service_event(
        cloud.account_id,
        cloud.region,
        "aws.ec2",
        "EC2 Spot Instance Interruption Warning",
        ["arn:aws:ec2:us-east-1a:instance/i-0123456789abcdef0"],
        {"instance-id": "i-0123456789abcdef0", "instance-action": "terminate"},
    )

    # When EC2 warns of the Spot interruption
    emit_service_event(cloud.account_id, cloud.region, event)
    cloud.wait_idle()

    # Then the warning is in UndeliveredEventQueue with NO_RESOURCE, not retried
    [message] = _undelivered(cloud)
    assert json.loads(message["Body"]) == event
    attributes = _attributes(message)
    assert attributes["RULE_ARN"] == _rule_arn(cloud, "DrainRequestFunctionSpotInterruption")
    assert (attributes["TARGET_ARN"], attributes["ERROR_CODE"]) == (function_arn, "NO_RESOURCE")
    assert cloud.runtime.invocations == []


def test_an_event_the_queue_policy_does_not_let_its_rule_send_is_dropped(cloud: LocalCloud) -> None:
    # Given the platform, its StartRolloutFunction not invocable, and UndeliveredEventQueue's policy
    # without the statement that lets the template's rules send to it
    _revoke_eventbridge_invoke(cloud, "StartRolloutFunction")
    sqs = cloud.client("sqs")
    sqs.set_queue_attributes(QueueUrl=cloud.output("UndeliveredEventQueueUrl"), Attributes={"Policy": ""})

    # When a bundle is uploaded
    cloud.client("s3").put_object(
        Bucket=cloud.output("ArtifactBucketName"), Key="payments-api/2.0.0.zip", Body=b"x"
    )
    cloud.wait_idle()

    # Then EventBridge cannot keep it: it is dropped, as it was before the rules had a queue
    assert _undelivered(cloud) == []
    [undelivered] = cloud.event_targets.undelivered
    assert (undelivered.error_code, undelivered.dead_letter_queue) == ("NO_PERMISSIONS", None)
