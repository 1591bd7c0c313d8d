"""The local cloud is template.yaml, deployed: resources, wiring and the stand-ins for moto's gaps."""

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import canaryfleet.observability
import pytest
from botocore.exceptions import ClientError
from canaryfleet.models.rollout_record import RolloutRecord

from canaryfleet_local.cloud import STACK_NAME, LocalCloud
from canaryfleet_local.cloudformation_rules import TEMPLATE_BODY_LIMIT
from canaryfleet_local.standins.eventbridge import emit_service_event, service_event
from canaryfleet_local.standins.lambda_ import FunctionCode
from canaryfleet_local.standins.s3 import CLOUDFORMATION_BUCKET_POLICIES


def test_buckets_get_the_properties_the_template_declares(cloud: LocalCloud) -> None:
    s3 = cloud.client("s3")
    bucket = cloud.output("ArtifactBucketName")

    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    policy = CLOUDFORMATION_BUCKET_POLICIES[bucket]
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert policy["Statement"][0]["Resource"][0] == f"arn:aws:s3:::{bucket}"


def test_the_platform_stack_is_created_from_s3_as_sam_deploy_creates_it(cloud: LocalCloud) -> None:
    # Given the deployed platform: its transformed template is over CreateStack's TemplateBody
    # limit, so `sam deploy` (resolve_s3) uploads it and passes its URL, and so does the local cloud
    s3 = cloud.client("s3")
    listed = s3.list_objects_v2(Bucket=cloud.code_bucket, Prefix=f"{STACK_NAME}/")["Contents"]
    [template] = [o for o in listed if o["Key"].endswith(".template")]
    assert template["Size"] > TEMPLATE_BODY_LIMIT
    body = s3.get_object(Bucket=cloud.code_bucket, Key=template["Key"])["Body"].read().decode()

    # When the same template is given in the request instead
    with pytest.raises(ClientError) as refused:
        cloud.client("cloudformation").create_stack(StackName="platform-in-the-request", TemplateBody=body)

    # Then the local cloud refuses it, as AWS would
    assert "at 'templateBody' failed to satisfy constraint" in refused.value.response["Error"]["Message"]


def test_the_state_table_has_ttl_and_point_in_time_recovery(cloud: LocalCloud) -> None:
    dynamodb = cloud.client("dynamodb")
    table = cloud.output("StateTableName")

    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_state_machines_execute_with_their_substitutions_resolved(cloud: LocalCloud) -> None:
    sfn = cloud.client("stepfunctions")
    arn = cloud.resource("RolloutStateMachine")

    definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]

    assert "${" not in definition
    lambda_arn = cloud.client("lambda").get_function(FunctionName=cloud.resource("RecordStageFunction"))
    assert lambda_arn["Configuration"]["FunctionArn"] in definition


def test_functions_get_the_environment_the_template_gives_them(cloud: LocalCloud) -> None:
    config = cloud.client("lambda").get_function_configuration(
        FunctionName=cloud.resource("StartRolloutFunction")
    )

    variables = config["Environment"]["Variables"]
    assert variables["STATE_TABLE_NAME"] == cloud.output("StateTableName")
    assert variables["ROLLOUT_STATE_MACHINE_ARN"] == cloud.resource("RolloutStateMachine")
    assert variables["POWERTOOLS_SERVICE_NAME"] == "start_rollout"
    assert config["Runtime"] == "python3.13"


def test_an_upload_outside_the_rule_pattern_invokes_nothing(cloud: LocalCloud) -> None:
    s3 = cloud.client("s3")
    s3.put_object(Bucket=cloud.output("ArtifactBucketName"), Key="payments-api/notes.txt", Body=b"x")
    s3.put_object(Bucket=cloud.output("LogBucketName"), Key="payments-api/1.0.0.zip", Body=b"x")

    cloud.wait_idle()

    assert cloud.runtime.invocations == []
    assert len(cloud.s3_events.sent) == 1, "only the artifact bucket sends events to EventBridge"


