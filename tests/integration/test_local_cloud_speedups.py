"""The local cloud's speed-ups change how fast moto answers, never what it answers.

Each one (``canaryfleet_local.parsing``, ``canaryfleet_local.compiled``, the GetMetricData and
Step Functions client patches) claims its results are the ones moto computes without it; these
tests hold that claim against moto's own code.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from types import FunctionType, MappingProxyType, ModuleType
from typing import Any, TypeVar
from unittest import mock

import boto3
import botocore.hooks
import pytest
from botocore.exceptions import ClientError
from canaryfleet.logic.bundle.archive import zip_folder
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from moto import mock_aws
from moto.cloudformation.models import Stack
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend
from moto.sns.models import sns_backends
from moto.stepfunctions.parser.asl.utils import boto_client
from pydantic import BaseModel
from samtranslator.yaml_helper import yaml_parse

from canaryfleet_local import parsing, template
from canaryfleet_local.botocore_data import one_botocore_data_loader
from canaryfleet_local.botocore_events import event_names_aliased_once
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.compiled import compiled_once
from canaryfleet_local.standins.aws_clients import shared_client
from canaryfleet_local.standins.cloudwatch import get_metric_data_reads_the_queried_metrics
from canaryfleet_local.standins.key_pairs import (
    KeyPairMadeWhenUsed,
    key_pairs_made_when_used,
    one_sns_signing_key,
    sns_signing_key,
)
from canaryfleet_local.standins.lambda_ import build_shared_layer_modules, shared_layer_modules
from canaryfleet_local.standins.stepfunctions import one_client_per_service

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = [REPO / "template.yaml", REPO / "fleet" / "template.yaml"]


def _condition_references_as_cloudformation_reads_them(parsed: Any) -> Any:
    """moto's parse with ``!Condition`` read as ``{"Condition": name}`` (standins/cloudformation.py)."""
    if isinstance(parsed, dict):
        if list(parsed) == ["Fn::Condition"]:
            return {"Condition": parsed["Fn::Condition"]}
        return {
            key: _condition_references_as_cloudformation_reads_them(value) for key, value in parsed.items()
        }
    if isinstance(parsed, list):
        return [_condition_references_as_cloudformation_reads_them(value) for value in parsed]
    return parsed


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(REPO)))
def test_a_template_parses_to_what_moto_and_samtranslator_build(path: Path) -> None:
    text = path.read_text()
    # What moto builds, but for the one short form it reads otherwise than CloudFormation
    moto_sees = _condition_references_as_cloudformation_reads_them(Stack.parse_template(text))

    with parsing.parsed_once():
        assert Stack.parse_template(text) == moto_sees
        assert Stack.parse_template(text) == moto_sees  # the second time from the kept parse
    assert parsing.parse_template(text) == yaml_parse(text)

    as_json = json.dumps(moto_sees)
    moto_sees_json = Stack.parse_template(as_json)
    with parsing.parsed_once():
        assert Stack.parse_template(as_json) == moto_sees_json == moto_sees


def test_each_caller_gets_its_own_copy_of_a_kept_parse() -> None:
    text = (REPO / "fleet" / "template.yaml").read_text()
    with parsing.parsed_once():
        first = Stack.parse_template(text)
        first["Resources"].clear()
        assert Stack.parse_template(text)["Resources"]
    first = parsing.parse_template(text)
    first["Resources"].clear()
    assert parsing.parse_template(text)["Resources"]


