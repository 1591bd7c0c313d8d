"""The local cloud refuses what AWS refuses, and accepts what AWS accepts, at each documented limit.

Each test names the limit it holds; src/canaryfleet_local/FIDELITY.md lists them with their sources.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.workflow import StepFunctionsRolloutWorkflow, recovery_name
from canaryfleet.logic.analysis import stats
from canaryfleet.models.approval import new_approval_id
from canaryfleet.models.artifact import ArtifactRef
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.standins.autoscaling import AutoScalingDesiredCapacityRange
from canaryfleet_local.standins.dynamodb import DynamoDBNumberRange
from canaryfleet_local.standins.eventbridge import EventBridgePutEventsSize
from canaryfleet_local.standins.lambda_ import (
    LambdaInvokeInProcess,
    LambdaPayloadQuotas,
    RequestTooLargeError,
)
from canaryfleet_local.standins.lambda_async import AsyncInvocationQueue
from canaryfleet_local.standins.sqs_sns import LambdaSqsEventSourceMappingRules, SnsPublishRules
from canaryfleet_local.standins.ssm import SsmParameterValueLimits, SsmRunCommandOnManagedInstances
from canaryfleet_local.standins.stepfunctions import (
    StepFunctionsRequestLimits,
    runtime_errors_end_the_execution,
    start_execution_names_unnamed_executions,
)
from tests.integration.helpers import a_moto_function, an_auto_scaling_group, moto_account
from tests.integration.state_tables import create_state_table
from tests.unit.slack_worst_case import inconclusive_verdict

REGION = "eu-west-1"
KIB = 1024
HANG_SECONDS = 120  # waits on moto's execution thread end long before this, unless it hangs

CALLBACK_MACHINE = {
    "StartAt": "Wait for callback",
    "States": {
        "Wait for callback": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": "${QueueUrl}",
                "MessageBody": {"token.$": "$$.Task.Token", "execution.$": "$$.Execution.Id"},
            },
            "End": True,
        }
    },
}


@pytest.fixture
def aws() -> Iterator[None]:
    with moto_account(REGION, {"stepfunctions": {"execute_state_machine": True}}):
        yield


def refused(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


# --- SNS -------------------------------------------------------------------------------------


@pytest.fixture
def topic(aws: None) -> Iterator[str]:
    with SnsPublishRules().installed():
        yield boto3.client("sns").create_topic(Name="notices")["TopicArn"]


@pytest.mark.parametrize(
    "subject",
    ["x" * 100, "line one\nline two", "bell\x07", " leading space", ""],
    ids=["100 characters", "line break", "control character", "leading space", "empty"],
)
def test_sns_refuses_a_subject_the_publish_api_does_not_accept(topic: str, subject: str) -> None:
    sns = boto3.client("sns")

    assert refused(sns.publish, TopicArn=topic, Message="m", Subject=subject) == "InvalidParameter"


def test_sns_accepts_a_subject_of_99_characters_of_any_script(topic: str) -> None:
    sns = boto3.client("sns")

    sns.publish(TopicArn=topic, Message="m", Subject="\u20ac" * 99)
    sns.publish(TopicArn=topic, Message="m", Subject="[canaryfleet] " + "x" * 85)


def test_sns_counts_the_message_and_its_attributes_against_256_kib_in_bytes(topic: str) -> None:
    sns = boto3.client("sns")
    attributes = {"kind": {"DataType": "String", "StringValue": "rollout.released"}}
    attribute_bytes = len("kind") + len("String") + len("rollout.released")

    # Given a body that fills 256 KiB exactly with its attribute, it is accepted
    sns.publish(TopicArn=topic, Message="x" * (256 * KIB - attribute_bytes), MessageAttributes=attributes)

    # Given one byte more (a two-byte character in place of one), it is refused
    body = "\u00e9" + "x" * (256 * KIB - attribute_bytes - 1)
    assert refused(sns.publish, TopicArn=topic, Message=body, MessageAttributes=attributes) == (
        "InvalidParameter"
    )


def test_the_platforms_notifier_publishes_the_longest_names_on_the_local_cloud(topic: str) -> None:
    # Given the runtime's notifier and the longest application name the registry allows
    application = "a" + "b" * 38 + "c"

    # When it publishes a notice whose subject would be too long as it stands, SNS accepts it
    SnsNotifier(topic).publish("rollout.awaiting_approval" + ".x" * 40, application, {"version": "9" * 64})


# --- Step Functions --------------------------------------------------------------------------


@pytest.fixture
def callback_machine(aws: None) -> Iterator[str]:
    with StepFunctionsRequestLimits().installed(), start_execution_names_unnamed_executions():
        queue = boto3.client("sqs").create_queue(QueueName="tokens")["QueueUrl"]
        definition = json.dumps(CALLBACK_MACHINE).replace("${QueueUrl}", queue)
        arn = boto3.client("stepfunctions").create_state_machine(
            name="callbacks", definition=definition, roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        yield arn


def _token(machine: str) -> str:
    sfn, sqs = boto3.client("stepfunctions"), boto3.client("sqs")
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    queue = sqs.get_queue_url(QueueName="tokens")["QueueUrl"]
    # moto's interpreter runs the execution on a thread of its own: the deadlines only catch a
    # hang, so a busy machine cannot trip them.
    deadline = time.monotonic() + HANG_SECONDS
    while True:
        # Only this execution's message: an execution of an earlier test, still waiting on moto's
        # thread, may send its own to a queue of the same name.
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", [])
        bodies = [json.loads(m["Body"]) for m in messages]
        mine = [b for b in bodies if b.get("execution") == execution]
        if mine:
            token = str(mine[0]["token"])
            break
        if time.monotonic() > deadline:
            raise AssertionError("the execution never sent its token")
        time.sleep(0.01)
    # The message goes out before the task waits on its token: TaskSubmitted says it waits.
    while time.monotonic() <= deadline:
        events = sfn.get_execution_history(executionArn=execution)["events"]
        if any(event["type"] == "TaskSubmitted" for event in events):
            return token
        time.sleep(0.01)
    raise AssertionError("the execution never waited on its token")


def _accepted(call: Any, **kwargs: Any) -> None:
    """Make a call that must succeed; moto registers a task's token a moment after TaskSubmitted."""
    deadline = time.monotonic() + HANG_SECONDS
    while time.monotonic() <= deadline:
        try:
            call(**kwargs)
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "InvalidToken":
                raise
            time.sleep(0.01)
    raise AssertionError("the execution never waited on its token")