def test_s3_events_have_the_shape_aws_documents(cloud: LocalCloud) -> None:
    s3 = cloud.client("s3")
    bucket = cloud.output("ArtifactBucketName")
    put = s3.put_object(Bucket=bucket, Key="payments-api/readme.txt", Body=b"hello")

    event = cloud.s3_events.sent[-1]

    assert (event["source"], event["detail-type"]) == ("aws.s3", "Object Created")
    assert event["detail"]["reason"] == "PutObject"
    assert event["detail"]["object"] == event["detail"]["object"] | {
        "key": "payments-api/readme.txt",
        "size": 5,
        "etag": put["ETag"].strip('"'),
        "version-id": put["VersionId"],
    }
    assert event["time"].endswith("Z")


def test_a_function_error_reaches_the_caller_as_aws_reports_it(cloud: LocalCloud) -> None:
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.resource("RecordStageFunction"), Payload=json.dumps({"stage": "started"}).encode()
    )

    body = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "InvalidEvent"
    assert "ref: Field required" in body["errorMessage"]


def test_each_function_keeps_its_own_module_state(cloud: LocalCloud) -> None:
    """Separate execution environments: each Logger knows its own service."""
    cloud.client("lambda").invoke(FunctionName=cloud.resource("RecordStageFunction"), Payload=b"{}")
    cloud.client("lambda").invoke(FunctionName=cloud.resource("StartRolloutFunction"), Payload=b"{}")

    services = {
        name: cloud.runtime.module_state(name, "canaryfleet.observability").logger.service
        for name in (cloud.resource("RecordStageFunction"), cloud.resource("StartRolloutFunction"))
    }
    assert sorted(services.values()) == ["record_stage", "start_rollout"]


def test_functions_share_the_process_models_and_errors_and_keep_every_other_layer_module(
    cloud: LocalCloud,
) -> None:
    """A speed-up (README, "not AWS"): models and errors are definitions, built once per process."""
    name = cloud.resource("RecordStageFunction")
    cloud.client("lambda").invoke(FunctionName=name, Payload=b"{}")

    assert cloud.runtime.module_state(name, "canaryfleet.observability") is not canaryfleet.observability
    with pytest.raises(KeyError):
        cloud.runtime.module_state(name, "canaryfleet.models.rollout_record")
    assert sys.modules["canaryfleet.models.rollout_record"].RolloutRecord is RolloutRecord


def test_an_event_a_function_fails_on_three_times_is_kept_in_its_dead_letter_queue(cloud: LocalCloud) -> None:
    function = cloud.resource("DeploymentEventFunction")
    event = {"detail-type": "CodeDeploy Deployment State-change Notification", "detail": {"state": 7}}

    cloud.client("lambda").invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event))
    cloud.wait_idle()

    tries = [i for i in cloud.runtime.invocations if i.function == function]
    messages = cloud.client("sqs").receive_message(
        QueueUrl=cloud.output("EventDeadLetterQueueUrl"),
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
    )["Messages"]
    assert len(tries) == 3  # Lambda's async invocation: the first try and two retries
    assert [json.loads(m["Body"]) for m in messages] == [event]
    assert messages[0]["MessageAttributes"]["ErrorMessage"]["StringValue"] == "InvalidEvent"


def test_a_service_event_reaches_an_sqs_target_as_aws_sends_it(cloud: LocalCloud) -> None:
    """moto's own delivery (here: to SQS) takes the service events the stand-ins make."""
    sqs, events = cloud.client("sqs"), cloud.client("events")
    queue_url = sqs.create_queue(QueueName="spot-warnings")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}
    events.put_rule(Name="spot-warnings", EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule="spot-warnings", Targets=[{"Id": "queue", "Arn": queue_arn}])
    detail = {"instance-id": "i-0123456789abcdef0", "instance-action": "terminate"}
    event = service_event(
        cloud.account_id, cloud.region, "aws.ec2", "EC2 Spot Instance Interruption Warning", [], detail
    )

    emit_service_event(cloud.account_id, cloud.region, event)

    messages = sqs.receive_message(QueueUrl=queue_url).get("Messages", [])
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert (body["id"], body["detail"], body["time"]) == (event["id"], detail, event["time"])