@mock_aws
def test_get_metric_data_answers_what_moto_answers_over_every_datapoint() -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for minute in range(5):
        for group, count in (("app/lb/1 tg/canary", 3 + minute), ("app/lb/1 tg/live", 40 + minute)):
            cloudwatch.put_metric_data(
                Namespace="AWS/ApplicationELB",
                MetricData=[
                    {
                        "MetricName": "RequestCount",
                        "Dimensions": [{"Name": "TargetGroup", "Value": group}],
                        "Timestamp": now - timedelta(minutes=minute),
                        "Value": count,
                    },
                    {
                        "MetricName": "HTTPCode_Target_5XX_Count",
                        "Dimensions": [{"Name": "TargetGroup", "Value": group}],
                        "Timestamp": now - timedelta(minutes=minute),
                        "Value": minute,
                    },
                ],
            )
        cloudwatch.put_metric_data(
            Namespace="Payments",
            MetricData=[{"MetricName": "Captured", "Timestamp": now - timedelta(minutes=minute), "Value": 7}],
        )
    queries: list[Any] = [
        {
            "Id": "canary",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/ApplicationELB",
                    "MetricName": "RequestCount",
                    "Dimensions": [{"Name": "TargetGroup", "Value": "app/lb/1 tg/canary"}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
        },
        {
            "Id": "errors",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/ApplicationELB",
                    "MetricName": "HTTPCode_Target_5XX_Count",
                    "Dimensions": [{"Name": "TargetGroup", "Value": "app/lb/1 tg/live"}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
        },
        {
            "Id": "captured",
            "MetricStat": {
                "Metric": {"Namespace": "Payments", "MetricName": "Captured"},
                "Period": 60,
                "Stat": "Sum",
            },
        },
        {"Id": "rate", "Expression": "errors / canary"},
    ]
    window = {"StartTime": now - timedelta(minutes=10), "EndTime": now + timedelta(minutes=1)}

    plain = cloudwatch.get_metric_data(MetricDataQueries=queries, **window)["MetricDataResults"]
    with get_metric_data_reads_the_queried_metrics():
        filtered = cloudwatch.get_metric_data(MetricDataQueries=queries, **window)["MetricDataResults"]

    assert filtered == plain
    assert all(result["Values"] for result in plain if result["Id"] != "rate")


@mock_aws
def test_get_metric_data_through_its_index_answers_what_moto_answers_as_data_arrives() -> None:
    """Datapoints put between calls, dimensions given in either order (moto matches them in the
    order a query gives them: its ``Dimension`` sorts by a comparison that is not an order), a
    query without dimensions over dimensioned datapoints, and one whose dimensions match nothing."""
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    now = datetime.now(UTC).replace(second=0, microsecond=0)

    def put(minute: int) -> None:
        for app in range(6):
            pairs = [("LoadBalancer", f"app/lb-{app}/1"), ("TargetGroup", f"targetgroup/tg-{app}/2")]
            for order in (pairs, pairs[::-1]):
                cloudwatch.put_metric_data(
                    Namespace="AWS/ApplicationELB",
                    MetricData=[
                        {
                            "MetricName": name,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in order],
                            "Timestamp": now - timedelta(minutes=minute),
                            "Value": app + minute + len(name),
                        }
                        for name in ("RequestCount", "TargetResponseTime")
                    ],
                )

    def stat(
        qid: str, name: str, dimensions: list[tuple[str, str]], namespace: str = "AWS/ApplicationELB"
    ) -> Any:
        metric = {
            "Namespace": namespace,
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions],
        }
        return {"Id": qid, "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"}}

    queries = [
        stat(
            "requests",
            "RequestCount",
            [("TargetGroup", "targetgroup/tg-3/2"), ("LoadBalancer", "app/lb-3/1")],
        ),
        stat(
            "latency",
            "TargetResponseTime",
            [("LoadBalancer", "app/lb-1/1"), ("TargetGroup", "targetgroup/tg-1/2")],
        ),
        stat("all", "RequestCount", []),
        stat("other", "RequestCount", [], namespace="Payments"),
        stat("none", "RequestCount", [("TargetGroup", "targetgroup/tg-9/2")]),
    ]
    window = {"StartTime": now - timedelta(minutes=10), "EndTime": now + timedelta(minutes=1)}
    answers: dict[str, list[float]] = {}
    for minute in (4, 3, 2, 1):
        put(minute)
        for asked in (queries[:2] + queries[4:], queries[2:4]):  # "all" would cover "requests"
            with get_metric_data_reads_the_queried_metrics():
                indexed = cloudwatch.get_metric_data(MetricDataQueries=asked, **window)["MetricDataResults"]
            plain = cloudwatch.get_metric_data(MetricDataQueries=asked, **window)["MetricDataResults"]
            assert indexed == plain
            answers.update({result["Id"]: result["Values"] for result in plain})

    assert len(answers["requests"]) == len(answers["latency"]) == len(answers["all"]) == 4
    assert answers["other"] == answers["none"] == []