def test_start_execution_takes_256_kib_of_input_and_refuses_one_byte_more(callback_machine: str) -> None:
    sfn = boto3.client("stepfunctions")
    at_limit = json.dumps({"pad": "x" * (256 * KIB - len('{"pad": ""}'))})
    assert len(at_limit.encode()) == 256 * KIB

    over = at_limit.replace("x", "\u00e9", 1)  # one two-byte character: 256 KiB + 1 byte

    assert refused(sfn.start_execution, stateMachineArn=callback_machine, input=over) == "ValidationException"
    sfn.start_execution(stateMachineArn=callback_machine, input=at_limit)


def test_start_execution_without_a_name_gets_a_uuid_of_its_own(callback_machine: str) -> None:
    sfn = boto3.client("stepfunctions")

    # Given two executions started alike, neither named by the caller
    first = sfn.start_execution(stateMachineArn=callback_machine, input="{}")["executionArn"]
    second = sfn.start_execution(stateMachineArn=callback_machine, input="{}")["executionArn"]

    # Then each is a separate execution named with a UUID, as Step Functions names them
    assert first != second
    for arn in (first, second):
        assert uuid.UUID(arn.rsplit(":", 1)[1]).version == 4
    listed = sfn.list_executions(stateMachineArn=callback_machine)["executions"]
    assert {e["executionArn"] for e in listed} == {first, second}


