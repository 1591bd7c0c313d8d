"""On the local cloud with IAM enforced, each function runs under its own role's credentials.

`CANARYFLEET_LOCAL_IAM=enforce` makes every call a function makes go through the local cloud's
IAM check against the inline policies of that function's role in template.yaml: the action, the
resource the call names (S3, SQS, Step Functions, DynamoDB, parameters, secrets, topics, alarms,
Auto Scaling groups, listener rules, target groups, Run Command's document and instances; "*" for
an action that names no resource type, which IAM grants only on "*"), and the conditions on the
tags of those resources (the fleet's `canaryfleet:application`). A rollout and a drain pass; a
template with one permission removed fails the function that needs it with AccessDenied.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from canaryfleet.adapters.drain_store import DynamoDrainStore
from canaryfleet.adapters.drains import SsmRunCommand
from canaryfleet.adapters.fleet import CodeDeploy
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.artifact import ArtifactRef
from canaryfleet.models.drain import LIFECYCLE_BUDGET, DrainRecord, DrainStatus
from canaryfleet.models.rollout import Revision, RolloutInput, RolloutRef
from canaryfleet.models.tasks import DeployRequest

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.drain_job import run_drain_scenario
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.rollout_job import APPLICATION, played_scenario, scenario_cloud, upload_build
from canaryfleet_local.standins.iam import IAM_ENFORCEMENT_VARIABLE, FunctionRoleCredentials
from canaryfleet_local.standins.ssm import CommandInvocationResult
from canaryfleet_local.template import DEFAULT_TEMPLATE, REPO_ROOT
from tests.helpers import load_event
from tests.integration.helpers import HeldRuns, eventually, invoke, queue_attribute

QUIET = {"LogLevel": "WARNING"}
_IMAGE = "ami-12c6146b"  # one of the images moto holds


@pytest.fixture(autouse=True)
def _iam_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(IAM_ENFORCEMENT_VARIABLE, "enforce")


def _roles(cloud: LocalCloud) -> FunctionRoleCredentials:
    assert cloud.runtime.roles is not None, "the local cloud should run functions under their roles"
    return cloud.runtime.roles


def _role_name(cloud: LocalCloud, function_logical_id: str) -> str:
    configuration = cloud.client("lambda").get_function_configuration(
        FunctionName=cloud.function_names[function_logical_id]
    )
    return str(configuration["Role"]).rsplit("/", 1)[-1]


def test_a_healthy_rollout_is_released_with_every_function_under_its_own_role() -> None:
    # Given the platform with IAM enforced and an onboarded application
    with scenario_cloud("healthy", parameters=QUIET) as (cloud, _simulator):
        # When CI uploads a build
        upload_build(cloud, APPLICATION, "1.0.0", bundle())
        deadline = time.monotonic() + 60
        while not cloud.executions("RolloutStateMachine"):
            assert time.monotonic() < deadline, "no rollout started"
            time.sleep(0.05)
        [execution_arn] = cloud.executions("RolloutStateMachine")
        execution = cloud.wait_for_execution(execution_arn, timeout=600)
        cloud.wait_idle()

        # Then it is released, nothing was denied, and the calls were checked under each role
        assert execution.status == "SUCCEEDED", execution.cause
        assert execution.states_entered[-1] == "Rollout released"
        roles = _roles(cloud)
        assert roles.denied == []
        callers = {caller.split("/")[1] for caller, _ in roles.allowed}
        for function in (
            "StartRolloutFunction",
            "DeployFunction",
            "ShiftTrafficFunction",
            "FinalizeFunction",
        ):
            assert _role_name(cloud, function) in callers
        actions = {action for _, action in roles.allowed}
        assert {"dynamodb:PutItem", "dynamodb:DeleteItem", "s3:GetObject", "states:StartExecution"} <= actions
        deploys = {
            action
            for caller, action in roles.allowed
            if caller.split("/")[1] == _role_name(cloud, "DeployFunction")
        }
        assert "codedeploy:GetDeployment" in deploys, "the status read after the token is stored"


def test_a_bake_extended_for_too_little_traffic_runs_under_the_bake_functions_own_role() -> None:
    # Given the platform with IAM enforced and a story whose bake sees too few requests to judge
    with scenario_cloud("inconclusive-without-approval", parameters=QUIET) as (cloud, _simulator):
        upload_build(cloud, APPLICATION, "1.0.0", bundle())
        [execution_arn] = eventually(lambda: cloud.executions("RolloutStateMachine"), timeout=60)
        execution = cloud.wait_for_execution(execution_arn, timeout=600)
        cloud.wait_idle()
        roles = _roles(cloud)
        bake_role = _role_name(cloud, "BakeFunction")

    # Then its bake is extended once (the extension reads where the bake's window began) and the
    # rollout is rolled back as the story says, with nothing denied on the way
    assert execution.states_entered.count("Bake canary") == 2, execution.states_entered
    assert execution.status == "FAILED"
    assert roles.denied == []
    assert (bake_role, "dynamodb:GetItem") in {(caller.split("/")[1], a) for caller, a in roles.allowed}


def _awaiting_approval(cloud: LocalCloud) -> str:
    """Upload a build and wait until its rollout waits for its approval; its execution's ARN."""
    upload_build(cloud, APPLICATION, "1.0.0", bundle())
    store = DynamoRolloutStore(cloud.output("StateTableName"))

    def waiting_for_approval() -> bool:
        records = store.list_rollouts(APPLICATION)
        return bool(
            records and records[0].current_stage and records[0].current_stage.value == "awaiting_approval"
        )

    eventually(waiting_for_approval, timeout=300)
    [execution] = cloud.executions("RolloutStateMachine")
    return execution