def test_one_client_serves_every_task_of_a_service_and_region() -> None:
    with one_client_per_service():
        first = boto_client.boto_client_for("us-east-1", "lambda")
        assert boto_client.boto_client_for("us-east-1", "lambda") is first
        assert boto_client.boto_client_for("eu-west-1", "lambda") is not first
        assert boto_client.boto_client_for("us-east-1", "sqs") is not first


def test_the_local_clouds_own_clients_are_made_once_and_each_cloud_sees_only_its_own_resources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def queue_names(sqs: Any) -> set[str]:
        return {url.rsplit("/", 1)[1] for url in sqs.list_queues().get("QueueUrls", [])}

    default_session = boto3.DEFAULT_SESSION
    clients = []
    for number in range(2):
        with LocalCloud() as cloud:
            sqs = shared_client("sqs", cloud.region)
            assert cloud.client("sqs") is sqs
            # Its CloudFormation client is the cloud's own: it carries the cloud's template rules.
            assert cloud.client("cloudformation") is not shared_client("cloudformation", cloud.region)
            assert not {n for n in queue_names(sqs) if n.startswith("cloud-")}, "a fresh cloud's moto"
            sqs.create_queue(QueueName=f"cloud-{number}")
            assert f"cloud-{number}" in queue_names(sqs)
            clients.append(sqs)
    assert clients[0] is clients[1]
    assert shared_client("sqs", "eu-west-1") is not shared_client("sqs", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAONEIDENTITY00000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    first = shared_client("sqs", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAANOTHERIDENTITY0")
    assert shared_client("sqs", "us-east-1") is not first, "other credentials, another client"
    assert boto3.DEFAULT_SESSION is default_session, "boto3's default session (its credentials) untouched"


def test_sessions_that_share_one_data_loader_do_not_grow_its_search_paths() -> None:
    with one_botocore_data_loader():
        sessions = [boto3.session.Session() for _ in range(3)]
        loaders = [s._session.get_component("data_loader") for s in sessions]

    assert loaders[0] is loaders[1] is loaders[2], "one loader: each model read once"
    paths = loaders[0].search_paths
    assert len(paths) == len(set(paths))
    assert any(Path(path).parts[-2:] == ("boto3", "data") for path in paths), "boto3's own models"
    assert sessions[2].client("sqs", region_name="us-east-1").meta.service_model.service_name == "sqs"


def test_moto_lists_the_regions_each_new_session_lists_though_it_read_ec2s_model_once() -> None:
    # What moto's EC2 module builds at import, each partition from a new session of its own.
    expected = [
        (region, suffix)
        for partition, suffix in (
            ("aws", ".amazonaws.com"),
            ("aws-us-gov", ".amazonaws.com"),
            ("aws-cn", ".amazonaws.com.cn"),
        )
        for region in boto3.session.Session().get_available_regions("ec2", partition_name=partition)
    ]
    assert len(expected) > 20
    assert [(r.name, r.endpoint) for r in RegionsAndZonesBackend.regions] == [
        (name, f"ec2.{name}{suffix}") for name, suffix in expected
    ]
    # A process that imports the local cloud reads EC2's model (botocore's largest) once; moto's
    # own import, in three new sessions, read it three times.
    counted = """
import sys
import botocore.loaders
reads = []
original = botocore.loaders.JSONFileLoader.load_file
def load_file(self, file_path):
    found = original(self, file_path)
    if found is not None and "/ec2/" in file_path and "service-2" in file_path:
        reads.append(file_path)
    return found
botocore.loaders.JSONFileLoader.load_file = load_file
import canaryfleet_local.simulator
assert "moto.ec2.models" in sys.modules
print(len(reads))
"""
    result = subprocess.run(
        [sys.executable, "-c", counted], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["1"], result.stdout + result.stderr


def test_event_names_are_aliased_as_each_new_emitter_aliases_them_and_worked_out_once() -> None:
    names = [
        "creating-client-class.api.sagemaker",
        "before-call.autoscaling-plans.GetScalingPlanResourceForecastData",
        "before-parameter-build.s3.PutObject",
        "needs-retry.dynamodb.TransactWriteItems",
        "after-call.elasticloadbalancingv2.DescribeRules",
    ]
    fresh = [botocore.hooks.EventAliaser(botocore.hooks.HierarchicalEmitter()) for _ in names]
    expected = [emitter._alias_event_name(name) for emitter, name in zip(fresh, names, strict=True)]
    assert expected[0] == "creating-client-class.sagemaker", "a name botocore does rename"

    with mock_aws(), event_names_aliased_once():
        session = boto3.session.Session()
        first = session._session.get_component("event_emitter")
        assert [first._alias_event_name(name) for name in names] == expected
        client = session.client("sqs", region_name="us-east-1")
        second = client.meta.events  # the client's own copy of the session's emitter
        assert second is not first
        assert second._alias_name_cache is first._alias_name_cache, "one cache for the process"
        assert [second._alias_name_cache[name] for name in names] == expected
        assert client.list_queues().get("QueueUrls", []) == []


def _fresh_import(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_module_compiled_once_still_gets_its_own_state_per_import_and_an_edit_is_seen(
    tmp_path: Path,
) -> None:
    source = tmp_path / "handler.py"
    source.write_text("calls = []\nVERSION = 1\n")
    with compiled_once([tmp_path]):
        first = _fresh_import(source, "copy_one")
        second = _fresh_import(source, "copy_two")
        first.calls.append("invoked")
        assert second.calls == []
        source.write_text("calls = []\nVERSION = 2\n")
        stat = source.stat()
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert _fresh_import(source, "copy_three").VERSION == 2


_COUNTING_MACHINE = json.dumps(
    {
        "StartAt": "Count",
        "States": {
            "Count": {
                "Type": "Pass",
                "Parameters": {"seen.$": "States.ArrayLength($.items)"},
                "Next": "Enough?",
            },
            "Enough?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.seen", "NumericGreaterThan": 1, "Next": "Many"}],
                "Default": "Few",
            },
            "Many": {"Type": "Pass", "Result": "many", "End": True},
            "Few": {"Type": "Pass", "Result": "few", "End": True},
        },
    }
)


def _outputs(inputs: list[list[int]]) -> list[str]:
    """Each input's output on a fresh mocked Step Functions, executions started together."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="counting", definition=_COUNTING_MACHINE, roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        started = [
            sfn.start_execution(stateMachineArn=arn, name=f"run-{n}", input=json.dumps({"items": items}))
            for n, items in enumerate(inputs)
        ]
        outputs = []
        for execution in started:
            for _ in range(500):
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                if described["status"] != "RUNNING":
                    break
                threading.Event().wait(0.01)
            assert described["status"] == "SUCCEEDED"
            outputs.append(described["output"])
        return outputs


def test_a_definition_parsed_in_one_local_cloud_runs_the_same_in_the_next_and_bad_ones_are_refused() -> None:
    inputs = [[1, 2, 3], [], [7, 8], [9]]
    moto_answers = _outputs(inputs)

    with parsing.parsed_once():
        first_cloud = _outputs(inputs)
    assert _COUNTING_MACHINE in parsing._TREES._trees  # kept for the process, not the cloud
    with parsing.parsed_once():
        second_cloud = _outputs(list(reversed(inputs)))  # executions built afresh from the kept tree

    assert first_cloud == moto_answers == ["many", "few", "many", "few"]
    assert second_cloud == list(reversed(moto_answers))
    assert _refusal() == _refusal(parsing.parsed_once())  # a bad definition is refused as moto refuses it
    assert "ASLParserException" in _refusal(parsing.parsed_once())  # every time: a refusal is never kept
    assert _BROKEN_MACHINE not in parsing._TREES._trees


_UPDATE = "SET #s = :s, step = step + :one REMOVE note ADD hits :one"


def _tree(node: Any) -> Any:
    """A moto expression tree as nested tuples: everything a caller could change in it."""
    if not isinstance(node, Node):
        return repr(node)
    return (type(node).__name__, tuple(_tree(child) for child in node.children or []))


def _updates() -> list[Any]:
    """UpdateItem and TransactWriteItems with one expression, then an expression moto refuses."""
    answers: list[Any] = []
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        dynamodb.create_table(
            TableName="state",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        values = {":s": {"S": "released"}, ":one": {"N": "1"}}
        update = {
            "TableName": "state",
            "UpdateExpression": _UPDATE,
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": values,
        }
        for pk in ("a", "b", "c"):
            item = {"pk": {"S": pk}, "step": {"N": "1"}, "note": {"S": "x"}}
            dynamodb.put_item(TableName="state", Item=item)
        for pk in ("a", "a", "b"):
            answers.append(dynamodb.update_item(Key={"pk": {"S": pk}}, ReturnValues="ALL_NEW", **update))
        dynamodb.transact_write_items(TransactItems=[{"Update": {"Key": {"pk": {"S": "c"}}, **update}}])
        answers.append(dynamodb.scan(TableName="state")["Items"])
        for _ in range(2):
            with pytest.raises(ClientError) as refused:
                dynamodb.update_item(Key={"pk": {"S": "a"}}, **{**update, "UpdateExpression": "SET = :s"})
            answers.append(refused.value.response["Error"])
    for answer in answers:
        if isinstance(answer, dict):
            answer.pop("ResponseMetadata", None)
    return answers


def test_an_update_expression_parsed_once_updates_as_moto_and_its_tree_is_never_changed() -> None:
    moto_answers = _updates()
    parsing._update_expression.cache_clear()
    parse = mock.patch.object(parsing, "_parse_update_expression", wraps=parsing._parse_update_expression)
    with parsing.parsed_once(), parse as parses:
        ours = _updates()
        kept = parsing._update_expression(_UPDATE)

    assert ours == moto_answers
    assert moto_answers[-1]["Code"] == "ValidationException"
    # One parse of the expression for three UpdateItems and a transaction (moto: nine), and the
    # refused one parsed, and refused, each time.
    assert [c.args[0] for c in parses.call_args_list] == [_UPDATE, "SET = :s", "SET = :s"]
    assert _tree(kept) == _tree(UpdateExpressionParser.make(_UPDATE))  # moto only read it


_BROKEN_MACHINE = '{"StartAt": "Nowhere", "States": {}}'


def _refusal(*contexts: contextlib.AbstractContextManager[Any]) -> str:
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        with pytest.raises(ClientError) as refused:
            boto3.client("stepfunctions", region_name="us-east-1").create_state_machine(
                name="broken",
                definition=_BROKEN_MACHINE,
                roleArn="arn:aws:iam::123456789012:role/sfn",
            )
        return str(refused.value)


_SAM = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello/
      Handler: app.handler
      Runtime: python3.13
"""


def test_a_prepared_template_is_packaged_afresh_when_a_file_changes_and_each_caller_has_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hello").mkdir()
    handler = tmp_path / "hello" / "app.py"
    handler.write_text("def handler(event, context):\n    return 1\n")
    sam = tmp_path / "template.yaml"
    sam.write_text(_SAM)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    first = template.prepare(sam, "code")
    again = template.prepare(sam, "code")
    assert again.cloudformation == first.cloudformation and again.packages == first.packages
    again.cloudformation["Resources"].clear()  # each caller has its own copy
    assert template.prepare(sam, "code").cloudformation["Resources"]

    handler.write_text("def handler(event, context):\n    return 2\n")  # same size, new content
    stat = handler.stat()
    os.utime(handler, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    edited = template.prepare(sam, "code").packages["functions/Hello.zip"]
    assert edited == zip_folder(tmp_path / "hello") != first.packages["functions/Hello.zip"]


def test_every_local_cloud_names_the_platform_alike_and_what_comes_after_stays_random() -> None:
    seen = []
    for _ in range(2):
        with LocalCloud() as cloud:
            machines = cloud.client("stepfunctions").list_state_machines()["stateMachines"]
            definitions = {
                m["name"]: cloud.client("stepfunctions").describe_state_machine(
                    stateMachineArn=m["stateMachineArn"]
                )["definition"]
                for m in machines
            }
            queue = cloud.client("sqs").create_queue(QueueName="after-the-deploy")["QueueUrl"]
            cloud.client("sqs").send_message(QueueUrl=queue, MessageBody="x")
            message = cloud.client("sqs").receive_message(QueueUrl=queue)["Messages"][0]["MessageId"]
            seen.append((definitions, message))

    (first, first_message), (second, second_message) = seen
    assert first == second and len(first) == 2  # the same texts: moto's parse of each is reused
    assert all(definition in parsing._TREES._trees for definition in first.values())
    assert first_message != second_message


_DEFINITIONS = (ModuleType, type, FunctionType, TypeVar, re.Pattern, MappingProxyType, frozenset, tuple)
_VALUES = (str, bytes, int, float, bool, type(None), Enum)


def test_the_layer_modules_every_function_shares_hold_no_state_and_read_no_environment() -> None:
    build_shared_layer_modules()
    held = []
    for module in shared_layer_modules():
        source = Path(module.__file__ or "").read_text()
        assert not re.search(r"\bos\.(environ|getenv)|\bgetenv\(|^import os$", source, re.M), module.__name__
        for name, value in vars(module).items():
            frozen_model = isinstance(value, BaseModel) and value.model_config.get("frozen")
            typing_form = type(value).__module__ == "typing" or name == "annotations"
            if name.startswith("__") or frozen_model or typing_form:
                continue
            if not isinstance(value, _DEFINITIONS + _VALUES):
                held.append(f"{module.__name__}.{name}: {type(value).__name__}")
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
            ):
                assert value.__pydantic_complete__, f"{value.__qualname__} left to build on first use"
    assert held == []


def _kms_answers(kms: Any) -> dict[str, Any]:
    """What moto's KMS answers about a symmetric key, an HMAC key and an RSA signing key."""

    def outcome(call: Any) -> Any:
        try:
            answer = call()
        except ClientError as exc:
            return ("error", exc.response["Error"]["Code"])
        return ("ok", {k: v for k, v in answer.items() if k not in ("ResponseMetadata", "KeyId")})

    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    hmac = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    signing = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    sealed = kms.encrypt(KeyId=symmetric, Plaintext=b"secret")["CiphertextBlob"]
    algorithm = "RSASSA_PSS_SHA_256"
    signature = kms.sign(KeyId=signing, Message=b"m", SigningAlgorithm=algorithm)["Signature"]
    return {
        "decrypted": kms.decrypt(CiphertextBlob=sealed)["Plaintext"],
        # moto answers with the pair it made (AWS refuses: GetPublicKey is for asymmetric keys)
        "symmetric public key": outcome(
            lambda: {
                k: len(v) if k == "PublicKey" else v for k, v in kms.get_public_key(KeyId=symmetric).items()
            }
        ),
        "symmetric sign": outcome(
            lambda: kms.sign(KeyId=symmetric, Message=b"m", SigningAlgorithm=algorithm)
        ),
        "hmac sign": outcome(lambda: kms.sign(KeyId=hmac, Message=b"m", SigningAlgorithm=algorithm)),
        "verified": kms.verify(KeyId=signing, Message=b"m", Signature=signature, SigningAlgorithm=algorithm)[
            "SignatureValid"
        ],
        "rsa spec": kms.describe_key(KeyId=signing)["KeyMetadata"]["KeySpec"],
        "bad spec": outcome(lambda: kms.create_key(KeySpec="RSA_1024")),
    }


def test_a_symmetric_kms_key_makes_its_key_pair_only_when_used_and_kms_answers_as_moto() -> None:
    made = mock.Mock(wraps=rsa.generate_private_key)
    with mock.patch.object(rsa, "generate_private_key", made), mock_aws():
        expected = _kms_answers(boto3.client("kms", region_name="us-east-1"))
    with mock.patch.object(rsa, "generate_private_key", made), mock_aws(), key_pairs_made_when_used():
        kms = boto3.client("kms", region_name="us-east-1")
        made.reset_mock()
        # What each local cloud makes: the AWS managed key behind an encrypted table
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            SSESpecification={"Enabled": True},
        )
        table_key = dynamodb.describe_table(TableName="t")["Table"]["SSEDescription"]["KMSMasterKeyArn"]
        assert kms.describe_key(KeyId=table_key)["KeyMetadata"]["KeySpec"] == "SYMMETRIC_DEFAULT"
        assert made.call_count == 0, "no key pair for a key nothing signs with"
        kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
        assert made.call_count == 1, "an RSA key's pair is made at CreateKey, as moto makes it"
        answers = _kms_answers(kms)
    assert answers == expected
    assert answers["decrypted"] == b"secret"
    assert answers["verified"] is True
    assert answers["bad spec"][0] == "error"

    key = KeyPairMadeWhenUsed("SYMMETRIC_DEFAULT", lambda spec: mock.Mock(public_key=lambda: b"pem"))
    assert not key.made
    assert [key.public_key(), key.public_key()] == [b"pem", b"pem"] and key.made


