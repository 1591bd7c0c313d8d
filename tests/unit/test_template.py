"""What template.yaml promises, read from the template itself."""

import ast
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from canaryfleet.adapters.idempotency import REMEMBER_SECONDS

from canaryfleet_local.parsing import parse_template
from tests.helpers import FUNCTIONS, REPO
from tests.unit.iam_actions import WITHOUT_RESOURCE_LEVEL

TEMPLATE: dict[str, Any] = parse_template((REPO / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTION_RESOURCES = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}


@pytest.mark.parametrize("bucket", ["ArtifactBucket", "LogBucket"])
def test_buckets_are_versioned_encrypted_private_and_tls_only(bucket: str) -> None:
    props = RESOURCES[bucket]["Properties"]
    policy = next(
        r["Properties"]["PolicyDocument"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket}
    )

    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert {
        "Effect": "Deny",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }.items() <= policy["Statement"][0].items()


def test_the_artifact_bucket_refuses_uploads_encrypted_so_the_fleet_cannot_read_them() -> None:
    # The instance role and StartRolloutFunction hold no kms:Decrypt and no SSE-C key: an upload
    # with --sse aws:kms (or aws:kms:dsse) or an SSE-C key is denied; none, or AES256, is not.
    policy = RESOURCES["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]
    denied = {
        s["Sid"]: s for s in policy["Statement"] if s["Effect"] == "Deny" and s["Action"] == "s3:PutObject"
    }

    kms = denied["DenyEncryptionTheFleetCannotRead"]["Condition"]
    assert kms == {
        "Null": {"s3:x-amz-server-side-encryption": "false"},
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"},
    }
    customer = denied["DenyCustomerProvidedKeys"]["Condition"]
    assert customer == {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}}
    assert RESOURCES["ArtifactBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][
        0
    ]["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_the_artifact_bucket_sends_its_events_to_eventbridge() -> None:
    config = RESOURCES["ArtifactBucket"]["Properties"]["NotificationConfiguration"]

    assert config["EventBridgeConfiguration"]["EventBridgeEnabled"] is True


def test_functions_run_python_313_on_arm64_with_tracing_and_the_runtime_layer() -> None:
    globals_ = TEMPLATE["Globals"]["Function"]

    assert (globals_["Runtime"], globals_["Architectures"], globals_["Tracing"]) == (
        "python3.13",
        ["arm64"],
        "Active",
    )
    assert {"Ref": "RuntimeLayer"} in globals_["Layers"]
    assert RESOURCES["RuntimeLayer"]["Metadata"]["BuildMethod"] == "python3.13"


@pytest.mark.parametrize("logical_id", sorted(FUNCTION_RESOURCES))
def test_each_function_names_its_service_and_has_its_own_policies(logical_id: str) -> None:
    props = FUNCTION_RESOURCES[logical_id]["Properties"]

    assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert "Role" not in props, "a shared role would grant every function the others' permissions"
    assert props["Policies"]


@pytest.mark.parametrize("logical_id", sorted(FUNCTION_RESOURCES))
def test_each_handler_file_holds_only_its_decorated_entry_point(logical_id: str) -> None:
    props = FUNCTION_RESOURCES[logical_id]["Properties"]
    module, _, handler = props["Handler"].rpartition(".")
    source = (REPO / props["CodeUri"] / f"{module}.py").resolve()
    tree = ast.parse(source.read_text())

    definitions = [
        n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
    ]
    assert [d.name for d in definitions] == [handler]
    entry = definitions[0]
    assert isinstance(entry, ast.FunctionDef) and entry.decorator_list
    assert len(entry.body) <= 6, "domain logic belongs in the canaryfleet package"
    assert source.parent.parent == FUNCTIONS


def test_no_wildcard_actions_and_no_wildcard_resources_beyond_what_iam_requires() -> None:
    for logical_id, resource in RESOURCES.items():
        for policy in resource.get("Properties", {}).get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                assert not any(a.endswith(":*") or a == "*" for a in actions), logical_id
                if statement.get("Resource") == "*":
                    assert all(a.startswith("logs:") or a in WITHOUT_RESOURCE_LEVEL for a in actions), (
                        logical_id,
                        actions,
                    )


# Actions on an application's own resources, which the fleet stack creates and tags: each is
# granted only under a condition on that tag (the Service Authorization Reference entry for each
# is cited beside its statement; test_least_privilege.py checks the resource types and keys).
FLEET_ACTIONS = {
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:DeregisterTargets",
    "autoscaling:CompleteLifecycleAction",
    "autoscaling:RecordLifecycleActionHeartbeat",
    "ssm:SendCommand",
}
FLEET: dict[str, Any] = parse_template((REPO / "fleet" / "template.yaml").read_text())


def _statements_granting(actions: set[str]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (logical_id, statement)
        for logical_id, function in FUNCTION_RESOURCES.items()
        for policy in function["Properties"]["Policies"]
        for statement in (policy.get("Statement", []) if isinstance(policy, dict) else [])
        if actions
        & set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    ]


def _resources(statement: dict[str, Any]) -> list[str]:
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return [r["Fn::Sub"] if isinstance(r, dict) else r for r in resources]


def _tagged_keys(statement: dict[str, Any]) -> set[str]:
    """The tag keys a statement's conditions test on the resource."""
    return {
        key.partition("/")[2]
        for operands in statement.get("Condition", {}).values()
        for key in operands
        if key.partition("/")[0].endswith(("ResourceTag", "resourceTag"))
    }


def test_actions_on_fleet_resources_are_never_granted_on_everything_nor_without_a_tag_condition() -> None:
    # Given every statement that grants an action on an application's fleet
    statements = _statements_granting(FLEET_ACTIONS)
    assert {logical_id for logical_id, _ in statements} == {
        "ShiftTrafficFunction",
        "DrainRequestFunction",
        "DrainDispatchFunction",
        "DrainCompleteFunction",
    }

    for logical_id, statement in statements:
        resources = _resources(statement)
        # Then none is on "*", and each is either the platform's own drain document by its ARN, or
        # fleet resources under a tag condition (never both in one: the document is not tagged)
        assert "*" not in resources, logical_id
        documents = [r for r in resources if ":document/" in r]
        if documents:
            assert (
                documents
                == resources
                == ["arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/${DrainDocument}"]
            ), logical_id
            assert _tagged_keys(statement) == set(), logical_id
        else:
            assert _tagged_keys(statement), (logical_id, statement)


def test_the_tag_the_roles_require_is_the_one_the_fleet_stack_puts_on_what_they_act_on() -> None:
    # Given the tag keys that the platform's conditions require
    (key,) = {k for _, s in _statements_granting(FLEET_ACTIONS) for k in _tagged_keys(s)}

    # When the fleet stack's rule, target groups and Auto Scaling groups are read
    fleet = FLEET["Resources"]
    tagged = {
        logical_id: {tag["Key"]: tag for tag in fleet[logical_id]["Properties"]["Tags"]}
        for logical_id in (
            "ListenerRule",
            "CanaryTargetGroup",
            "LiveTargetGroup",
            "CanaryAutoScalingGroup",
            "LiveAutoScalingGroup",
        )
    }

    # Then each carries that key with the application's name, and the groups give it to their instances
    assert key == "canaryfleet:application"
    for logical_id, tags in tagged.items():
        assert tags.get(key, {}).get("Value") == {"Ref": "Application"}, logical_id
    assert all(tagged[g][key]["PropagateAtLaunch"] is True for g in tagged if g.endswith("AutoScalingGroup"))


def test_the_dashboard_shows_rollouts_stages_and_drains_and_points_to_each_applications() -> None:
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    dashboard = json.loads(body.replace("${AWS::Region}", "us-east-1"))

    expressions = " ".join(
        m[0]["expression"]
        for w in dashboard["widgets"]
        if w["type"] == "metric"
        for m in w["properties"]["metrics"]
    )
    for metric in (
        "RolloutsStarted",
        "RolloutsReleased",
        "RolloutsRolledBack",
        "StageDuration",
        "DrainLogsLost",
        "WindowWaitSeconds",
    ):
        assert f'MetricName="{metric}"' in expressions
    # Canary against live is on each application's dashboard, by its target groups' dimensions:
    # CloudFormation names the target groups, so no search by name can tell the two apart.
    assert "AWS/ApplicationELB" not in expressions
    texts = " ".join(w["properties"]["markdown"] for w in dashboard["widgets"] if w["type"] == "text")
    assert "canaryfleet-<application>" in texts


CHECKOV_SKIPS: set[str] = set(yaml.safe_load((REPO / ".checkov.yaml").read_text())["skip-check"])


def test_a_check_skipped_for_every_resource_is_not_skipped_again_inline() -> None:
    # Given the checks .checkov.yaml skips for both templates, with one shared reason each
    # When each resource's inline suppressions are read
    inline = {
        (logical_id, skip["id"])
        for logical_id, resource in RESOURCES.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }

    # Then none repeats a global one: an inline suppression is there for a reason of its own
    assert not {pair for pair in inline if pair[1] in CHECKOV_SKIPS}


@pytest.mark.parametrize(
    ("resource_type", "encrypted"),
    [
        # The premise of skipping CKV_AWS_27 globally: SQS-managed SSE on every queue.
        ("AWS::SQS::Queue", lambda props: props.get("SqsManagedSseEnabled") is True),
        # The premise of skipping CKV_AWS_119 globally: every table encrypted at rest.
        ("AWS::DynamoDB::Table", lambda props: props["SSESpecification"]["SSEEnabled"] is True),
    ],
)
def test_every_queue_and_table_is_encrypted_at_rest(
    resource_type: str, encrypted: Callable[[dict[str, Any]], bool]
) -> None:
    # Given every resource of the type that .checkov.yaml's global skips speak for
    resources = {k: v for k, v in RESOURCES.items() if v["Type"] == resource_type}

    # Then each is encrypted as the skip's reason says
    assert resources
    assert [k for k, v in resources.items() if not encrypted(v["Properties"])] == []


def test_each_approval_route_is_throttled_within_the_stage_default() -> None:
    # Given the approval HTTP API and the routes its functions declare
    api = RESOURCES["ApprovalHttpApi"]["Properties"]
    routes = {
        f"{event['Properties']['Method']} {event['Properties']['Path']}"
        for function in FUNCTION_RESOURCES.values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }
    default = api["DefaultRouteSettings"]

    # Then every route has its own burst and rate, none above the stage's default
    assert routes and set(api["RouteSettings"]) == routes
    for settings in api["RouteSettings"].values():
        assert 0 < settings["ThrottlingRateLimit"] <= settings["ThrottlingBurstLimit"]
        assert settings["ThrottlingBurstLimit"] <= default["ThrottlingBurstLimit"]
        assert settings["ThrottlingRateLimit"] <= default["ThrottlingRateLimit"]


def test_an_event_or_notice_redriven_from_its_dead_letter_queue_is_still_remembered() -> None:
    # The idempotent handlers: alarm events (their Lambda's EventDeadLetterQueue) and notices
    # (NotifyDeadLetterQueue). A redrive delivers a message again up to the queue's retention
    # after it was first sent; a key forgotten sooner repeats its effect (an email sent twice).
    for queue in ("EventDeadLetterQueue", "NotifyDeadLetterQueue"):
        retention = TEMPLATE["Resources"][queue]["Properties"]["MessageRetentionPeriod"]
        assert int(retention) < REMEMBER_SECONDS, queue


# The events SAM turns into an EventBridge rule (AWS::Events::Rule) whose target is the function.
RULE_EVENT_TYPES = {"EventBridgeRule", "Schedule"}


def _rule_events() -> dict[str, dict[str, Any]]:
    """Each function's rule events, by the logical id SAM gives the rule: <function><event>."""
    return {
        f"{function_id}{name}": event["Properties"]
        for function_id, function in FUNCTION_RESOURCES.items()
        for name, event in function["Properties"].get("Events", {}).items()
        if event["Type"] in RULE_EVENT_TYPES
    }


def _senders(queue: str) -> set[str]:
    """The rules (logical ids) the queue's policy lets EventBridge send to it as."""
    senders = set()
    for resource in RESOURCES.values():
        props = resource["Properties"]
        if resource["Type"] != "AWS::SQS::QueuePolicy" or {"Ref": queue} not in props["Queues"]:
            continue
        for statement in props["PolicyDocument"]["Statement"]:
            if (
                statement["Effect"] == "Allow"
                and statement["Principal"] == {"Service": "events.amazonaws.com"}
                and statement["Action"] in ("sqs:SendMessage", ["sqs:SendMessage"])
                and statement["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
                and set(statement["Condition"]) == {"ArnEquals"}
            ):
                arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
                for arn in arns if isinstance(arns, list) else [arns]:
                    assert arn["Fn::GetAtt"][1] == "Arn"
                    senders.add(arn["Fn::GetAtt"][0])
    return senders


def test_every_rule_keeps_what_it_could_not_deliver_in_a_queue_it_may_send_to_that_pages_on_call() -> None:
    # Given every rule the template's functions are the target of (EventBridge drops an event it
    # could not deliver, unless the target has a dead-letter queue)
    rules = _rule_events()
    assert len(rules) == 9

    for rule, props in rules.items():
        # Then each names an SQS queue of the stack as its target's dead-letter queue
        arn = props.get("DeadLetterConfig", {}).get("Arn")
        assert isinstance(arn, dict) and arn.get("Fn::GetAtt", [None])[1:] == ["Arn"], rule
        queue = arn["Fn::GetAtt"][0]
        assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue", rule
        # And the queue's policy lets EventBridge send to it as that rule, and as no rule else
        senders = _senders(queue)
        assert rule in senders, rule
        assert senders <= set(rules), queue
        # And it is encrypted, kept two weeks, and pages on-call while it holds a message
        queue_props = RESOURCES[queue]["Properties"]
        assert queue_props["SqsManagedSseEnabled"] is True
        assert queue_props["MessageRetentionPeriod"] == 1209600
        alarms = [
            r["Properties"]
            for r in RESOURCES.values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
            and r["Properties"].get("Dimensions")
            == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        ]
        assert len(alarms) == 1, queue
        assert alarms[0]["AlarmActions"] == [{"Ref": "PlatformAlarmTopic"}]
        assert alarms[0]["MetricName"] == "ApproximateNumberOfMessagesVisible"


def test_a_rule_whose_events_age_past_use_gives_up_sooner_than_the_default_day() -> None:
    # EventBridge's default is 24 hours and 185 attempts; a Spot warning is worth nothing after
    # the instance's two minutes, so its rule gives up then and its event goes to the queue
    rules = _rule_events()
    spot = rules["DrainRequestFunctionSpotInterruption"]["RetryPolicy"]
    assert spot["MaximumEventAgeInSeconds"] <= 120
    for rule, props in rules.items():
        policy = props.get("RetryPolicy")
        if policy is not None:
            assert 0 <= policy["MaximumRetryAttempts"] <= 185, rule
            assert 60 <= policy["MaximumEventAgeInSeconds"] <= 86400, rule