def _calls_of(cloud: LocalCloud, *functions: str) -> dict[str, set[str]]:
    roles = _roles(cloud)
    return {
        function: {
            action for caller, action in roles.allowed if caller.split("/")[1] == _role_name(cloud, function)
        }
        for function in functions
    }


def test_a_stopped_rollout_is_recovered_with_each_function_under_its_own_role() -> None:
    # Given the platform with IAM enforced and a build waiting for its approval
    with scenario_cloud("awaiting-decision", parameters=QUIET) as (cloud, _simulator):
        stopped = _awaiting_approval(cloud)

        # When someone stops its execution in Step Functions
        cloud.client("stepfunctions").stop_execution(executionArn=stopped, error="Manual", cause="paged")

        # Then its recovery rolls it back, and nothing was denied on the way
        # (its status event, the rule and ExecutionEndedFunction first: seconds, more on a busy machine)
        recovery = eventually(
            lambda: [arn for arn in cloud.executions("RolloutStateMachine") if arn != stopped], timeout=60
        )
        assert cloud.wait_for_execution(recovery[0], timeout=300).error == "RolledBack"
        cloud.wait_idle()
        assert _roles(cloud).denied == []
        calls = _calls_of(cloud, "ExecutionEndedFunction", "ReleaseTurnFunction")
        ended = calls["ExecutionEndedFunction"]
        assert {"states:GetExecutionHistory", "states:StartExecution"} <= ended, "the stop's cause read"
        assert "dynamodb:UpdateItem" in calls["ReleaseTurnFunction"], "the lock taken over"
        assert "states:StartExecution" in calls["ReleaseTurnFunction"], "its approval settled now"


def test_a_stop_whose_status_event_was_lost_is_recovered_by_the_sweep_under_its_own_role() -> None:
    # Given the platform with IAM enforced and a build waiting for its approval
    with scenario_cloud("awaiting-decision", parameters=QUIET) as (cloud, _simulator):
        stopped = _awaiting_approval(cloud)

        # When its execution is stopped and Step Functions' status event never comes (best effort)
        cloud.stand_ins.step_functions_events.silence()
        cloud.client("stepfunctions").stop_execution(executionArn=stopped, error="Manual", cause="paged")
        cloud.wait_idle()
        recoveries = [arn for arn in cloud.executions("RolloutStateMachine") if arn != stopped]
        assert recoveries == [], "no event, no recovery yet"

        # and the scheduled sweep runs (its rule's constant input)
        swept, error = invoke(cloud, "ExecutionEndedFunction", {"action": "sweep"})

        # Then it starts the recovery the event would have started, which rolls the rollout back
        assert error is None, swept
        assert swept == {"swept": {APPLICATION: "recovery started"}}
        [recovery] = [arn for arn in cloud.executions("RolloutStateMachine") if arn != stopped]
        assert cloud.wait_for_execution(recovery, timeout=300).error == "RolledBack"
        cloud.wait_idle()
        assert DynamoRolloutStore(cloud.output("StateTableName")).lock(APPLICATION) is None
        assert _roles(cloud).denied == []
        sweeps = _calls_of(cloud, "ExecutionEndedFunction")["ExecutionEndedFunction"]
        assert {"ssm:GetParametersByPath", "dynamodb:GetItem", "states:StartExecution"} <= sweeps


def _template_without(tmp_path: Path, function_logical_id: str, action: str) -> Path:
    """template.yaml with ``action`` taken out of one function's policies, beside the code it names."""
    text = DEFAULT_TEMPLATE.read_text()
    start = text.index(f"\n  {function_logical_id}:\n")
    following = re.compile(r"\n  [A-Za-z#]").search(text, start + 1)
    end = following.start() if following else len(text)
    block = text[start:end]
    line = f"                - {action}\n"
    assert block.count(line) == 1, f"{function_logical_id} should grant {action} once"
    (tmp_path / "template.yaml").write_text(text[:start] + block.replace(line, "") + text[end:])
    for folder in ("functions", "layers", "statemachines"):
        (tmp_path / folder).symlink_to(REPO_ROOT / folder)
    return tmp_path / "template.yaml"


