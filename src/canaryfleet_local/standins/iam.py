"""IAM: each function runs under its own role's credentials, and IAM checks its calls (opt-in)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlparse

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError, JsonRESTError
from moto.iam.access_control import IAMPolicy
from moto.s3.models import FakeKey, s3_backends
from moto.sts.models import sts_backends

from canaryfleet_local.standins.iam_policy import RequestContext, evaluate
from canaryfleet_local.standins.iam_resources import NOTHING_KNOWN, Check, resolves, resource_checks

# Opt-in: CANARYFLEET_LOCAL_IAM=enforce runs every function under its own role's credentials,
# and IAM checks each call made with them.
IAM_ENFORCEMENT_VARIABLE = "CANARYFLEET_LOCAL_IAM"

# The object reads whose answer for a missing object depends on s3:ListBucket (GetObject's and
# HeadObject's permissions); moto names both GetObject, or GetObjectVersion with a versionId.
_OBJECT_READS = frozenset({"s3:GetObject", "s3:GetObjectVersion"})
_S3_ARN = "arn:aws:s3:::"
_S3_BACKEND = "global"  # moto keeps S3's buckets in one backend for the partition, under "global"

# The IAM prefix of services whose signing name differs from it.
_IAM_PREFIX_OF_SIGNING_NAME = {"monitoring": "cloudwatch"}

# SQS's batch actions are authorised by their single-message actions: "Specifying SendMessage,
# DeleteMessage, or ChangeMessageVisibility ... also grants permissions for the corresponding batch
# versions of those actions" (SQS API Reference, AddPermission; the SQS Developer Guide's "Amazon
# SQS API permissions: Actions and resource reference" lists no permission of their own).
_SQS_BATCH_PERMISSION = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}

# The actions the platform calls that name no resource type in the Service Authorization Reference
# ("Actions, resources, and condition keys for <service>": "If there is no value for this column,
# you must specify all resources ("*") to which the policy applies in the Resource element of your
# policy statement"). IAM authorises them only by a statement whose Resource is "*": an ARN, even
# one that ends in a wildcard, names a resource these actions are never checked against.
ACTIONS_WITHOUT_RESOURCE_TYPES = frozenset(
    {
        # "... for AWS Step Functions": the task-token callbacks.
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        # "... for Elastic Load Balancing V2": its Describe actions.
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeTargetGroupAttributes",
        "elasticloadbalancing:DescribeRules",
        # "... for Amazon CloudWatch" (DescribeAlarms, by contrast, names alarm*).
        "cloudwatch:GetMetricData",
        # "... for Amazon EC2".
        "ec2:DescribeTags",
        # "... for Amazon EC2 Auto Scaling": both List actions.
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeScalingActivities",
        # "... for AWS Systems Manager": the Run Command reads of a command (GetCommandInvocation,
        # like ListCommands and CancelCommand).
        "ssm:GetCommandInvocation",
        # "... for AWS CodeDeploy": StopDeployment ("Grants permission to stop a deployment") names
        # none, though GetDeployment names deploymentgroup* (the CodeDeploy User Guide's
        # permissions reference gives it a deployment group ARN, which AWS's own documentation
        # issue awsdocs/aws-codedeploy-user-guide#18 says is wrong).
        "codedeploy:StopDeployment",
    }
)

# SQS's JSON protocol is "awsQueryCompatible" (botocore sqs model): it keeps its query-protocol
# error codes (AccessDenied), which moto's answer already gives.
_QUERY_COMPATIBLE_TARGETS = ("AmazonSQS.",)


class FunctionRoleCredentials:
    """Stands in for Lambda giving a function its execution role's credentials, and for IAM
    checking every call made with them (moto checks no call unless told to, and then all).

    Each function gets credentials of ``sts:AssumeRole`` on its own role, as the Lambda
    runtime puts them in its environment. A request signed with them is checked by moto's
    IAM: signature, then the role's inline policies. Requests signed otherwise (the local
    cloud itself, the fleet simulator, tests) are not checked, as on AWS they would come from
    an administrator. moto knows the resource of a request only for S3 and SQS (elsewhere it
    passes "*", which no ARN in a policy matches); this stand-in reads it from the request
    (``iam_resources``) for Step Functions' state machines and executions, DynamoDB's tables and
    indexes, Systems Manager's parameters, Secrets Manager's secrets named by ARN, SNS's topics,
    CodeDeploy's groups, applications and configs, CloudWatch alarms, and (with the resource's
    tags in the request context) Auto Scaling groups, listener rules, target groups, and Run
    Command's document and instances. For the other calls the check is on the action alone, so it
    catches a missing action, not an ARN that is too narrow; except for
    :data:`ACTIONS_WITHOUT_RESOURCE_TYPES`, which IAM checks against "*" itself, so only a
    statement on "*" grants them. Statements are read by ``iam_policy``.
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._by_role: dict[str, dict[str, str]] = {}
        self._access_keys: set[str] = set()
        # (caller ARN, action) of each check, for tests: how often it was allowed; what was denied.
        self.allowed: dict[tuple[str, str], int] = {}
        self.denied: list[tuple[str, str]] = []

    def environment(self, role_arn: str) -> dict[str, str]:
        """The credential variables the Lambda runtime sets for a function of this role."""
        credentials = self._by_role.get(role_arn)
        if credentials is None:
            backend = sts_backends[self.account_id]["aws"]
            session = role_arn.rsplit("/", 1)[-1]
            assumed = backend.assume_role(
                region_name=self.region,
                role_session_name=session[:64],
                role_arn=role_arn,
                policy="",
                duration=43200,
                external_id="",
            )
            credentials = {
                "AWS_ACCESS_KEY_ID": assumed.access_key_id,
                "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
                "AWS_SESSION_TOKEN": assumed.session_token,
            }
            self._by_role[role_arn] = credentials
            self._access_keys.add(assumed.access_key_id)
        return credentials

    def _checked(self, authorization: str) -> bool:
        access_key = authorization.partition("Credential=")[2].partition("/")[0]
        return access_key in self._access_keys

    def authorize(self, request: Any, iam_request_cls: type, resource: str) -> None:
        """Check one request signed with a function's credentials, as IAM would."""
        query = urlparse(request.uri).query
        iam_request = iam_request_cls(
            account_id=request.current_account,
            method=request.method,
            path=request.raw_path + (f"?{query}" if query else ""),
            data=request.data,
            body=request.raw_body,
            headers=request.headers,
            action=request._get_action(),
        )
        iam_request.check_signature()
        service, _, operation = iam_request._action.partition(":")
        action = f"{_IAM_PREFIX_OF_SIGNING_NAME.get(service, service)}:{operation}"
        checks: list[Check] = [(_SQS_BATCH_PERMISSION.get(action, action), resource, NOTHING_KNOWN)]
        if resource == "*" and resolves(action):  # moto knows no resource: read it from the request
            members = _json_body(request.raw_body) or getattr(request, "params", None) or {}
            checks = resource_checks(action, members, iam_request._region, self.account_id)
        statements = [
            statement
            for policy in iam_request._access_key.collect_policies()
            for statement in _policy_statements(policy, IAMPolicy)
        ]
        for wanted, on, context in checks:
            self._check(iam_request, statements, wanted, on, context)
        if (
            action in _OBJECT_READS
            and resource.startswith(_S3_ARN)
            and not self._object_exists(request, resource)
        ):
            # https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html (Permissions; and
            # HeadObject's): "If the object you request doesn't exist, the error that Amazon S3
            # returns depends on whether you also have the s3:ListBucket permission": 404 Not Found
            # with it, 403 Access Denied without.
            bucket = resource.removeprefix(_S3_ARN).partition("/")[0]
            self._check(iam_request, statements, "s3:ListBucket", f"{_S3_ARN}{bucket}", NOTHING_KNOWN)

    def _check(
        self,
        iam_request: Any,
        statements: list[dict[str, Any]],
        wanted: str,
        resource: str,
        context: RequestContext,
    ) -> None:
        # moto passes "*" for a resource it does not know: the statement's resources and conditions
        # are then not weighed, unless the action has none, when "*" is what IAM itself checks.
        action_only = resource == "*" and wanted not in ACTIONS_WITHOUT_RESOURCE_TYPES
        allowed = evaluate(statements, wanted, None if action_only else resource, context)
        caller = (iam_request._access_key.arn, wanted)
        if not allowed:
            self.denied.append(caller)
            target = str(
                iam_request._headers.get("X-Amz-Target") or iam_request._headers.get("x-amz-target") or ""
            )
            if target and not target.startswith(_QUERY_COMPATIBLE_TARGETS):
                # A JSON-protocol service answers AccessDeniedException, HTTP 400 (the "Common
                # Errors" of each API reference, e.g. Step Functions' and DynamoDB's); moto's
                # XML AccessDenied left botocore reading the code as "403".
                on = f" on resource: {resource}" if resource != "*" else ""
                raise JsonRESTError(
                    "AccessDeniedException",
                    f"User: {iam_request._access_key.arn} is not authorized to perform: {wanted}{on}"
                    f" because no identity-based policy allows the {wanted} action",
                )
            if wanted.startswith("sns:"):
                # SNS answers AuthorizationError, HTTP 403 (botocore sns model,
                # AuthorizationErrorException: "Indicates that the user has been denied access to
                # the requested resource"), not the query protocol's AccessDenied.
                raise _SnsAuthorizationError(
                    f"User: {iam_request._access_key.arn} is not authorized to perform: {wanted} on"
                    f" resource: {resource} because no identity-based policy allows the {wanted} action",
                )
            iam_request._action = wanted
            iam_request._raise_access_denied()
        self.allowed[caller] = self.allowed.get(caller, 0) + 1

    def _object_exists(self, request: Any, resource: str) -> bool:
        """Whether the object (the version the request names, else the current one) is there; a
        missing bucket counts as there (S3 answers NoSuchBucket whatever the caller may list)."""
        bucket_name, _, key = resource.removeprefix(_S3_ARN).partition("/")
        version = parse_qs(urlparse(request.uri).query).get("versionId", [None])[0]
        bucket = s3_backends[self.account_id][_S3_BACKEND].buckets.get(bucket_name)
        if bucket is None:
            return True
        versions = bucket.keys.getlist(key, default=[])  # moto passes the key decoded
        if version is not None:
            return any(str(v.version_id) == version and isinstance(v, FakeKey) for v in versions)
        return bool(versions) and isinstance(versions[-1], FakeKey)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        checker = self
        unchecked = ActionAuthenticatorMixin._authenticate_and_authorize_action

        def authenticate_and_authorize(request: Any, iam_request_cls: type, resource: str = "*") -> None:
            if checker._checked(request.headers.get("Authorization", "")):
                checker.authorize(request, iam_request_cls, resource)
            else:
                unchecked(request, iam_request_cls, resource)

        with mock.patch.object(
            ActionAuthenticatorMixin, "_authenticate_and_authorize_action", authenticate_and_authorize
        ):
            yield


class _SnsAuthorizationError(AccessDeniedError):
    """SNS's refusal: HTTP 403, as moto's AccessDenied, under SNS's own code."""

    def __init__(self, message: str) -> None:
        super(AccessDeniedError, self).__init__("AuthorizationError", message)


def _json_body(body: bytes | str | None) -> dict[str, Any]:
    """A JSON request's members; none for a body that is not a JSON object: a query-protocol form,
    whose members moto has parsed into ``request.params`` (an S3 body, an object's data, is never
    read: no S3 action is resolved)."""
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _policy_statements(policy: Any, iam_policy_class: Any) -> list[dict[str, Any]]:
    """A policy's statements; moto keeps an inline policy from CloudFormation as a plain dict,
    which its own IAMPolicy does not read."""
    if isinstance(policy, dict) and "Statement" in policy:
        document = policy
    elif isinstance(policy, str):
        document = json.loads(policy)
    else:
        document = iam_policy_class(policy)._policy_json
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]