def test_start_execution_takes_an_80_character_name_and_refuses_one_more(callback_machine: str) -> None:
    sfn = boto3.client("stepfunctions")

    assert (
        refused(sfn.start_execution, stateMachineArn=callback_machine, name="n" * 81) == "ValidationException"
    )
    started = sfn.start_execution(stateMachineArn=callback_machine, name="n" * 80)

    listed = sfn.list_executions(stateMachineArn=callback_machine)["executions"]
    assert [e["executionArn"] for e in listed] == [started["executionArn"]]


# One of each kind the Name shape's documentation lists (a surrogate cannot be sent as JSON).
@pytest.mark.parametrize(
    "character", list(' \t<}[?*"#%\\^|~`$&,;:/\x00\x1f\x7f\x85\x9f\ufffe\uffff\U0010ffff')
)
def test_start_execution_refuses_a_name_with_a_character_a_name_must_not_contain(
    callback_machine: str, character: str
) -> None:
    sfn = boto3.client("stepfunctions")

    assert refused(sfn.start_execution, stateMachineArn=callback_machine, name=f"payments{character}api") == (
        "InvalidName"
    )
    assert sfn.list_executions(stateMachineArn=callback_machine)["executions"] == []


def test_the_execution_names_canaryfleet_gives_are_ones_step_functions_takes(callback_machine: str) -> None:
    sfn = boto3.client("stepfunctions")
    # Given the longest application name and version, with every character a version may have
    artifact = ArtifactRef.from_object(
        "builds", f"{'a' + 'b' * 38 + 'c'}/1.2.3+build.7_rc-1{'9' * 46}.zip", "v1"
    )
    rollout_id = artifact.rollout_id
    stopped = StepFunctionsRolloutWorkflow(callback_machine).execution_arn(rollout_id)
    approval_id = new_approval_id()

    # Then a rollout, its recovery and an approval's expiry and settling runs all start
    for name in (rollout_id, recovery_name(stopped), approval_id, f"{approval_id}-ended", "é-ünïcode.name"):
        sfn.start_execution(stateMachineArn=callback_machine, name=name)

    assert len(sfn.list_executions(stateMachineArn=callback_machine)["executions"]) == 5


def test_send_task_success_refuses_output_over_256_kib(callback_machine: str) -> None:
    sfn = boto3.client("stepfunctions")
    token = _token(callback_machine)
    over = json.dumps({"pad": "x" * (256 * KIB)})

    assert refused(sfn.send_task_success, taskToken=token, output=over) == "ValidationException"
    _accepted(sfn.send_task_success, taskToken=token, output=json.dumps({"pad": "x" * (255 * KIB)}))


def test_a_task_token_longer_than_2048_characters_is_refused(callback_machine: str) -> None:
    sfn = boto3.client("stepfunctions")

    assert refused(sfn.send_task_success, taskToken="t" * 2049, output="{}") == "ValidationException"
    assert refused(sfn.send_task_failure, taskToken="t" * 2049) == "ValidationException"
    assert refused(sfn.send_task_heartbeat, taskToken="t" * 2049) == "ValidationException"


def test_send_task_failure_refuses_a_cause_over_32768_characters(callback_machine: str) -> None:
    sfn = boto3.client("stepfunctions")
    token = _token(callback_machine)

    assert refused(sfn.send_task_failure, taskToken=token, cause="c" * 32_769) == "ValidationException"
    _accepted(sfn.send_task_failure, taskToken=token, error="Rejected", cause="c" * 32_768)


def test_an_unknown_or_already_used_task_token_is_refused(callback_machine: str) -> None:
    sfn = boto3.client("stepfunctions")
    token = _token(callback_machine)
    _accepted(sfn.send_task_success, taskToken=token, output="{}")

    # Then a token Step Functions never gave, or one already used, is refused as AWS refuses it
    assert refused(sfn.send_task_success, taskToken="never-issued", output="{}") == "InvalidToken"
    assert refused(sfn.send_task_success, taskToken=token, output="{}") == "TaskTimedOut"
    assert refused(sfn.send_task_failure, taskToken=token, error="Late") == "TaskTimedOut"