def _finalize(cloud: LocalCloud) -> tuple[str | None, dict[str, Any]]:
    event = {
        "ref": {"application": APPLICATION, "rollout_id": "hello-app-1_0_0-0001", "version": "1.0.0"},
        "revision": {
            "bucket": cloud.output("ArtifactBucketName"),
            "key": "hello-app/1.0.0.zip",
            "version": "1.0.0",
        },
    }
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.function_names["FinalizeFunction"], Payload=json.dumps(event).encode()
    )
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_finalize_records_the_release_under_its_own_role() -> None:
    # Given the platform as template.yaml declares it, IAM enforced, and a bake's fail-fast alarm
    with LocalCloud(parameters=QUIET) as cloud:
        cloudwatch = cloud.client("cloudwatch")
        alarm = f"canaryfleet-{APPLICATION}.payment-success"
        cloudwatch.put_metric_alarm(
            AlarmName=alarm,
            Metrics=[
                {
                    "Id": "r",
                    "MetricStat": {
                        "Metric": {"Namespace": "HelloApp", "MetricName": "Requests"},
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                },
                {"Id": "z", "Expression": "r * 2", "ReturnData": True},
            ],
            Threshold=4,
            ComparisonOperator="GreaterThanThreshold",
            EvaluationPeriods=2,
            DatapointsToAlarm=2,
        )

        # When the finalize task runs
        error, payload = _finalize(cloud)

        # Then it records the release, and deletes the alarm, with what its role grants
        assert error is None, payload
        assert payload == {"outcome": "released", "version": "1.0.0"}
        assert cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"] == []
        role = _role_name(cloud, "FinalizeFunction")
        assert {a for caller, a in _roles(cloud).allowed if role in caller} == {
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:DeleteAlarms",
        }


def test_a_permission_removed_from_the_template_is_caught_as_access_denied(tmp_path: Path) -> None:
    # Given a template whose FinalizeFunction lost dynamodb:UpdateItem
    template = _template_without(tmp_path, "FinalizeFunction", "dynamodb:UpdateItem")

    with LocalCloud(template_path=template, parameters=QUIET) as cloud:
        # When the finalize task runs
        error, payload = _finalize(cloud)

        # Then the call its role no longer allows is denied, and the function fails with it
        assert error == "Unhandled"
        assert "AccessDenied" in payload["errorMessage"]
        assert "dynamodb:UpdateItem" in payload["errorMessage"]
        role = _role_name(cloud, "FinalizeFunction")
        assert [(caller.split("/")[1], action) for caller, action in _roles(cloud).denied] == [
            (role, "dynamodb:UpdateItem")
        ]


def _session_of(cloud: LocalCloud, logical_id: str) -> boto3.session.Session:
    """A session signed with the credentials the function runs with (its role's)."""
    function = cloud.client("lambda").get_function_configuration(
        FunctionName=cloud.function_names[logical_id]
    )
    return _session_as(cloud, function["Role"])


def _session_as(cloud: LocalCloud, role_arn: str) -> boto3.session.Session:
    """A session signed with the credentials Lambda would give a function of ``role_arn``."""
    credentials = _roles(cloud).environment(role_arn)
    return boto3.session.Session(
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
        region_name=cloud.region,
    )


def test_calls_signed_with_a_functions_credentials_but_outside_its_grants_are_denied() -> None:
    # Given the platform, IAM enforced, and the credentials the finalize function runs with
    with LocalCloud(parameters=QUIET) as cloud:
        session = _session_of(cloud, "FinalizeFunction")

        # When they are used for what the function never does: a Scan, and listing artifacts
        with pytest.raises(ClientError) as scan:
            session.client("dynamodb").scan(TableName=cloud.output("StateTableName"))
        with pytest.raises(ClientError) as listing:
            session.client("s3").list_objects_v2(Bucket=cloud.output("ArtifactBucketName"))

        # Then IAM refuses both
        assert "not authorized to perform: dynamodb:Scan" in str(scan.value)
        assert listing.value.response["Error"]["Code"] == "AccessDenied"
        denied = {action for _, action in _roles(cloud).denied}
        assert denied == {"dynamodb:Scan", "s3:ListBucket"}


def test_a_missing_object_reads_access_denied_without_list_bucket_and_not_found_with_it() -> None:
    # Given the artifact bucket with one build, IAM enforced, a role that may only read its
    # objects, and start_rollout's own role (which may also list the bucket: template.yaml)
    with LocalCloud(parameters=QUIET) as cloud:
        bucket = cloud.output("ArtifactBucketName")
        cloud.client("s3").put_object(Bucket=bucket, Key="hello-app/0.9.txt", Body=b"notes")
        objects = f"arn:aws:s3:::{bucket}/*"
        reader = _role_granting(cloud, "reader", "s3:GetObject", objects).client("s3")
        start_rollout = _session_of(cloud, "StartRolloutFunction").client("s3")

        # When each reads an object that is there, and one that is not (GET and HEAD)
        assert reader.get_object(Bucket=bucket, Key="hello-app/0.9.txt")["Body"].read() == b"notes"
        with pytest.raises(ClientError) as denied:
            reader.get_object(Bucket=bucket, Key="hello-app/1.0.0.zip")
        with pytest.raises(ClientError) as denied_head:
            reader.head_object(Bucket=bucket, Key="hello-app/1.0.0.zip")
        with pytest.raises(ClientError) as not_found:
            start_rollout.get_object(Bucket=bucket, Key="hello-app/1.0.0.zip")

        # Then S3 answers as its GetObject permissions say: 403 without s3:ListBucket, 404 with it
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        assert denied_head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert not_found.value.response["Error"]["Code"] == "NoSuchKey"
        assert {action for _, action in _roles(cloud).denied} == {"s3:ListBucket"}


def test_a_scale_in_is_drained_with_every_drain_function_under_its_own_role() -> None:
    # Given the platform with IAM enforced and a live group of five
    # When the group scales in by three
    report = run_drain_scenario("scale-in", instances=3, parameters=QUIET)

    # Then each leaving instance is deregistered, drained by one command, and its hook completed:
    # DeregisterTargets, SendCommand and CompleteLifecycleAction were allowed under the tag-scoped
    # statements (by their actions: see the module docstring)
    assert report["function_errors"] == [], report["function_errors"]
    assert (report["drained"], report["manifests_verified"], report["lifecycle_completed"]) == (3, 3, 3)
    assert report["deregistered"] == 3
    assert report["send_command_calls"] >= 1
    assert report["dead_letters"] == 0


def test_a_drain_whose_status_event_was_lost_is_checked_under_the_dispatchers_own_role() -> None:
    # Given IAM enforced and two drains whose Run Command status events never come
    # When their check comes due on the drain queue
    report = run_drain_scenario("lost-status-events", parameters=QUIET)

    # Then the dispatcher read the commands' status, verified the logs and completed the hooks
    # under its own role (GetItem, GetCommandInvocation, the log bucket, CompleteLifecycleAction)
    assert report["function_errors"] == [], report["function_errors"]
    assert report["status_events_lost"] == 2
    assert (report["drained"], report["manifests_verified"], report["lifecycle_completed"]) == (3, 3, 3)


def test_a_check_renews_the_hook_of_a_run_delivered_late_under_the_dispatchers_own_role() -> None:
    # Given IAM enforced and two drains whose instances' agent takes the document 8 s late
    # When their checks come due on the drain queue and find the command Delayed
    report = run_drain_scenario("late-delivery", parameters=QUIET)

    # Then the dispatcher renewed the termination hooks (RecordLifecycleActionHeartbeat on groups
    # tagged canaryfleet:application; a refusal would only be logged) and both drained
    assert report["function_errors"] == [], report["function_errors"]
    assert report["lifecycle_heartbeats"] >= 2
    assert (report["drained"], report["manifests_verified"], report["lifecycle_completed"]) == (2, 2, 2)


def test_a_run_that_outlived_its_command_is_waited_for_under_the_completions_own_role() -> None:
    # Given IAM enforced, a scale-in's drain whose document runs on its instance, and the command
    # expiring during the run (Run Command tells the run "Delivery Timed Out" then)
    with LocalCloud(parameters=QUIET) as cloud:
        app = deploy_fleet(cloud, APPLICATION)
        (group,) = cloud.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[app.live.auto_scaling_group]
        )["AutoScalingGroups"]
        instance = group["Instances"][0]["InstanceId"]
        store = DynamoDrainStore(cloud.output("StateTableName"))
        now = datetime.now(UTC)
        store.begin(
            DrainRecord(
                instance_id=instance,
                application=APPLICATION,
                trigger="lifecycle",
                status=DrainStatus.QUEUED,
                log_prefix=f"{APPLICATION}/",
                started_at=now,
                budget=LIFECYCLE_BUDGET,
                hook_name="canaryfleet-drain",
                hook_auto_scaling_group=app.live.auto_scaling_group,
                hook_token="0f5b7d1e-0000-4000-8000-1234567890ab",
            )
        )
        assert store.claim(APPLICATION, instance, now, now) is not None
        document = cloud.resource("DrainDocument")
        with HeldRuns(cloud) as runs:
            command_id = SsmRunCommand().send(document, [instance], {"Mode": ["sync"]}, "a drain's run")
            store.record_command(APPLICATION, instance, command_id, "20261207T101500Z", "none", now)
            runs.expire(command_id)
            cloud.wait_idle()

        # When the status event of that expiry has reached the completion function (the local
        # cloud's Run Command emits it, EventBridge's rule delivers it), and a duplicate comes
        delayed = queue_attribute(cloud, cloud.resource("DrainQueue"), "ApproximateNumberOfMessagesDelayed")
        sent = len(cloud.fleet_operations.run_command.calls)
        event = load_event("drain_complete/command_invocation_success")
        event["detail"] |= {
            "command-id": command_id,
            "instance-id": instance,
            "document-name": document,
            "status": "TimedOut",
        }
        answer, error = invoke(cloud, "DrainCompleteFunction", event)
        record = store.get(APPLICATION, instance)

    # Then, reading the run's start under its own role (GetCommandInvocation), the completion
    # waits for the run: no second run, nothing given up, its look queued on the drain queue,
    # delayed; the duplicate waits the same way
    assert delayed == 1 and sent == 1
    assert error is None and answer["status"] == "waiting", answer
    assert "(DeliveryTimedOut), but its run, started at" in answer["reason"], "the run was read"
    assert record is not None and record.status is DrainStatus.RUNNING and record.attempts == 1
    assert record.outcome is None


def _denied(call: Any, code: str) -> str:
    """Make the call, which must be refused with ``code``; the refusal's message."""
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.response["Error"]["Code"] == code
    return str(refused.value.response["Error"]["Message"])


def test_a_rule_is_modified_only_while_it_carries_the_fleet_tag_the_grant_requires() -> None:
    # Given the platform and a fleet, IAM enforced, and the traffic function's credentials; its
    # ModifyRule grant holds only for rules tagged canaryfleet:application
    with LocalCloud(parameters=QUIET) as cloud:
        app = deploy_fleet(cloud, APPLICATION)
        elbv2 = cloud.client("elbv2")
        (rule,) = elbv2.describe_rules(RuleArns=[app.listener_rule_arn])["Rules"]
        traffic = _session_of(cloud, "ShiftTrafficFunction").client("elbv2")

        # Then the fleet stack's rule carries the template's tags, and the function may modify it
        (tagged,) = elbv2.describe_tags(ResourceArns=[app.listener_rule_arn])["TagDescriptions"]
        assert {"Key": "canaryfleet:application", "Value": APPLICATION} in tagged["Tags"]
        traffic.modify_rule(RuleArn=app.listener_rule_arn, Actions=rule["Actions"])

        # When the tag is taken off the rule
        elbv2.remove_tags(ResourceArns=[app.listener_rule_arn], TagKeys=["canaryfleet:application"])
        weights = [{"TargetGroupArn": app.live.target_group_arn, "Weight": 100}]

        # Then the same call is refused, naming the action, and the rule is not changed
        _denied(
            lambda: traffic.modify_rule(
                RuleArn=app.listener_rule_arn,
                Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": weights}}],
            ),
            "AccessDenied",
        )
        assert (
            elbv2.describe_rules(RuleArns=[app.listener_rule_arn])["Rules"][0]["Actions"] == rule["Actions"]
        )
        assert _roles(cloud).denied[-1][1] == "elasticloadbalancing:ModifyRule"


def test_a_group_is_resized_only_while_it_carries_the_fleet_tag_the_grant_requires() -> None:
    # Given a fleet, IAM enforced, and the color function's credentials, whose SetDesiredCapacity
    # grant holds only for groups tagged canaryfleet:application with some value
    with LocalCloud(parameters=QUIET) as cloud:
        app = deploy_fleet(cloud, APPLICATION)
        autoscaling = cloud.client("autoscaling")
        colors = _session_of(cloud, "ColorFunction").client("autoscaling")
        group = app.canary.auto_scaling_group

        # When it resizes the fleet's group, then the same group with the tag's value emptied
        colors.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
        autoscaling.create_or_update_tags(
            Tags=[
                {
                    "ResourceId": group,
                    "ResourceType": "auto-scaling-group",
                    "Key": "canaryfleet:application",
                    "Value": "",
                    "PropagateAtLaunch": True,
                }
            ]
        )

        # Then the first is done and the second refused ("?*" needs one character at least)
        _denied(
            lambda: colors.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=0), "AccessDenied"
        )
        (described,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
            "AutoScalingGroups"
        ]
        assert described["DesiredCapacity"] == 1
        assert _roles(cloud).denied[-1][1] == "autoscaling:SetDesiredCapacity"


class _AgentOnEveryInstance:
    """An SSM agent on every instance that ends each document at once, its event not sent."""

    def manages(self, instance_id: str) -> bool:
        return True

    def delivery_delay(self, instance_id: str) -> float:
        return 0.0

    def run(
        self, command_id: str, instance_id: str, document: str, parameters: dict[str, list[str]]
    ) -> CommandInvocationResult:
        return CommandInvocationResult("Success", event_lost=True)


def test_a_command_is_sent_only_if_every_instance_it_names_carries_the_fleet_tag() -> None:
    # Given a fleet, IAM enforced, the drain dispatcher's credentials (SendCommand on the drain
    # document, and on instances tagged canaryfleet:application), and an instance without the tag
    with LocalCloud(parameters=QUIET) as cloud:
        deploy_fleet(cloud, APPLICATION)
        ec2 = cloud.client("ec2")
        fleet_tag = {"Key": "canaryfleet:application", "Value": APPLICATION}  # as the groups propagate it
        tagged = ec2.run_instances(
            ImageId=_IMAGE,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [fleet_tag]}],
        )["Instances"][0]["InstanceId"]
        stray = ec2.run_instances(ImageId=_IMAGE, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        cloud.fleet_operations.run_command.agent = _AgentOnEveryInstance()
        ssm = _session_of(cloud, "DrainDispatchFunction").client("ssm")
        document = cloud.outputs["DrainDocumentName"]

        # When it sends the drain document to the fleet's instances, then to them and the stray one
        ssm.send_command(DocumentName=document, InstanceIds=[tagged])
        before = len(cloud.client("ssm").list_commands()["Commands"])

        # Then the first is sent, and the second refused whole: no command for any instance
        _denied(
            lambda: ssm.send_command(DocumentName=document, InstanceIds=[tagged, stray]),
            "AccessDeniedException",
        )
        assert len(cloud.client("ssm").list_commands()["Commands"]) == before
        assert _roles(cloud).denied[-1][1] == "ssm:SendCommand"


def test_alarms_are_checked_against_the_name_pattern_their_grant_allows() -> None:
    # Given the platform, IAM enforced, and the bake function's credentials, which may put and delete
    # alarms named "canaryfleet-*.*" only (its fail-fast alarms: "canaryfleet-<app>.<rollout>")
    with LocalCloud(parameters=QUIET) as cloud:
        cloudwatch = _session_of(cloud, "BakeFunction").client("cloudwatch")
        errors = {"Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_Target_5XX_Count"}
        alarm = {
            "Metrics": [
                {
                    "Id": "m1",
                    "MetricStat": {"Metric": errors, "Period": 60, "Stat": "Sum"},
                    "ReturnData": False,
                },
                {"Id": "e1", "Expression": "m1", "ReturnData": True},
            ],
            "EvaluationPeriods": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        }

        # When it puts one alarm of that pattern, and one whose name has no "." (a "." in the
        # pattern is a dot, not any character)
        cloudwatch.put_metric_alarm(AlarmName=f"canaryfleet-{APPLICATION}.r1", **alarm)
        _denied(
            lambda: cloudwatch.put_metric_alarm(AlarmName=f"canaryfleet-{APPLICATION}-r1", **alarm),
            "AccessDeniedException",
        )
        # and deletes two alarms at once, one of them outside the pattern
        _denied(
            lambda: cloudwatch.delete_alarms(
                AlarmNames=[f"canaryfleet-{APPLICATION}.r1", "payments-latency"]
            ),
            "AccessDeniedException",
        )

        # Then only the alarm of the pattern exists, and it was not deleted
        names = [a["AlarmName"] for a in cloud.client("cloudwatch").describe_alarms()["MetricAlarms"]]
        assert f"canaryfleet-{APPLICATION}.r1" in names
        assert f"canaryfleet-{APPLICATION}-r1" not in names


def _role_granting(
    cloud: LocalCloud, name: str, action: str, resource: str | list[str]
) -> boto3.session.Session:
    """A session signed with the credentials of a role that may do ``action`` on ``resource`` only."""
    iam = cloud.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="grant", PolicyDocument=json.dumps(policy))
    return _session_as(cloud, role["Arn"])


