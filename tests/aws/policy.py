"""The IAM policy the acceptance runner needs, derived from what it deploys and what the story calls.

CloudFormation creates, reads, updates and deletes each resource with the caller's credentials
(the suite passes no service role), so the runner needs every action that each resource type's
handlers declare in its CloudFormation resource schema (the registry schemas cfn-lint ships).
The types come from the templates themselves: template.yaml transformed as `sam deploy` does,
fleet/template.yaml and tests/aws/alb.yaml. The rest are the calls the suite makes itself.

    .venv/bin/python -m tests.aws.policy > tests/aws/iam-policy.json
    .venv/bin/python -m tests.aws.policy --split DIR   # as managed policies under IAM's size limit

tests/unit/test_aws_acceptance_policy.py fails when iam-policy.json misses an action.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import cfnlint
import yaml

from canaryfleet_local.template import prepare
from tests.aws.config import REPO_ROOT

POLICY_FILE = Path(__file__).resolve().parent / "iam-policy.json"
TEMPLATES = (REPO_ROOT / "fleet" / "template.yaml", Path(__file__).resolve().parent / "alb.yaml")
_SCHEMAS = Path(cfnlint.__file__).resolve().parent / "data" / "schemas"
# What CloudFormation runs for a stack's create, update (a re-run over leftovers) and delete.
_HANDLERS = ("create", "read", "update", "delete")
# A few schemas list things that are not IAM actions (an S3 REST operation name, odd casing).
_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9*]+$")
# IAM's limit on one managed policy, whitespace excluded.
MANAGED_POLICY_LIMIT = 6_144

# sam deploy (changesets, the SAM transform, its managed bucket) and the suite's own stack calls.
STACKS = (
    "cloudformation:CreateChangeSet",
    "cloudformation:CreateStack",
    "cloudformation:DeleteChangeSet",
    "cloudformation:DeleteStack",
    "cloudformation:DescribeChangeSet",
    "cloudformation:DescribeStackEvents",
    "cloudformation:DescribeStackResource",
    "cloudformation:DescribeStackResources",
    "cloudformation:DescribeStacks",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:GetTemplate",
    "cloudformation:GetTemplateSummary",
    "cloudformation:ListStackResources",
    "cloudformation:UpdateStack",
    "cloudformation:ValidateTemplate",
    "s3:GetBucketLocation",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:PutObject",
    "ssm:GetParameters",
)
# The story: credentials check, publish, status/history/drains, the approval inbox, a stopped
# execution, scale-in, manifest, a platform alarm set off.
STORY = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
    "autoscaling:UpdateAutoScalingGroup",
    "cloudwatch:SetAlarmState",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:PutObject",
    "sns:Subscribe",
    "sns:Unsubscribe",
    "sqs:CreateQueue",
    "sqs:DeleteMessage",
    "sqs:DeleteQueue",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
    "sqs:SetQueueAttributes",
    "ssm:GetParameter",
    "ssm:GetParametersByPath",
    "states:StopExecution",
    "sts:GetCallerIdentity",
)
# The HTTP API's access logs: API Gateway turns them on with the caller's own credentials, and
# the AWS::ApiGatewayV2::Stage schema lists only apigateway:* actions ("Permissions to activate
# logging", https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging.html).
ACCESS_LOGS = (
    "logs:CreateLogDelivery",
    "logs:CreateLogGroup",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:DescribeResourcePolicies",
    "logs:FilterLogEvents",
    "logs:GetLogDelivery",
    "logs:GetLogEvents",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
)
# Teardown of what the platform stack retains on purpose, and of the functions' log groups.
TEARDOWN = (
    "dynamodb:DeleteTable",
    "logs:DeleteLogGroup",
    "logs:DescribeLogGroups",
    "s3:DeleteBucket",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:ListBucketVersions",
)


def resource_types() -> set[str]:
    """Every resource type the run creates, template.yaml as CloudFormation sees it after the transform."""
    platform = prepare(REPO_ROOT / "template.yaml", "acceptance-code-bucket").cloudformation
    found = {str(r["Type"]) for r in platform["Resources"].values()}
    for template in TEMPLATES:
        document = yaml.load(template.read_text(), Loader=_CloudFormationLoader)
        found.update(str(r["Type"]) for r in document["Resources"].values())
    return found


class _CloudFormationLoader(yaml.SafeLoader):
    """Safe YAML that reads CloudFormation's short tags (!Ref, !Sub, ...) as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _any_tag)


@functools.cache
def _schema_index() -> dict[str, str]:
    index: dict[str, str] = json.loads((_SCHEMAS / "providers" / "us-east-1.json").read_text())
    return index


def handler_actions(resource_type: str) -> set[str]:
    """The IAM actions CloudFormation's handlers of ``resource_type`` declare (create to list)."""
    schema_id = _schema_index().get(resource_type)
    if schema_id is None:
        raise KeyError(f"no CloudFormation schema for {resource_type}")
    schema = json.loads((_SCHEMAS / "resources" / f"{schema_id}.json").read_text())
    handlers = schema.get("handlers", {})
    return {str(a) for h in _HANDLERS for a in handlers.get(h, {}).get("permissions", [])}


def required_actions() -> set[str]:
    """Every action the run needs, without those a wildcard in the same set already grants."""
    by_resources = {a for kind in resource_types() for a in handler_actions(kind)}
    declared = by_resources | {*STACKS, *STORY, *ACCESS_LOGS, *TEARDOWN}
    valid = {a for a in declared if _ACTION.match(a) and a.split(":", 1)[1][:1].isupper()}
    wildcards = {a for a in valid if "*" in a}
    return {a for a in valid if a in wildcards or not any(fnmatch.fnmatchcase(a, w) for w in wildcards)}


def policy_document() -> dict[str, Any]:
    actions = sorted(required_actions())
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CanaryfleetAcceptanceRun",
                "Effect": "Allow",
                "Action": actions,
                # Names are generated by CloudFormation; a sandbox account is the boundary.
                "Resource": "*",
            },
            {
                "Sid": "SamTransform",
                "Effect": "Allow",
                "Action": "cloudformation:CreateChangeSet",
                "Resource": "arn:aws:cloudformation:*:aws:transform/Serverless-2016-10-31",
            },
        ],
    }


def _size(document: dict[str, Any]) -> int:
    return len(json.dumps(document, separators=(",", ":")))


def split(document: dict[str, Any], limit: int = MANAGED_POLICY_LIMIT) -> list[dict[str, Any]]:
    """The document as managed policies under IAM's size limit, each with a share of the actions."""
    first, *rest = document["Statement"]
    parts: list[dict[str, Any]] = []
    actions: list[str] = []
    for action in first["Action"]:
        candidate = {**document, "Statement": [{**first, "Action": [*actions, action]}, *rest]}
        if actions and _size(candidate) > limit:
            parts.append({**document, "Statement": [{**first, "Action": actions}, *rest]})
            actions = []
        actions.append(action)
    parts.append({**document, "Statement": [{**first, "Action": actions}, *rest]})
    for number, part in enumerate(parts, 1):
        part["Statement"][0] = {**part["Statement"][0], "Sid": f"CanaryfleetAcceptanceRun{number}"}
    return parts


if __name__ == "__main__":
    # The SAM transform resolves pseudo parameters with a region; which one does not change the types.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if sys.argv[1:2] == ["--split"]:
        folder = Path(sys.argv[2])
        for number, part in enumerate(split(policy_document()), 1):
            (folder / f"canaryfleet-acceptance-{number}.json").write_text(json.dumps(part, indent=2) + "\n")
    else:
        print(json.dumps(policy_document(), indent=2))
