"""What template.yaml promises, read from the template itself."""

import ast
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from samtranslator.yaml_helper import yaml_parse

from tests.helpers import FUNCTIONS, REPO
from tests.unit.iam_actions import WITHOUT_RESOURCE_LEVEL

TEMPLATE: dict[str, Any] = yaml_parse((REPO / "template.yaml").read_text())
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


def test_the_dashboard_shows_rollouts_stages_canary_against_live_and_drains() -> None:
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    dashboard = json.loads(body.replace("${AWS::Region}", "us-east-1"))

    expressions = " ".join(
        m[0]["expression"] for w in dashboard["widgets"] for m in w["properties"]["metrics"]
    )
    for metric in (
        "RolloutsStarted",
        "RolloutsReleased",
        "RolloutsRolledBack",
        "StageDuration",
        "DrainLogsLost",
    ):
        assert f'MetricName="{metric}"' in expressions
    assert 'HTTPCode_Target_5XX_Count" canary' in expressions and 'TargetResponseTime" live' in expressions


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