# A handler that reads its GREETING until the test's thread has changed the process's
# environment, creating clients meanwhile (botocore reads the whole environment to make one).
GREETER = """
import os
import pathlib
import time

import boto3


def handler(event, context):
    seen = [os.environ["GREETING"]]
    pathlib.Path(event["started"]).touch()
    changed = pathlib.Path(event["changed"])
    deadline = time.monotonic() + 10
    while not changed.exists() and time.monotonic() < deadline:
        boto3.session.Session().client("sts")
        seen.append(os.environ["GREETING"])
    seen.append(os.environ["GREETING"])
    return {"seen": sorted(set(seen)), "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"]}
"""

GREETINGS = ("hello", "bonjour")


def _greeter(cloud: LocalCloud, code_dir: Path, name: str, greeting: str) -> str:
    """A function of the local cloud whose template variables say GREETING=<greeting>."""
    role = cloud.client("lambda").get_function_configuration(
        FunctionName=cloud.resource("RecordStageFunction")
    )
    cloud.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role["Role"],
        Handler="app.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        Environment={"Variables": {"GREETING": greeting}},
    )
    cloud.runtime.register(name, FunctionCode(logical_id=name, code_dir=code_dir, handler="app.handler"))
    return name


def test_each_invocation_sees_its_own_environment_while_others_change_the_process_environment(
    cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two functions whose templates give them different GREETINGs, and a process
    # environment a test (or typer's runner) keeps changing on another thread
    (tmp_path / "app.py").write_text(GREETER)
    functions = {
        greeting: _greeter(cloud, tmp_path, f"greeter-{greeting}", greeting)
        for greeting in ("hello", "bonjour")
    }
    monkeypatch.setenv("GREETING", "from the process")
    monkeypatch.setenv("CHURN", "0")
    started, changed = tmp_path / "started", tmp_path / "changed"
    seen_by_process: set[str | None] = set()
    results: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def change_the_process_environment() -> None:
        try:
            deadline = time.monotonic() + 10
            while not started.exists() and time.monotonic() < deadline:
                time.sleep(0.005)
            for turn in range(200):
                seen_by_process.add(os.environ.get("GREETING"))
                os.environ["GREETING"] = "from the process"
                os.environ["CHURN"] = str(turn)
                del os.environ["CHURN"]
            changed.touch()
        except BaseException as exc:
            errors.append(exc)
            changed.touch()

    def invoke(greeting: str) -> None:
        try:
            response = cloud.client("lambda").invoke(
                FunctionName=functions[greeting],
                Payload=json.dumps({"started": str(started), "changed": str(changed)}).encode(),
            )
            results[greeting] = {**json.loads(response["Payload"].read()), **response}
        except BaseException as exc:
            errors.append(exc)

    # When both are invoked at once, on two threads, while the third changes the process's
    threads = [threading.Thread(target=invoke, args=(greeting,)) for greeting in functions]
    threads.append(threading.Thread(target=change_the_process_environment))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then each handler saw its own GREETING only, the process never saw theirs, and nothing failed
    assert errors == []
    assert {greeting: result.get("FunctionError") for greeting, result in results.items()} == {
        "hello": None,
        "bonjour": None,
    }
    assert results["hello"]["seen"] == ["hello"]
    assert results["bonjour"]["seen"] == ["bonjour"]
    assert seen_by_process == {"from the process"}
    assert os.environ["GREETING"] == "from the process"
    assert "CHURN" not in os.environ


def test_a_closed_local_cloud_leaves_no_thread_waiting_for_a_task_token() -> None:
    # Given an execution waiting in a .waitForTaskToken state (an approval waits a day)
    before = set(threading.enumerate())
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as cloud:
        url = cloud.client("sqs").create_queue(QueueName="tokens")["QueueUrl"]
        definition = {
            "StartAt": "Wait for a person",
            "States": {
                "Wait for a person": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token"}},
                    "TimeoutSeconds": 86400,
                    "End": True,
                }
            },
        }
        sfn = cloud.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="waits",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{cloud.account_id}:role/sfn",
        )["stateMachineArn"]
        sfn.start_execution(stateMachineArn=machine)
        received = cloud.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=5)
        assert received.get("Messages"), "the execution did not reach its wait"

    # When the cloud closes, then the execution is stopped and none of its threads is left
    deadline = time.monotonic() + 5
    while (left := [t for t in threading.enumerate() if t not in before]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == []
