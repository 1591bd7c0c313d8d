"""Each function's role grants exactly the actions its code needs: no more, no fewer.

The grants come from template.yaml as CloudFormation will see it (transformed by
aws-sam-translator, so SAM policy templates are expanded); the needs are the table below,
written by reading each handler down through `logic/` to the boto3 calls in `adapters/`.
A new boto3 call needs a line here and a grant in the template; a grant nobody calls
fails until it is removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from canaryfleet_local.template import DEFAULT_TEMPLATE, prepare
from tests.unit.iam_actions import WITHOUT_RESOURCE_LEVEL

# DynamoDB actions on the state table, by the store methods that make them:
# GetItem: get, lock, version_status, last_good, deployment_for, approvals.get, drains.get/owner
# PutItem: create, decide_version, set_last_good, remember_deployment, approvals.create,
#          drains.create; and the Puts of enqueue's and hand_lock_to's TransactWriteItems
# UpdateItem: update, set_wait, turn_delivered, clear_wait, set_window_waits, add_window_override,
#             append_audit, log_weight, record_stage, the approval claim/finish/settle, every drain
#             state change
# DeleteItem: release_lock, drop_from_queue; and the Delete of hand_lock_to's transaction
# Query: queue_head, queue_length, rollouts_in_progress, deployments_of, the freeze calendar's freezes
# (A transaction is authorised by the actions of its parts: there is no TransactWriteItems grant.)

NEEDED: dict[str, frozenset[str]] = {
    # start_rollout: store.get/version_status/rollouts_in_progress/create/update/enqueue, S3 range reads and
    # head_object of the exact object version, registry.get, register_revision,
    # StartExecution, the rejection notice, and the approvers' email subscriptions.
    "StartRolloutFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListBucket",  # a deleted object reads NoSuchKey (a rejection), not AccessDenied
            "ssm:GetParameter",
            "codedeploy:RegisterApplicationRevision",
            "states:StartExecution",
            "sns:Publish",
            "sns:Subscribe",
            "sns:ListSubscriptionsByTopic",
        }
    ),
    # record_stage: store.record_stage, notifier.publish.
    "RecordStageFunction": frozenset({"dynamodb:UpdateItem", "sns:Publish"}),
    # queue_rollout: attach_queue_token, take_turn (lock, release_lock, queue_head,
    # drop_from_queue, hand_lock_to, DescribeExecution of the owner, SendTaskSuccess,
    # turn_delivered), queue_length.
    "QueueRolloutFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "states:DescribeExecution",
            "states:SendTaskSuccess",
        }
    ),
    # release_turn: release_lock, then take_turn as above (no UpdateItem).
    # release_turn, and a recovery's take-over: transfer_lock, clear_wait of the stopped
    # execution's wait (StartExecution of the approval expiry machine when it was an approval's),
    # and, for a rollout stopped while queued, record_rollback (decide_version, record_outcome);
    # a blue/green rollout stopped before it chose its colors: the listener rule's weights.
    "ReleaseTurnFunction": frozenset(
        {
            "elasticloadbalancing:DescribeRules",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "states:DescribeExecution",
            "states:SendTaskSuccess",
            "states:StartExecution",
        }
    ),
    # start_deployment: deployment_for, CreateDeployment, remember_deployment, set_wait (an
    # abort fails the token), attach_deployment_token, GetDeployment once (a deployment that
    # ended before its id was recorded) with record_deployment_outcome, and the token's end if
    # the deployment ended first. A group busy on CreateDeployment: ListDeployments and
    # GetDeployment (the deployment a failed attempt created). CreateDeployment is also
    # authorised against the revision (GetApplicationRevision) and the deployment config
    # (GetDeploymentConfig) on AWS.
    "DeployFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "codedeploy:CreateDeployment",
            "codedeploy:GetDeployment",
            "codedeploy:ListDeployments",
            "codedeploy:GetApplicationRevision",
            "codedeploy:GetDeploymentConfig",
            # A restore's overrideAlarmConfiguration is authorised as UpdateDeploymentGroup; a
            # deployment first reads its group's alarms (it waits while one is in ALARM).
            "codedeploy:UpdateDeploymentGroup",
            "cloudwatch:DescribeAlarms",
            "states:SendTaskSuccess",
            "states:SendTaskFailure",
        }
    ),
    # on_deployment_event: GetDeployment (the failure's message), record_deployment_outcome,
    # and the waiting token's end.
    # recover: the ended execution's input (DescribeExecution) and its end's error and cause
    # (GetExecutionHistory), then StartExecution of the recovery. The sweep: the registry
    # (GetParametersByPath), each lock (GetItem) and its owner (DescribeExecution), recover as
    # above, or release_turn (release_lock, queue_head, hand_lock_to's Put and Delete, the next
    # rollout's SendTaskSuccess, turn_delivered), or a running owner's turn given again.
    "ExecutionEndedFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "ssm:GetParametersByPath",
            "states:DescribeExecution",
            "states:GetExecutionHistory",
            "states:SendTaskSuccess",
            "states:StartExecution",
        }
    ),
    "DeploymentEventFunction": frozenset(
        {
            "dynamodb:GetItem",  # knows_deployment: events of deployments canaryfleet did not create
            "dynamodb:UpdateItem",
            "codedeploy:GetDeployment",
            "states:SendTaskSuccess",
            "states:SendTaskFailure",
        }
    ),
    # check_after_timeout: deployment_for, GetDeployment, StopDeployment.
    "CheckDeploymentFunction": frozenset(
        {"dynamodb:GetItem", "codedeploy:GetDeployment", "codedeploy:StopDeployment"}
    ),
    # verify_canary: DescribeTargetHealth only (it has no store).
    "VerifyCanaryFunction": frozenset({"elasticloadbalancing:DescribeTargetHealth"}),
    # color: live_color, the lock and the newer rollout's record (scale-down's guard); set_colors;
    # each color's capacity (the group and its failed launches) and SetDesiredCapacity.
    "ColorFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeScalingActivities",
            "autoscaling:SetDesiredCapacity",
            "elasticloadbalancing:DescribeRules",  # the rule's weights: which color takes requests
        }
    ),
    # shift_traffic: read the rule, modify it, read it back; log_weight; the traffic-shifted
    # stage (record_stage and its notice). The adapter also reads and modifies a listener's
    # default action when a registry entry names a listener, but no registry entry does: the
    # fleet stack writes its own rule's ARN, and the role refuses a listener by design (the
    # listener is the platform team's: fleet/README.md).
    "ShiftTrafficFunction": frozenset(
        {
            "dynamodb:GetItem",  # an abort asked for holds a shift toward the build
            "dynamodb:UpdateItem",
            "elasticloadbalancing:DescribeRules",
            "elasticloadbalancing:ModifyRule",
            "sns:Publish",
        }
    ),
    # begin_bake: the fail-fast alarms (DescribeAlarms by prefix, DeleteAlarms, PutMetricAlarm),
    # an extension's store.get (where its bake's window began), set_wait (abort fails, promote
    # succeeds the token), DescribeAlarms, and an alarm already firing fails the token.
    "BakeFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:DeleteAlarms",
            "states:SendTaskSuccess",
            "states:SendTaskFailure",
        }
    ),
    # check_alarms: the canary's and the bake's fail-fast alarms in ALARM (DescribeAlarms); nothing
    # else: an alarm found fails the Task itself.
    "CheckAlarmsFunction": frozenset({"cloudwatch:DescribeAlarms"}),
    # check_window: store.get, the freeze calendar (Query), set_window_waits and clear_wait.
    "CheckWindowFunction": frozenset({"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"}),
    # hold_for_window: set_wait, the freeze calendar (Query); an abort fails the token, an
    # override or a calendar changed since the check succeeds it; before going live a canary
    # alarm in ALARM (DescribeAlarms) fails it and clears the wait.
    "HoldForWindowFunction": frozenset(
        {
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "cloudwatch:DescribeAlarms",
            "states:SendTaskSuccess",
            "states:SendTaskFailure",
        }
    ),
    # on_alarm: registry.all (GetParametersByPath), lock, append_audit, get, and the bake's or
    # the approval's token fails (an approval's wait is then cleared, and the approval settled at
    # once by a run of the expiry machine); Powertools idempotency puts, updates and deletes its
    # record.
    "AlarmEventFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "ssm:GetParametersByPath",
            "states:SendTaskFailure",
            "states:StartExecution",
        }
    ),
    # analyse: the fail-fast alarms deleted (DescribeAlarms by prefix, DeleteAlarms), get,
    # GetMetricData (canary and live), the canary alarms' thresholds, update, the verdict stage
    # and notice.
    "AnalyseFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "cloudwatch:GetMetricData",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:DeleteAlarms",
            "sns:Publish",
        }
    ),
    # request_approval: get, set_wait, approvals.create/get/set_slack_message/mark_emails_sent,
    # the awaiting-approval stage and notice, the expiry execution, the signing key and Slack
    # secret, and the approvers' email subscriptions and messages; a canary alarm already in
    # ALARM (DescribeAlarms) fails the token and clears the wait.
    "RequestApprovalFunction": frozenset(
        {
            "cloudwatch:DescribeAlarms",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "sns:Publish",
            "sns:Subscribe",
            "sns:ListSubscriptionsByTopic",
            "states:StartExecution",
            "states:SendTaskSuccess",
            "states:SendTaskFailure",
            "secretsmanager:GetSecretValue",
        }
    ),
    # decide: lock, get, clear_wait/update/append_audit, and the wait's token.
    "DecideFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "states:SendTaskSuccess",
            "states:SendTaskFailure",
            # an approve or reject refused while "Wait for approval" is retried (keep_for_retry)
            "states:DescribeExecution",
            "states:GetExecutionHistory",
            "secretsmanager:GetSecretValue",  # settling the approval it ended (its Slack message)
            "sns:Publish",  # announcing a window override (logic/window.py: announce_override)
        }
    ),
    # finalize: the fail-fast alarms deleted, set_last_good, decide_version (puts), update.
    "FinalizeFunction": frozenset(
        {"dynamodb:PutItem", "dynamodb:UpdateItem", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"}
    ),
    # roll_back: the fail-fast alarms deleted, deployments_of, GetDeployment and StopDeployment
    # of unfinished ones, decide_version, update, last_good.
    "RecordRollbackFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "codedeploy:GetDeployment",
            "codedeploy:StopDeployment",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:DeleteAlarms",
        }
    ),
    # The rotation's four steps: DescribeSecret, GetSecretValue, PutSecretValue,
    # UpdateSecretVersionStage.
    "RotateSigningKeyFunction": frozenset(
        {
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:UpdateSecretVersionStage",
        }
    ),
    # The approval page: the signing key and Slack secret, approvals get/claim/finish/settle,
    # decide (lock, get, updates, the wait's token), and how a wait already closed ended
    # (the gate's CallbackHistory: DescribeExecution, GetExecutionHistory).
    "ApprovalPageFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "states:SendTaskSuccess",
            "states:SendTaskFailure",
            "states:DescribeExecution",
            "states:GetExecutionHistory",
            "secretsmanager:GetSecretValue",
        }
    ),
    # Slack's requests: as the page, plus registry.get for /canaryfleet abort and promote, and
    # put_item to record each signed request once (a replay is refused).
    "SlackInteractionsFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "states:SendTaskSuccess",
            "states:SendTaskFailure",
            "states:DescribeExecution",
            "states:GetExecutionHistory",
            "secretsmanager:GetSecretValue",
            "ssm:GetParameter",
        }
    ),
    # expire: approvals get/settle, the rollout record, append_audit and the record's missing
    # writes, the Slack secret, and whether a dead answer's claim ended the wait (CallbackHistory).
    "ExpireApprovalFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "states:DescribeExecution",
            "states:GetExecutionHistory",
            "secretsmanager:GetSecretValue",
        }
    ),
    # notify: the SLACK# thread item and the rollout record (state table), Powertools
    # idempotency records (idempotency table), registry.get, the Slack secret, the approvers'
    # subscriptions and emails. The SQS actions are the event source mapping's, which polls
    # with this role.
    "NotifyFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "ssm:GetParameter",
            "secretsmanager:GetSecretValue",
            "sns:Publish",
            "sns:Subscribe",
            "sns:ListSubscriptionsByTopic",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        }
    ),
    # request_drain: DescribeTags, registry.get, the drain record (create, owner, join, marks),
    # the rollout lock (a canary's interruption), DeregisterTargets and the group's deregistration
    # delay (DescribeTargetGroupAttributes), SendMessage to the drain queue, and
    # CompleteLifecycleAction of a hook that came after its drain ended.
    "DrainRequestFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "ec2:DescribeTags",
            "ssm:GetParameter",
            "elasticloadbalancing:DeregisterTargets",
            "elasticloadbalancing:DescribeTargetGroupAttributes",
            "sqs:SendMessage",
            "autoscaling:CompleteLifecycleAction",
        }
    ),
    # dispatch_drains: claim/release/record_command, SendCommand, the hook's heartbeat once the
    # command is sent, and for an unreachable
    # instance finish_drain (finish, CompleteLifecycleAction, the drain notice); a failed
    # order's visibility shortened (ChangeMessageVisibilityBatch, authorised by
    # sqs:ChangeMessageVisibility). SQS: the event source
    # mapping's polling, as for notify.
    "DrainDispatchFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "ssm:SendCommand",
            "autoscaling:CompleteLifecycleAction",
            "autoscaling:RecordLifecycleActionHeartbeat",
            "sns:Publish",
            # each command's check: queued (SendMessage), then the status and the completion's reads
            "sqs:SendMessage",
            "ssm:GetCommandInvocation",
            "s3:GetObject",
            "s3:ListBucket",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility",
        }
    ),
    # complete_drain: find, the manifest and each log's head_object (s3:GetObject; ListBucket
    # so that a missing object reads NoSuchKey), one retry (heartbeat, SendCommand), and
    # finish_drain (CompleteLifecycleAction, the drain notice); a run told "Delivery Timed Out"
    # read (GetCommandInvocation) and, still going, its hook renewed and its look queued.
    "DrainCompleteFunction": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "s3:GetObject",
            "s3:ListBucket",
            "ssm:SendCommand",
            "autoscaling:CompleteLifecycleAction",
            "autoscaling:RecordLifecycleActionHeartbeat",
            "sns:Publish",
            "sqs:SendMessage",  # a retry's check, a late run's look
            "ssm:GetCommandInvocation",
        }
    ),
}

# Granted, not needed, and kept on purpose: each with the reason. An entry no longer granted
# fails, so that this list only shrinks.
KNOWN_EXTRA: dict[str, frozenset[str]] = {
    # SQSPollerPolicy (pinned by test_drain_template.py, which checks the dispatcher's role
    # names only its own queue) also names the batch actions, which SQS authorises by their
    # single-message actions (ChangeMessageVisibilityBatch by sqs:ChangeMessageVisibility: the
    # SQS Developer Guide's "API permissions" reference): granted, never what a call needs.
    "DrainDispatchFunction": frozenset({"sqs:ChangeMessageVisibilityBatch", "sqs:DeleteMessageBatch"}),
}

# What SAM attaches for every function: CloudWatch Logs (basic execution) and, with
# `Tracing: Active`, X-Ray segments.
MANAGED_POLICIES = frozenset(
    {
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    }
)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(cloudformation: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    """The Allow statements of the inline policies of the function's role."""
    resources = cloudformation["Resources"]
    role_ref = resources[function_id]["Properties"]["Role"]
    role_id = role_ref["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in resources[role_id]["Properties"].get("Policies", []):
        for statement in _as_list(policy["PolicyDocument"]["Statement"]):
            assert statement["Effect"] == "Allow", f"{function_id}: unexpected {statement}"
            statements.append(statement)
    return statements


def granted_actions(cloudformation: dict[str, Any], function_id: str) -> set[str]:
    return {action for s in role_statements(cloudformation, function_id) for action in _as_list(s["Action"])}


def managed_policies(cloudformation: dict[str, Any], function_id: str) -> set[str]:
    resources = cloudformation["Resources"]
    role_id = resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return set(resources[role_id]["Properties"].get("ManagedPolicyArns", []))


def _transformed(template: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    # aws-sam-translator resolves pseudo parameters from the region of the environment.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return prepare(template, "canaryfleet-code").cloudformation


@pytest.fixture(scope="module")
def platform() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _transformed(DEFAULT_TEMPLATE, monkeypatch)


def _functions(cloudformation: dict[str, Any]) -> set[str]:
    return {
        logical_id
        for logical_id, resource in cloudformation["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


def test_every_function_of_the_template_has_its_needs_declared(platform: dict[str, Any]) -> None:
    assert _functions(platform) == set(NEEDED)


def lambda_service_needs(cloudformation: dict[str, Any], function_id: str) -> set[str]:
    """What Lambda itself does with the function's role: send failed async events to its DLQ."""
    properties = cloudformation["Resources"][function_id]["Properties"]
    return {"sqs:SendMessage"} if "DeadLetterConfig" in properties else set()


@pytest.mark.parametrize("function_id", sorted(NEEDED))
def test_role_grants_exactly_what_the_code_needs(platform: dict[str, Any], function_id: str) -> None:
    granted = granted_actions(platform, function_id)
    needed = NEEDED[function_id] | lambda_service_needs(platform, function_id)
    extra = KNOWN_EXTRA.get(function_id, frozenset())
    assert sorted(granted - needed - extra) == [], "granted but never called"
    assert sorted(needed - granted) == [], "called but not granted"
    assert sorted(extra - granted) == [], "no longer granted: take it out of KNOWN_EXTRA"


@pytest.mark.parametrize("function_id", sorted(NEEDED))
def test_role_attaches_only_logging_and_tracing_managed_policies(
    platform: dict[str, Any], function_id: str
) -> None:
    assert managed_policies(platform, function_id) == MANAGED_POLICIES


@pytest.mark.parametrize("function_id", sorted(NEEDED))
def test_only_actions_without_resource_level_permissions_are_granted_on_every_resource(
    platform: dict[str, Any], function_id: str
) -> None:
    on_everything = {
        action
        for statement in role_statements(platform, function_id)
        if "*" in _as_list(statement["Resource"])
        for action in _as_list(statement["Action"])
    }
    assert sorted(on_everything - WITHOUT_RESOURCE_LEVEL) == []


def test_a_sam_policy_template_is_expanded_to_everything_it_grants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function whose role takes DynamoDBCrudPolicy
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return None\n")
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Table:\n"
        "    Type: AWS::DynamoDB::Table\n"
        "    Properties:\n"
        "      BillingMode: PAY_PER_REQUEST\n"
        "      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]\n"
        "      KeySchema: [{AttributeName: pk, KeyType: HASH}]\n"
        "  ReaderFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: fn/\n"
        "      Handler: app.handler\n"
        "      Runtime: python3.13\n"
        "      Policies:\n"
        "        - DynamoDBCrudPolicy:\n"
        "            TableName: !Ref Table\n"
    )

    # When its grants are derived
    granted = granted_actions(_transformed(tmp_path / "template.yaml", monkeypatch), "ReaderFunction")

    # Then they hold what the template grants beyond a reader's GetItem: this table would fail it
    assert {"dynamodb:GetItem", "dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} <= granted
    assert granted - {"dynamodb:GetItem"}


# --- actions on an application's fleet: scoped by the fleet stack's tag --------------------------

# The key the fleet stack (fleet/template.yaml) tags its listener rule, target groups, Auto Scaling
# groups and, through them, its instances with; test_template.py holds the two templates to it.
FLEET_TAG_KEY = "canaryfleet:application"

_ARN = r"arn:aws:{service}:us-east-1:\d{{12}}:{resource}"


@dataclass(frozen=True)
class ResourceType:
    """A resource type as the Service Authorization Reference defines it: its ARN, the
    condition keys it supports, and whether the fleet stack tags the resources of it."""

    name: str
    arn: re.Pattern[str]
    tag_keys: frozenset[str]  # the tag condition-key prefixes the type supports
    fleet_tagged: bool


def _type(name: str, service: str, resource: str, tag_keys: set[str], *, fleet_tagged: bool) -> ResourceType:
    return ResourceType(
        name, re.compile(_ARN.format(service=service, resource=resource)), frozenset(tag_keys), fleet_tagged
    )


# From the Service Authorization Reference (docs.aws.amazon.com/service-authorization/latest/reference/):
# "Actions, resources, and condition keys for" Elastic Load Balancing V2, Amazon EC2 Auto Scaling
# and AWS Systems Manager: the resource types each action is authorised on, and the condition keys
# each type supports. A statement that conditions a resource on a key its type lacks never matches.
_RULE = _type(
    "listener-rule/app",
    "elasticloadbalancing",
    r"listener-rule/app/.+",
    {"aws:ResourceTag/", "elasticloadbalancing:ResourceTag/"},
    fleet_tagged=True,
)
_TARGET_GROUP = _type(
    "targetgroup",
    "elasticloadbalancing",
    r"targetgroup/.+",
    {"aws:ResourceTag/", "elasticloadbalancing:ResourceTag/"},
    fleet_tagged=True,
)
_GROUP = _type(
    "autoScalingGroup",
    "autoscaling",
    r"autoScalingGroup:.+:autoScalingGroupName/.+",
    {"aws:ResourceTag/", "autoscaling:ResourceTag/"},
    fleet_tagged=True,
)
# The drain document is the platform's own, not the fleet's: named by its ARN, never by a wildcard.
_DOCUMENT = _type(
    "document", "ssm", r"document/[^*]+", {"aws:ResourceTag/", "ssm:resourceTag/"}, fleet_tagged=False
)
_INSTANCE = _type(
    "instance", "ec2", r"instance/.+", {"aws:ResourceTag/", "ssm:resourceTag/"}, fleet_tagged=True
)

# ModifyRule takes only the rule (listener-rule/app*, listener-rule/net*), not the target groups
# its actions forward to; SendCommand takes the document and each instance (and an output bucket,
# which the drain does not pass).
FLEET_ACTIONS: dict[str, tuple[ResourceType, ...]] = {
    "elasticloadbalancing:ModifyRule": (_RULE,),
    "elasticloadbalancing:DeregisterTargets": (_TARGET_GROUP,),
    "autoscaling:CompleteLifecycleAction": (_GROUP,),
    "autoscaling:RecordLifecycleActionHeartbeat": (_GROUP,),
    "ssm:SendCommand": (_DOCUMENT, _INSTANCE),
}


def _resource_arn(resource: Any) -> str:
    """The ARN a Resource element names, pseudo parameters and references filled in."""
    text = resource["Fn::Sub"] if isinstance(resource, dict) else resource
    assert isinstance(text, str), f"unexpected Resource {resource}"
    for name, value in (
        ("AWS::Partition", "aws"),
        ("AWS::Region", "us-east-1"),
        ("AWS::AccountId", "123456789012"),
    ):
        text = text.replace("${" + name + "}", value)
    return re.sub(r"\$\{([A-Za-z0-9]+)\}", r"\1", text)


def _tag_condition_keys(statement: dict[str, Any]) -> set[str]:
    return {
        key
        for operands in statement.get("Condition", {}).values()
        for key in operands
        if "ResourceTag/" in key or "resourceTag/" in key
    }


def scope_problems(statement: dict[str, Any]) -> list[str]:
    """Why a statement granting a fleet action is not scoped to the fleet's own resources, or
    could never match; empty when it is valid and scoped."""
    problems: list[str] = []
    actions = [a for a in _as_list(statement["Action"]) if a in FLEET_ACTIONS]
    tag_keys = _tag_condition_keys(statement)
    for action in actions:
        for resource in _as_list(statement["Resource"]):
            arn = _resource_arn(resource)
            kinds = [k for k in FLEET_ACTIONS[action] if k.arn.fullmatch(arn)]
            if not kinds:
                problems.append(f"{action} on {arn}: not a resource type the action is authorised on")
                continue
            (kind,) = kinds
            if not kind.fleet_tagged:
                if tag_keys:
                    problems.append(f"{action} on {arn}: the {kind.name} carries no fleet tag to match")
                continue
            if not tag_keys:
                problems.append(f"{action} on {arn}: no tag condition, so every {kind.name} in the account")
            for key in sorted(tag_keys):
                prefix, _, tag = key.partition("/")
                if f"{prefix}/" not in kind.tag_keys:
                    problems.append(f"{action} on {arn}: a {kind.name} has no {prefix}/ condition key")
                elif tag != FLEET_TAG_KEY:
                    problems.append(f"{action} on {arn}: tag {tag} is not the fleet's {FLEET_TAG_KEY}")
    return problems


@pytest.mark.parametrize("function_id", sorted(NEEDED))
def test_actions_on_fleet_resources_reach_only_what_the_fleet_stack_tagged(
    platform: dict[str, Any], function_id: str
) -> None:
    problems = [p for s in role_statements(platform, function_id) for p in scope_problems(s)]

    assert problems == []


@pytest.mark.parametrize(
    ("function_id", "action"),
    sorted((f, a) for f, needs in NEEDED.items() for a in needs if a in FLEET_ACTIONS),
)
def test_each_fleet_action_is_granted_on_every_resource_type_it_takes(
    platform: dict[str, Any], function_id: str, action: str
) -> None:
    # Given the statements of the function's role that grant the action
    statements = [s for s in role_statements(platform, function_id) if action in _as_list(s["Action"])]

    # When their resources are sorted by resource type
    covered = {
        kind.name
        for s in statements
        for resource in _as_list(s["Resource"])
        for kind in FLEET_ACTIONS[action]
        if kind.arn.fullmatch(_resource_arn(resource))
    }

    # Then each type the action is authorised on has its grant (SendCommand: document and instances)
    assert covered == {kind.name for kind in FLEET_ACTIONS[action]}


_DOC_ARN = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/${DrainDocument}"
_INSTANCES = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"
_RULES = "arn:${AWS::Partition}:elasticloadbalancing:${AWS::Region}:${AWS::AccountId}:listener-rule/app/*"
_TAGGED = {"StringLike": {f"ssm:resourceTag/{FLEET_TAG_KEY}": "?*"}}


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        # the document and the instances under one tag condition: the document is never tagged
        (
            {
                "Action": "ssm:SendCommand",
                "Resource": [{"Fn::Sub": _DOC_ARN}, {"Fn::Sub": _INSTANCES}],
                "Condition": _TAGGED,
            },
            "the document carries no fleet tag",
        ),
        ({"Action": "ssm:SendCommand", "Resource": {"Fn::Sub": _INSTANCES}}, "no tag condition"),
        ({"Action": "elasticloadbalancing:ModifyRule", "Resource": "*"}, "not a resource type"),
        (
            {
                "Action": "elasticloadbalancing:ModifyRule",
                "Resource": {"Fn::Sub": _RULES},
                "Condition": {"StringLike": {f"autoscaling:ResourceTag/{FLEET_TAG_KEY}": "?*"}},
            },
            "a listener-rule/app has no autoscaling:ResourceTag/ condition key",
        ),
        (
            {
                "Action": "elasticloadbalancing:ModifyRule",
                "Resource": {"Fn::Sub": _RULES},
                "Condition": {"StringLike": {"elasticloadbalancing:ResourceTag/application": "?*"}},
            },
            "tag application is not the fleet's",
        ),
    ],
)
def test_a_statement_unscoped_or_that_could_never_match_is_caught(
    statement: dict[str, Any], problem: str
) -> None:
    # Given a statement granting a fleet action as it must not be written
    # When it is checked
    problems = scope_problems({"Effect": "Allow", **statement})

    # Then the check names what is wrong with it
    assert any(problem in p for p in problems), problems