def test_a_state_whose_output_passes_256_kib_fails_with_states_data_limit_exceeded(aws: None) -> None:
    # Given a state machine whose first state doubles its 200 KiB input
    doubling = {
        "StartAt": "Double",
        "States": {
            "Double": {"Type": "Pass", "Parameters": {"a.$": "$", "b.$": "$"}, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="doubling", definition=json.dumps(doubling), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]

    # When it runs
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"pad": "x" * (200 * KIB)}))

    # Then the execution fails as Step Functions fails it (moto's interpreter already does)
    for _ in range(500):
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            break
        time.sleep(0.01)
    assert described["status"] == "FAILED"
    assert described.get("error") == "States.DataLimitExceeded"


def _run_to_its_end(
    definition: dict[str, Any], execution_input: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The execution of ``definition`` once it ended, and the states it entered."""
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(execution_input))["executionArn"]
    for _ in range(1000):
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.01)
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return described, entered


CAUGHT = {"Caught": {"Type": "Pass", "End": True}}
CATCH_ALL = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}]
RETRY_ALL = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}]


@pytest.mark.parametrize("named", [["States.ALL"], ["States.Runtime"]])
def test_a_parameters_path_that_matches_nothing_fails_the_execution_whatever_its_catch(
    aws: None, named: list[str]
) -> None:
    # Given a task whose Parameters read a field its input lacks, retried and caught on every error
    definition = {
        "StartAt": "Send",
        "States": {
            "Send": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage",
                "Parameters": {
                    "QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/q",
                    "MessageBody.$": "$.missing",
                },
                "Retry": [{**RETRY_ALL[0], "ErrorEquals": named}],
                "Catch": [{**CATCH_ALL[0], "ErrorEquals": named}],
                "End": True,
            },
            **CAUGHT,
        },
    }

    with runtime_errors_end_the_execution():
        described, entered = _run_to_its_end(definition, {"present": 1})

    # Then the execution fails with States.Runtime: no retry, and the Catch never runs
    assert (described["status"], described.get("error")) == ("FAILED", "States.Runtime")
    assert entered == ["Send"]


def test_a_state_output_over_256_kib_is_not_caught_by_states_all(aws: None) -> None:
    # Given a Parallel state whose two branches each return its 200 KiB input, caught on every error
    branch = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {"Type": "Parallel", "Branches": [branch, branch], "Catch": CATCH_ALL, "End": True},
            **CAUGHT,
        },
    }

    with runtime_errors_end_the_execution():
        described, entered = _run_to_its_end(definition, {"pad": "x" * (200 * KIB)})

    assert (described["status"], described.get("error")) == ("FAILED", "States.DataLimitExceeded")
    assert "Caught" not in entered


def test_a_task_the_local_cloud_itself_failed_is_a_task_failure_retried_and_caught(aws: None) -> None:
    # Given a Lambda task whose invocation the local cloud fails with an exception of its own
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": "arn:aws:lambda:eu-west-1:123456789012:function:f",
                    "Payload": {},
                },
                "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                "Catch": CATCH_ALL,
                "End": True,
            },
            **CAUGHT,
        },
    }
    broken = mock.patch.object(
        lambda_eval_utils, "execute_lambda_function_integration", side_effect=RuntimeError("boom")
    )

    with runtime_errors_end_the_execution(), broken as invoked:
        described, entered = _run_to_its_end(definition, {})

    # Then it is a task failure, as AWS would name a task that failed: retried, then caught
    assert described["status"] == "SUCCEEDED"
    assert entered == ["Invoke", "Caught"]
    assert invoked.call_count == 2
    assert json.loads(described["output"])["error"] == {
        "Error": "States.TaskFailed",
        "Cause": "RuntimeError: boom",
    }


def test_any_other_error_is_still_retried_and_caught(aws: None) -> None:
    # Given a branch that fails with an error of its own, under a Parallel state that catches all
    branch = {"StartAt": "Fail", "States": {"Fail": {"Type": "Fail", "Error": "Custom", "Cause": "why"}}}
    definition = {
        "StartAt": "Try",
        "States": {
            "Try": {"Type": "Parallel", "Branches": [branch], "Catch": CATCH_ALL, "End": True},
            **CAUGHT,
        },
    }

    with runtime_errors_end_the_execution():
        described, entered = _run_to_its_end(definition, {})

    assert described["status"] == "SUCCEEDED"
    assert entered[-1] == "Caught"
    assert json.loads(described["output"])["error"]["Error"] == "Custom"


# --- Lambda ----------------------------------------------------------------------------------


def test_lambda_takes_a_6_mib_synchronous_request_and_refuses_one_byte_more() -> None:
    LambdaPayloadQuotas.check_request(b"x" * (6 * KIB * KIB), "RequestResponse")

    with pytest.raises(RequestTooLargeError):
        LambdaPayloadQuotas.check_request(b"x" * (6 * KIB * KIB + 1), "RequestResponse")


def test_lambda_takes_a_1_mib_asynchronous_request_and_refuses_one_byte_more() -> None:
    LambdaPayloadQuotas.check_request("x" * (KIB * KIB), "Event")

    with pytest.raises(RequestTooLargeError):
        LambdaPayloadQuotas.check_request("\u00e9" + "x" * (KIB * KIB - 1), "Event")


def test_a_synchronous_response_over_6_mib_fails_the_invocation() -> None:
    at_limit = b"x" * (6 * KIB * KIB)
    assert LambdaPayloadQuotas.checked_response(at_limit, False) == (at_limit, False)

    payload, failed = LambdaPayloadQuotas.checked_response(at_limit + b"x", False)

    assert failed
    assert json.loads(payload)["errorType"] == "Function.ResponseSizeTooLarge"


def test_the_lambda_api_refuses_an_oversized_request_before_running_the_handler(aws: None) -> None:
    # Given a function known to Lambda and the local cloud's Invoke
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("lambda").create_function(
        FunctionName="fn", Runtime="python3.13", Role=role, Handler="app.handler", Code={"ZipFile": b"zip"}
    )
    runtime = LambdaInvokeInProcess("123456789012", REGION)
    runtime.queue = AsyncInvocationQueue(runtime)
    try:
        with runtime.installed():
            # When it is invoked asynchronously with 1 MiB and one byte, Lambda refuses it
            code = refused(
                boto3.client("lambda").invoke,
                FunctionName="fn",
                InvocationType="Event",
                Payload=json.dumps({"pad": "x" * (KIB * KIB)}).encode(),
            )
    finally:
        runtime.queue.shutdown()

    # Then nothing ran
    assert code == "RequestTooLargeException"
    assert runtime.invocations == []


# --- EventBridge, DynamoDB, Systems Manager ----------------------------------------------------


def test_put_events_refuses_entries_reaching_1_mib(aws: None) -> None:
    events = boto3.client("events")
    entry = {"Source": "canaryfleet.test", "DetailType": "padded"}
    fixed = len("canaryfleet.test") + len("padded") + len('{"pad": ""}')

    with EventBridgePutEventsSize().installed():
        below = json.dumps({"pad": "x" * (KIB * KIB - fixed - 1)})
        assert events.put_events(Entries=[{**entry, "Detail": below}])["FailedEntryCount"] == 0
        reaching = json.dumps({"pad": "x" * (KIB * KIB - fixed)})
        assert refused(events.put_events, Entries=[{**entry, "Detail": reaching}]) == "ValidationException"


def test_dynamodb_refuses_an_item_over_400_kb_as_moto_already_does(aws: None) -> None:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # An item's size is its attribute names and values in UTF-8 (here "pk", "k", "pad" and the padding).
    overhead = len("pk") + len("k") + len("pad")
    dynamodb.put_item(TableName="state", Item={"pk": {"S": "k"}, "pad": {"S": "x" * (400_000 - overhead)}})

    # moto refuses from 405,000 bytes; AWS's 400 KB is 409,600: an item over it is refused by both
    too_big = {"pk": {"S": "k"}, "pad": {"S": "x" * (400 * KIB - overhead + 1)}}
    assert refused(dynamodb.put_item, TableName="state", Item=too_big) == "ValidationException"


@pytest.fixture
def state_table(aws: None) -> Iterator[Any]:
    create_state_table("state")
    with DynamoDBNumberRange().installed():
        yield boto3.client("dynamodb")


@pytest.mark.parametrize("number", ["1E-131", "-1E-140", "1E+126", "-1.5E+127"])
@pytest.mark.parametrize("where", ["top", "map", "list", "set"])
def test_dynamodb_refuses_a_number_beyond_its_range_anywhere_in_a_write(
    state_table: Any, number: str, where: str
) -> None:
    value = {
        "top": {"N": number},
        "map": {"M": {"p_value": {"N": number}}},
        "list": {"L": [{"M": {"p_value": {"N": number}}}]},
        "set": {"NS": ["1", number]},
    }[where]
    key = {"pk": {"S": "APP#a"}, "sk": {"S": "ROLLOUT#r"}}

    # PutItem, UpdateItem and TransactWriteItems are refused, and nothing is written
    assert refused(state_table.put_item, TableName="state", Item={**key, "v": value}) == "ValidationException"
    assert refused(
        state_table.update_item,
        TableName="state",
        Key=key,
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": value},
    ) == ("ValidationException")
    put = {"Put": {"TableName": "state", "Item": {**key, "v": value}}}
    assert refused(state_table.transact_write_items, TransactItems=[put]) == "ValidationException"
    assert "Item" not in state_table.get_item(TableName="state", Key=key)


def test_dynamodb_keeps_the_ends_of_its_range(state_table: Any) -> None:
    key = {"pk": {"S": "APP#a"}, "sk": {"S": "ROLLOUT#r"}}
    ends = {"NS": ["1E-130", "-1E-130", "9.9999999999999999999999999999999999999E+125", "0"]}

    state_table.put_item(TableName="state", Item={**key, "v": ends})

    assert len(state_table.get_item(TableName="state", Key=key)["Item"]["v"]["NS"]) == 4


def test_a_verdict_with_p_values_below_dynamodbs_range_is_recorded(state_table: Any) -> None:
    # Given the verdict of a clearly failing canary: 6% errors against live's 0.5% over 5,000
    # requests gives a p-value of about 1E-167, below the smallest number DynamoDB keeps
    p_value = stats.binom_test(300, 775, 5000 * 1.1 / (5000 * 1.1 + 95000), "greater")
    assert 0 < p_value < 1e-130
    verdict = inconclusive_verdict(1)
    failing = verdict.metrics[0].model_copy(update={"p_value": p_value, "p_adjusted": 1.5e-138})
    verdict = verdict.model_copy(update={"metrics": [failing]})
    key = {"pk": {"S": "APP#pay"}, "sk": {"S": "ROLLOUT#r1"}}
    state_table.put_item(TableName="state", Item={**key, "status": {"S": "baking"}})

    # When the analyse step records it
    DynamoRolloutStore("state").record_verdict("pay", "r1", verdict)

    # Then the write succeeds, with both p-values 0, which they are to DynamoDB's precision
    item = state_table.get_item(TableName="state", Key=key)["Item"]
    metric = item["verdict"]["M"]["metrics"]["L"][0]["M"]
    assert (metric["p_value"], metric["p_adjusted"]) == ({"N": "0"}, {"N": "0"})


def test_a_standard_parameter_takes_4_kb_and_refuses_one_byte_more(aws: None) -> None:
    ssm = boto3.client("ssm")
    with SsmParameterValueLimits().installed():
        ssm.put_parameter(Name="/canaryfleet/apps/a", Value="x" * 4_096, Type="String")

        over = "\u00e9" + "x" * 4_095
        assert refused(ssm.put_parameter, Name="/canaryfleet/apps/b", Value=over, Type="String") == (
            "ValidationException"
        )
        ssm.put_parameter(Name="/canaryfleet/apps/c", Value=over, Type="String", Tier="Advanced")


def test_send_command_refuses_51_instance_ids(aws: None) -> None:
    # Given Run Command's stand-in and a document that exists
    ssm = boto3.client("ssm")
    run_command = SsmRunCommandOnManagedInstances(AsyncInvocationQueue(None), "123456789012", REGION)  # type: ignore[arg-type]
    with run_command.installed():
        # When 51 instances are named in one call (the drains send at most 50)
        code = refused(
            ssm.send_command,
            DocumentName="AWS-RunShellScript",
            InstanceIds=[f"i-{n:017x}" for n in range(51)],
            Parameters={"commands": ["true"]},
        )

    # Then Systems Manager refuses it and keeps no command
    assert code == "ValidationException"
    assert run_command.calls == []
    assert ssm.list_commands()["Commands"] == []


# --- all of it on the platform ---------------------------------------------------------------


def test_the_local_cloud_installs_the_request_limits() -> None:
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as cloud:
        topic = (
            cloud.outputs.get("NotificationTopicArn")
            or cloud.client("sns").list_topics()["Topics"][0]["TopicArn"]
        )

        code = refused(cloud.client("sns").publish, TopicArn=topic, Message="m", Subject="x" * 100)
        sfn_code = refused(cloud.client("stepfunctions").send_task_success, taskToken="t" * 2049, output="{}")

    assert (code, sfn_code) == ("InvalidParameter", "ValidationException")


# --- Lambda's SQS event source mappings --------------------------------------------------------


@pytest.fixture
def queue_and_function(aws: None) -> Iterator[tuple[str, str]]:
    """A queue whose messages stay invisible 60 s once received, and a function of 30 s."""
    a_moto_function("worker", timeout=30)
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    with LambdaSqsEventSourceMappingRules().installed():
        yield arn, url


def test_a_mapping_from_a_queue_whose_visibility_timeout_is_shorter_than_the_function_is_refused(
    queue_and_function: tuple[str, str],
) -> None:
    # Given the function's timeout raised to 90 s, past the queue's 60 s
    arn, _ = queue_and_function
    aws_lambda = boto3.client("lambda")
    aws_lambda.update_function_configuration(FunctionName="worker", Timeout=90)

    # When a mapping is asked for, Lambda refuses it and makes none
    assert refused(aws_lambda.create_event_source_mapping, EventSourceArn=arn, FunctionName="worker") == (
        "InvalidParameterValueException"
    )
    assert aws_lambda.list_event_source_mappings()["EventSourceMappings"] == []


def test_a_batch_of_more_than_ten_messages_needs_a_batching_window(
    queue_and_function: tuple[str, str],
) -> None:
    arn, _ = queue_and_function
    aws_lambda = boto3.client("lambda")

    # A batch of 50 without a window is refused, with a window of 1 s it is a mapping
    assert refused(
        aws_lambda.create_event_source_mapping, EventSourceArn=arn, FunctionName="worker", BatchSize=50
    ) == ("InvalidParameterValueException")
    mapping = aws_lambda.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="worker", BatchSize=50, MaximumBatchingWindowInSeconds=1
    )

    # and an update that takes the window away again is refused and changes nothing
    assert refused(
        aws_lambda.update_event_source_mapping, UUID=mapping["UUID"], MaximumBatchingWindowInSeconds=0
    ) == ("InvalidParameterValueException")
    assert aws_lambda.get_event_source_mapping(UUID=mapping["UUID"])["MaximumBatchingWindowInSeconds"] == 1


def test_set_desired_capacity_refuses_a_capacity_outside_the_groups_min_and_max(aws: None) -> None:
    # Given a group of 2 to 4 instances
    autoscaling = boto3.client("autoscaling")
    an_auto_scaling_group(autoscaling, "pay-green", min_size=2, max_size=4, desired=2, zone=f"{REGION}a")
    with AutoScalingDesiredCapacityRange().installed():
        # When a capacity outside it is asked for, Auto Scaling refuses it and keeps 2
        for outside in (5, 1):
            assert refused(
                autoscaling.set_desired_capacity, AutoScalingGroupName="pay-green", DesiredCapacity=outside
            ) == ("ValidationError")
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["pay-green"])
        assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 2

        # and one within it is set
        autoscaling.set_desired_capacity(AutoScalingGroupName="pay-green", DesiredCapacity=4)
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["pay-green"])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 4