def test_an_sqs_batch_call_is_authorised_by_its_single_message_action() -> None:
    # Given a queue with a message in flight, and two roles: one granted the single-message
    # action, one granted only the batch action's name (SQS has no permission of that name)
    with LocalCloud(parameters=QUIET) as cloud:
        sqs = cloud.client("sqs")
        url = sqs.create_queue(QueueName="orders")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.send_message(QueueUrl=url, MessageBody="{}")
        [message] = sqs.receive_message(QueueUrl=url)["Messages"]
        entries = [{"Id": "0", "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 5}]
        single = _role_granting(cloud, "single", "sqs:ChangeMessageVisibility", arn)
        batch_only = _role_granting(cloud, "batch-only", "sqs:ChangeMessageVisibilityBatch", arn)

        # When each changes the message's visibility in a batch
        changed = single.client("sqs").change_message_visibility_batch(QueueUrl=url, Entries=entries)
        with pytest.raises(ClientError) as refused:
            batch_only.client("sqs").change_message_visibility_batch(QueueUrl=url, Entries=entries)

        # Then IAM authorises the batch by sqs:ChangeMessageVisibility, as AWS does
        assert changed.get("Failed", []) == [] and len(changed["Successful"]) == 1
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "sqs:ChangeMessageVisibility" in str(refused.value)
        assert {action for _, action in _roles(cloud).allowed} == {"sqs:ChangeMessageVisibility"}
        assert {action for _, action in _roles(cloud).denied} == {"sqs:ChangeMessageVisibility"}


def test_a_deployment_that_turns_its_groups_alarms_off_is_also_authorised_as_update_deployment_group() -> (
    None
):
    # Given a fleet, IAM enforced, a role granted CreateDeployment alone, and the deploy
    # function's own role (template.yaml)
    with LocalCloud(parameters=QUIET) as cloud:
        app = deploy_fleet(cloud, APPLICATION)
        create_only = _role_granting(cloud, "create-only", "codedeploy:CreateDeployment", "*")
        location = {
            "bucket": cloud.output("ArtifactBucketName"),
            "key": "hello-app/1.0.0.zip",
            "bundleType": "zip",
        }
        request = {
            "applicationName": app.codedeploy_application,
            "deploymentGroupName": app.canary.deployment_group,
            "revision": {"revisionType": "S3", "s3Location": location},
            "overrideAlarmConfiguration": {"enabled": False},
        }

        # When each starts a restore that turns the group's alarm polling off
        with pytest.raises(ClientError) as refused:
            create_only.client("codedeploy").create_deployment(**request)
        restore = _session_of(cloud, "DeployFunction").client("codedeploy").create_deployment(**request)

        # Then CodeDeploy also asks for UpdateDeploymentGroup, which only the deploy function has
        assert "codedeploy:UpdateDeploymentGroup" in str(refused.value)
        assert restore["deploymentId"]
        denied = {action for _, action in _roles(cloud).denied}
        assert denied == {"codedeploy:UpdateDeploymentGroup"}


def test_codedeploy_calls_are_checked_against_the_group_application_or_config_they_name() -> None:
    # Given a fleet with a canary deployment, IAM enforced, and a role granted the deploy
    # function's CodeDeploy actions on another application only
    with LocalCloud(parameters=QUIET) as cloud:
        app = deploy_fleet(cloud, APPLICATION)
        location = {
            "bucket": cloud.output("ArtifactBucketName"),
            "key": "hello-app/1.0.0.zip",
            "bundleType": "zip",
        }
        revision = {"revisionType": "S3", "s3Location": location}
        group = {
            "applicationName": app.codedeploy_application,
            "deploymentGroupName": app.canary.deployment_group,
        }
        deployment = cloud.client("codedeploy").create_deployment(**group, revision=revision)["deploymentId"]
        account = cloud.client("sts").get_caller_identity()["Account"]
        prefix = f"arn:aws:codedeploy:{cloud.region}:{account}"
        elsewhere = _role_granting(cloud, "elsewhere", "codedeploy:*", f"{prefix}:*:payments*").client(
            "codedeploy"
        )

        # When it creates, lists and reads the fleet's deployments, its revision and its config
        calls = {
            "codedeploy:CreateDeployment": lambda: elsewhere.create_deployment(**group, revision=revision),
            "codedeploy:ListDeployments": lambda: elsewhere.list_deployments(**group),
            "codedeploy:GetDeployment": lambda: elsewhere.get_deployment(deploymentId=deployment),
            "codedeploy:GetApplicationRevision": lambda: elsewhere.get_application_revision(
                applicationName=app.codedeploy_application, revision=revision
            ),
            "codedeploy:GetDeploymentConfig": lambda: elsewhere.get_deployment_config(
                deploymentConfigName="CodeDeployDefault.AllAtOnce"
            ),
        }
        refusals = [_denied(call, "AccessDeniedException") for call in calls.values()]

        # Then each is refused, checked against the fleet's group, application or the config
        assert [action for _, action in _roles(cloud).denied] == list(calls)
        fleet_group = f"{prefix}:deploymentgroup:{app.codedeploy_application}/{app.canary.deployment_group}"
        assert all(fleet_group in r for r in refusals[:3]), refusals
        assert f"{prefix}:application:{app.codedeploy_application}" in refusals[3]
        assert f"{prefix}:deploymentconfig:CodeDeployDefault.AllAtOnce" in refusals[4]


def test_an_action_without_resource_types_is_granted_on_every_resource_only() -> None:
    # Given a fleet with a deployment under way, IAM enforced, a role granted StopDeployment on
    # every deployment group (an ARN) and the two functions that stop deployments (template.yaml)
    with LocalCloud(parameters=QUIET) as cloud:
        app = deploy_fleet(cloud, APPLICATION)
        codedeploy = cloud.client("codedeploy")
        groups = f"arn:aws:codedeploy:{cloud.region}:{cloud.account_id}:deploymentgroup:*"
        on_groups = _role_granting(cloud, "stop-on-groups", "codedeploy:StopDeployment", groups)
        location = {
            "bucket": cloud.output("ArtifactBucketName"),
            "key": "hello-app/1.0.0.zip",
            "bundleType": "zip",
        }

        def deployment() -> str:
            return str(
                codedeploy.create_deployment(
                    applicationName=app.codedeploy_application,
                    deploymentGroupName=app.canary.deployment_group,
                    revision={"revisionType": "S3", "s3Location": location},
                )["deploymentId"]
            )

        # When each stops one
        first = deployment()
        with pytest.raises(ClientError) as refused:
            on_groups.client("codedeploy").stop_deployment(deploymentId=first, autoRollbackEnabled=False)
        stopped = [
            _session_of(cloud, "CheckDeploymentFunction")
            .client("codedeploy")
            .stop_deployment(deploymentId=first)
        ]
        second = deployment()
        stopped.append(
            _session_of(cloud, "RecordRollbackFunction")
            .client("codedeploy")
            .stop_deployment(deploymentId=second)
        )

        # Then IAM takes only a grant on "*": StopDeployment names no resource type (the Service
        # Authorization Reference), so a deployment group's ARN grants nothing
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "codedeploy:StopDeployment" in str(refused.value)
        assert {response["status"] for response in stopped} <= {"Pending", "Succeeded"}
        denied = {(caller.split("/")[1], action) for caller, action in _roles(cloud).denied}
        assert denied == {("stop-on-groups", "codedeploy:StopDeployment")}


def test_a_restore_that_fails_is_said_in_the_rollouts_reason_and_record(tmp_path: Path) -> None:
    # Given a platform whose deploy function lost the grant a restore needs (IAM enforced), and
    # a story whose second build trips its canary alarm after a first release
    template = _template_without(tmp_path, "DeployFunction", "codedeploy:UpdateDeploymentGroup")
    with played_scenario("failing-canary", parameters=QUIET, template_path=template) as run:
        report = run.report

    # When its rollback redeploys the last good revision to the canary, IAM refuses it
    # Then the rollout still ends rolled back, and its reason says the canary was not restored
    bad = report["rollouts"][-1]
    assert report["outcome"] == "rolled_back"
    assert "Redeploy last good revision to canary" in report["state_transitions"]
    assert bad["reason"].startswith("canary alarm hello-app-canary-"), bad["reason"]
    assert "; the canary group was not restored to the last good revision and may still run" in bad["reason"]
    assert "codedeploy:UpdateDeploymentGroup" in bad["reason"]
    assert report["canary_revision"] == "1.1.0", "the canary still runs the rolled-back build"


def test_a_deploy_retry_finds_the_deployment_its_failed_attempt_created_under_its_own_role() -> None:
    # Given a fleet, IAM enforced, a rollout, and its canary deployment created by an attempt of
    # the deploy task that failed before recording the deployment's id
    with LocalCloud(parameters=QUIET) as cloud:
        app = deploy_fleet(cloud, APPLICATION)
        artifact = ArtifactRef(
            bucket=cloud.output("ArtifactBucketName"),
            key=f"{APPLICATION}/1.0.0.zip",
            application=APPLICATION,
            version="1.0.0",
        )
        ref = RolloutRef(application=APPLICATION, rollout_id="r1", version="1.0.0")
        store = DynamoRolloutStore(cloud.output("StateTableName"))
        store.create(
            RolloutInput(rollout_id="r1", application=APPLICATION, version="1.0.0", artifact=artifact),
            datetime.now(UTC),
        )
        revision = Revision(bucket=artifact.bucket, key=artifact.key, version="1.0.0")
        earlier = CodeDeploy().create_deployment(
            app.codedeploy_application, app.canary.deployment_group, revision, "canaryfleet canary r1"
        )

        # When the state machine retries the task: the deploy function, under its own role
        request = DeployRequest(token="token-retry", ref=ref, purpose="canary", app=app, revision=revision)
        response = cloud.client("lambda").invoke(
            FunctionName=cloud.function_names["DeployFunction"],
            Payload=request.model_dump_json().encode(),
        )

        # Then it takes that deployment over (ListDeployments, GetDeployment) and creates none
        assert "FunctionError" not in response, response["Payload"].read()
        assert json.loads(response["Payload"].read()) == {"deployment_id": earlier}
        assert [d.deployment_id for d in cloud.codedeploy.created] == [earlier]
        assert store.deployment_for("r1", "canary") == earlier
        deploy_role = _role_name(cloud, "DeployFunction")
        calls = {action for caller, action in _roles(cloud).allowed if caller.split("/")[1] == deploy_role}
        assert {"codedeploy:ListDeployments", "codedeploy:GetDeployment"} <= calls
        assert _roles(cloud).denied == []


def test_step_functions_calls_are_checked_against_the_execution_or_state_machine_they_name() -> None:
    """Also: a JSON-protocol service's refusal is AccessDeniedException, HTTP 400, naming the
    resource ("Common Errors" of the Step Functions API Reference)."""
    # Given the platform, IAM enforced, and DecideFunction's role, which may read the rollout state
    # machine's executions only (template.yaml), with one execution of each state machine
    with LocalCloud(parameters=QUIET) as cloud:
        sfn = cloud.client("stepfunctions")
        rollout = sfn.start_execution(stateMachineArn=cloud.resource("RolloutStateMachine"), input="{}")
        expiry = sfn.start_execution(stateMachineArn=cloud.resource("ApprovalExpiryStateMachine"), input="{}")
        decide = _session_of(cloud, "DecideFunction").client("stepfunctions")

        # When it reads each execution's history, and describes each
        decide.get_execution_history(executionArn=rollout["executionArn"], maxResults=1)
        with pytest.raises(ClientError) as history:
            decide.get_execution_history(executionArn=expiry["executionArn"], maxResults=1)
        with pytest.raises(ClientError) as described:
            decide.describe_execution(executionArn=expiry["executionArn"])

        # Then IAM lets it read the rollout's and refuses the other state machine's, by the ARN named
        assert history.value.response["Error"]["Code"] == "AccessDeniedException"
        assert history.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert f"on resource: {expiry['executionArn']}" in history.value.response["Error"]["Message"]
        assert described.value.response["Error"]["Code"] == "AccessDeniedException"
        denied = {action for _, action in _roles(cloud).denied}
        assert denied == {"states:GetExecutionHistory", "states:DescribeExecution"}


def test_dynamodb_calls_are_checked_against_the_table_they_name() -> None:
    # Given the platform, IAM enforced, and ColorFunction's role, granted GetItem and UpdateItem on
    # the state table only (template.yaml)
    with LocalCloud(parameters=QUIET) as cloud:
        color = _session_of(cloud, "ColorFunction").client("dynamodb")
        key = {"pk": {"S": "APP#hello-app"}, "sk": {"S": "RELEASE#CURRENT"}}

        # When it reads an item of the state table, and one of the idempotency table
        color.get_item(TableName=cloud.output("StateTableName"), Key=key)
        with pytest.raises(ClientError) as other:
            color.get_item(TableName=cloud.resource("IdempotencyTable"), Key={"id": {"S": "x"}})

        # Then IAM refuses the table it holds no grant on, by its ARN
        assert other.value.response["Error"]["Code"] == "AccessDeniedException"
        table = (
            f"arn:aws:dynamodb:{cloud.region}:{cloud.account_id}:table/{cloud.resource('IdempotencyTable')}"
        )
        assert f"on resource: {table}" in other.value.response["Error"]["Message"]
        assert {action for _, action in _roles(cloud).denied} == {"dynamodb:GetItem"}


def test_parameter_and_secret_calls_are_checked_against_what_they_name() -> None:
    # Given the platform, IAM enforced, a parameter of the registry and one elsewhere, and a role
    # that may read the registry's parameters and the approval signing key only
    with LocalCloud(parameters=QUIET) as cloud:
        ssm = cloud.client("ssm")
        for name in ("/canaryfleet/apps/hello-app", "/elsewhere/db-password"):
            ssm.put_parameter(Name=name, Value="{}", Type="String", Overwrite=True)
        prefix = f"arn:aws:ssm:{cloud.region}:{cloud.account_id}:parameter"
        key = cloud.resource("ApprovalSigningKey")
        reader = _role_granting(cloud, "registry-reader", "ssm:GetParameter", f"{prefix}/canaryfleet/apps/*")
        signer = _role_granting(cloud, "key-reader", "secretsmanager:GetSecretValue", key)

        # When each reads what it may, and something else
        reader.client("ssm").get_parameter(Name="/canaryfleet/apps/hello-app")
        with pytest.raises(ClientError) as parameter:
            reader.client("ssm").get_parameter(Name="/elsewhere/db-password")
        signer.client("secretsmanager").get_secret_value(SecretId=key)
        with pytest.raises(ClientError) as secret:
            signer.client("secretsmanager").get_secret_value(SecretId=cloud.resource("SlackAppSecret"))

        # Then IAM refuses the others, by the parameter's and the secret's ARNs
        assert parameter.value.response["Error"]["Code"] == "AccessDeniedException"
        assert f"on resource: {prefix}/elsewhere/db-password" in str(parameter.value)
        assert secret.value.response["Error"]["Code"] == "AccessDeniedException"
        assert {action for _, action in _roles(cloud).denied} == {
            "ssm:GetParameter",
            "secretsmanager:GetSecretValue",
        }


def test_topic_calls_are_checked_against_the_topic_they_name() -> None:
    # Given the platform, IAM enforced, and a role that may publish to the approval email topic only
    with LocalCloud(parameters=QUIET) as cloud:
        topic = cloud.resource("ApprovalEmailTopic")
        other = cloud.client("sns").create_topic(Name="elsewhere")["TopicArn"]
        publisher = _role_granting(cloud, "publisher", "sns:Publish", topic).client("sns")

        # When it publishes to that topic, and to another
        publisher.publish(TopicArn=topic, Message="approval asked")
        with pytest.raises(ClientError) as refused:
            publisher.publish(TopicArn=other, Message="not mine")

        # Then IAM refuses the other one, as SNS says so: AuthorizationError, HTTP 403
        assert refused.value.response["Error"]["Code"] == "AuthorizationError"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert f"on resource: {other}" in refused.value.response["Error"]["Message"]
        assert {action for _, action in _roles(cloud).denied} == {"sns:Publish"}