def test_every_sns_subscription_signs_with_one_key_and_each_signature_verifies() -> None:
    def envelopes() -> list[dict[str, Any]]:
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="t")["TopicArn"]
        queues = [sqs.create_queue(QueueName=f"q{n}")["QueueUrl"] for n in range(2)]
        for url in queues:
            found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=found["Attributes"]["QueueArn"])
        sns.publish(TopicArn=topic, Message="hello")
        attributes = {"a": {"DataType": "String", "StringValue": "b"}}
        sns.publish(TopicArn=topic, Message="again", MessageAttributes=attributes)
        return [
            json.loads(message["Body"])
            for url in queues
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        ]

    def verified(envelope: dict[str, Any]) -> bool:
        pems = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]._message_public_keys
        certificate = x509.load_pem_x509_certificate(pems[envelope["SigningCertURL"].rsplit("/", 1)[-1]])
        signed = "".join(
            f"{name}\n{envelope[name]}\n"
            for name in ("Message", "MessageId", "Timestamp", "TopicArn", "Type")
            if name in envelope
        )
        try:
            certificate.public_key().verify(  # type: ignore[call-arg,union-attr]
                base64.b64decode(envelope["Signature"]), signed.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return False
        return True

    made = mock.Mock(wraps=rsa.generate_private_key)
    with mock.patch.object(rsa, "generate_private_key", made), mock_aws():
        expected = envelopes()
        assert made.call_count == 2, "moto: one key per subscription"
    sns_signing_key.cache_clear()
    made.reset_mock()
    with mock.patch.object(rsa, "generate_private_key", made), mock_aws(), one_sns_signing_key():
        answered = envelopes()
        assert made.call_count == 1, "one key for every subscription"
        assert [verified(envelope) for envelope in answered] == [True] * 4
        tampered = {**answered[0], "Message": "changed"}
        assert not verified(tampered)
    assert [sorted(envelope) for envelope in answered] == [sorted(envelope) for envelope in expected]
    assert [envelope["Message"] for envelope in answered] == [envelope["Message"] for envelope in expected]
