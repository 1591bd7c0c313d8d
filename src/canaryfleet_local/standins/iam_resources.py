"""What IAM checks a call against, for the calls moto knows no resource of (it passes "*" outside
S3 and SQS): the resources the request names, and the request context's resource-tag keys.

Each entry follows the Service Authorization Reference ("Actions, resources, and condition keys
for <service>"): the action's resource types, their ARN formats, and the condition keys each
type supports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.codedeploy.models import codedeploy_backends
from moto.ec2.models import ec2_backends
from moto.elbv2.models import elbv2_backends
from moto.ssm.exceptions import InvalidResourceId
from moto.ssm.models import ssm_backends

from canaryfleet_local.standins.iam_policy import RequestContext

# One check: the action, the resource's ARN ("*" when it is not known), the request context.
Check = tuple[str, str, RequestContext]
NOTHING_KNOWN = RequestContext()

# "... for Amazon EC2 Auto Scaling": these actions take an autoScalingGroup*
# ("arn:${Partition}:autoscaling:${Region}:${Account}:autoScalingGroup:${GroupId}:
# autoScalingGroupName/${GroupFriendlyName}"), whose condition keys are
# autoscaling:ResourceTag/${TagKey} and aws:ResourceTag/${TagKey}.
_GROUP_ACTIONS = frozenset(
    {
        "autoscaling:SetDesiredCapacity",
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
    }
)

# "... for Elastic Load Balancing V2": ModifyRule takes a listener-rule/app (or /net), the target
# actions a targetgroup; both types' condition keys are elasticloadbalancing:ResourceTag/${TagKey}
# and aws:ResourceTag/${TagKey}. The request member holding the ARN (botocore elbv2 2015-12-01).
_LOAD_BALANCING_ACTIONS = {
    "elasticloadbalancing:ModifyRule": "RuleArn",
    "elasticloadbalancing:RegisterTargets": "TargetGroupArn",
    "elasticloadbalancing:DeregisterTargets": "TargetGroupArn",
}

# "... for Amazon CloudWatch": PutMetricAlarm and DeleteAlarms take an alarm*
# ("arn:${Partition}:cloudwatch:${Region}:${Account}:alarm:${AlarmName}"). The member naming it.
_ALARM_ACTIONS = {"cloudwatch:PutMetricAlarm": "AlarmName", "cloudwatch:DeleteAlarms": "AlarmNames"}

# "... for AWS Systems Manager": SendCommand takes the document (document*,
# "arn:${Partition}:ssm:${Region}:${Account}:document/${DocumentName}") and each instance it names
# (instance, "arn:${Partition}:ec2:${Region}:${Account}:instance/${InstanceId}"); both types'
# condition keys are aws:ResourceTag/${TagKey} and ssm:resourceTag/${TagKey}. (An AWS-owned
# document's ARN has no account; the local cloud holds none, and answers them InvalidDocument.)

# "... for AWS CodeDeploy" (and the CodeDeploy User Guide's "CodeDeploy permissions reference",
# which gives the same ARN formats): the deployment actions take a deploymentgroup*
# ("arn:${Partition}:codedeploy:${Region}:${Account}:deploymentgroup:${ApplicationName}/
# ${DeploymentGroupName}"); GetDeployment the group of the deployment it names. The revision
# actions take an application* ("...:application:${ApplicationName}"), GetDeploymentConfig a
# deploymentconfig* ("...:deploymentconfig:${DeploymentConfigurationName}"). The request members
# naming them (botocore codedeploy 2014-10-06).
_DEPLOYMENT_GROUP_ACTIONS = {
    "codedeploy:CreateDeployment": "deploymentGroupName",
    "codedeploy:ListDeployments": "deploymentGroupName",
    "codedeploy:UpdateDeploymentGroup": "currentDeploymentGroupName",
}
_APPLICATION_ACTIONS = frozenset(
    {"codedeploy:RegisterApplicationRevision", "codedeploy:GetApplicationRevision"}
)


# The Step Functions actions the platform calls that name a resource type ("Actions, resources,
# and condition keys for AWS Step Functions": StartExecution, DescribeStateMachine and
# ListExecutions a stateMachine*, DescribeExecution, GetExecutionHistory and StopExecution an
# execution*), and the request parameter holding that resource's ARN (botocore stepfunctions
# 2016-11-23). moto passes "*" for them: IAM checks the ARN.
_STATES_RESOURCE_PARAMETER = {
    "states:StartExecution": "stateMachineArn",
    "states:DescribeStateMachine": "stateMachineArn",
    "states:ListExecutions": "stateMachineArn",
    "states:DescribeExecution": "executionArn",
    "states:GetExecutionHistory": "executionArn",
    "states:StopExecution": "executionArn",
}

# Systems Manager's parameter actions and the request member naming the parameter(s) (botocore
# ssm 2014-11-06); each is checked against "arn:aws:ssm:<region>:<account>:parameter/<name>",
# the name's leading '/' not doubled ("Actions, resources, and condition keys for AWS Systems
# Manager": parameter*; GetParametersByPath, the path itself).
_PARAMETER_ACTIONS = {
    "ssm:GetParameter": "Name",
    "ssm:PutParameter": "Name",
    "ssm:DeleteParameter": "Name",
    "ssm:GetParameters": "Names",
    "ssm:GetParametersByPath": "Path",
}

# Secrets Manager's secret actions, checked against the secret the request names by its ARN
# (SecretId; a name alone leaves the check on the action, as moto does): "... for AWS Secrets
# Manager", Secret*.
_SECRET_ACTIONS = frozenset(
    {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    }
)

# SNS's topic actions the platform calls, checked against the topic the request names (TopicArn):
# "Actions, resources, and condition keys for Amazon SNS", topic*.
_TOPIC_ACTIONS = frozenset({"sns:Publish", "sns:Subscribe", "sns:ListSubscriptionsByTopic"})

# The request member holding the ARN IAM checks, for the actions above that name one.
_ARN_PARAMETER = {
    **_STATES_RESOURCE_PARAMETER,
    **dict.fromkeys(_SECRET_ACTIONS, "SecretId"),
    **dict.fromkeys(_TOPIC_ACTIONS, "TopicArn"),
}

# A transaction is authorised by the actions of its parts (there is no TransactWriteItems grant).
_TRANSACTION_PARTS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def _tag_context(tags: Mapping[str, str], service_key: str) -> RequestContext:
    """The request context of a resource carrying ``tags``: each tag under aws:ResourceTag/ and
    under the service's own key (Systems Manager spells it ssm:resourceTag; context keys are matched
    without regard to case in any event). Both families are known whole: a tag not there is absent."""
    values: dict[str, str] = {}
    for key, value in tags.items():
        values[f"aws:ResourceTag/{key}"] = value
        values[f"{service_key}/{key}"] = value
    return RequestContext(values, ("aws:resourcetag/", f"{service_key.lower()}/"))


def _group_checks(action: str, params: Mapping[str, Any], region: str, account: str) -> list[Check]:
    name = params.get("AutoScalingGroupName")
    group = (
        autoscaling_backends[account][region].autoscaling_groups.get(name) if isinstance(name, str) else None
    )
    if group is None:  # moto answers the missing group as AWS does; its ARN is not known
        return [(action, "*", NOTHING_KNOWN)]
    tags = {str(tag["Key"]): str(tag.get("Value", "")) for tag in group.tags}
    return [(action, str(group.arn), _tag_context(tags, "autoscaling:ResourceTag"))]


def _load_balancing_checks(action: str, params: Mapping[str, Any], region: str, account: str) -> list[Check]:
    arn = params.get(_LOAD_BALANCING_ACTIONS[action])
    if not isinstance(arn, str):
        return [(action, "*", NOTHING_KNOWN)]
    tags = elbv2_backends[account][region].tagging_service.get_tag_dict_for_resource(arn)
    return [(action, arn, _tag_context(tags, "elasticloadbalancing:ResourceTag"))]


def _alarm_checks(action: str, params: Mapping[str, Any], region: str, account: str) -> list[Check]:
    named = params.get(_ALARM_ACTIONS[action])
    names = named if isinstance(named, list) else [named]
    arns = [f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}" for name in names if isinstance(name, str)]
    return [(action, arn, NOTHING_KNOWN) for arn in arns] or [(action, "*", NOTHING_KNOWN)]


def _send_command_checks(action: str, params: Mapping[str, Any], region: str, account: str) -> list[Check]:
    document = params.get("DocumentName")
    checks: list[Check] = []
    if isinstance(document, str):
        arn = (
            document if document.startswith("arn:") else f"arn:aws:ssm:{region}:{account}:document/{document}"
        )
        try:
            tags = ssm_backends[account][region].list_tags_for_resource("Document", document)
        except InvalidResourceId:  # a document moto does not hold: moto answers the call as AWS does
            tags = {}
        checks.append((action, arn, _tag_context(tags, "ssm:resourceTag")))
    instances = ec2_backends[account][region].tags
    for instance_id in params.get("InstanceIds") or []:
        arn = f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"
        checks.append((action, arn, _tag_context(dict(instances.get(instance_id, {})), "ssm:resourceTag")))
    return checks or [(action, "*", NOTHING_KNOWN)]


def _codedeploy_arn(region: str, account: str, kind: str, *names: object) -> str:
    if not all(isinstance(name, str) for name in names):
        return "*"
    return f"arn:aws:codedeploy:{region}:{account}:{kind}:{'/'.join(str(n) for n in names)}"


def _deployment_group_checks(
    action: str, params: Mapping[str, Any], region: str, account: str
) -> list[Check]:
    application: object = params.get("applicationName")
    group: object = params.get(_DEPLOYMENT_GROUP_ACTIONS.get(action, ""))
    if action == "codedeploy:GetDeployment":
        deployment = codedeploy_backends[account][region].deployments.get(str(params.get("deploymentId")))
        if deployment is None:  # moto answers the unknown deployment as AWS does
            return [(action, "*", NOTHING_KNOWN)]
        application, group = deployment.application_name, deployment.deployment_group_name
    arn = _codedeploy_arn(region, account, "deploymentgroup", application, group)
    checks: list[Check] = [(action, arn, NOTHING_KNOWN)]
    # "If you specify an overrideAlarmConfiguration, you need the UpdateDeploymentGroup IAM
    # permission when calling CreateDeployment" (botocore codedeploy model, CreateDeploymentInput).
    if action == "codedeploy:CreateDeployment" and "overrideAlarmConfiguration" in params:
        checks.append(("codedeploy:UpdateDeploymentGroup", arn, NOTHING_KNOWN))
    return checks


def _application_checks(action: str, params: Mapping[str, Any], region: str, account: str) -> list[Check]:
    return [
        (
            action,
            _codedeploy_arn(region, account, "application", params.get("applicationName")),
            NOTHING_KNOWN,
        )
    ]


def _deployment_config_checks(
    action: str, params: Mapping[str, Any], region: str, account: str
) -> list[Check]:
    name = params.get("deploymentConfigName")
    return [(action, _codedeploy_arn(region, account, "deploymentconfig", name), NOTHING_KNOWN)]


def _dynamodb_checks(action: str, params: Mapping[str, Any], region: str, account: str) -> list[Check]:
    """What IAM checks for a DynamoDB call: its action on the table it names (a Query or Scan of
    an index, on the index: "table/<name>/index/<index>"), or, for a transaction, each part's
    action on its own table (there is no TransactWriteItems grant). Resource types: "Actions,
    resources, and condition keys for Amazon DynamoDB" (table*, index); ARN format: "arn:aws:
    dynamodb:<region>:<account>:table/<name>" (the same reference's resource types table)."""

    def table(name: object, index: object = None) -> str:
        if not isinstance(name, str):
            return "*"
        arn = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        return f"{arn}/index/{index}" if isinstance(index, str) else arn

    if action in ("dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"):
        parts = sorted(
            {
                (_TRANSACTION_PARTS[kind], table(part.get("TableName")))
                for item in params.get("TransactItems", [])
                for kind, part in item.items()
            }
        )
        return [(part, on, NOTHING_KNOWN) for part, on in parts]
    return [(action, table(params.get("TableName"), params.get("IndexName")), NOTHING_KNOWN)]


def _parameter_checks(action: str, params: Mapping[str, Any], region: str, account: str) -> list[Check]:
    """What IAM checks for a Systems Manager parameter call: its action on each parameter named."""
    named = params.get(_PARAMETER_ACTIONS[action])
    names = named if isinstance(named, list) else [named]
    arns = [
        f"arn:aws:ssm:{region}:{account}:parameter/{name.removeprefix('/')}"
        for name in names
        if isinstance(name, str) and not name.startswith("arn:")
    ]
    return [(action, arn, NOTHING_KNOWN) for arn in arns] or [(action, "*", NOTHING_KNOWN)]


def _named_arn_checks(action: str, params: Mapping[str, Any], region: str, account: str) -> list[Check]:
    """The ARN the request names in its member for the action (a secret named by its name alone
    leaves the check on the action, as moto does)."""
    return [(action, _arn(params.get(_ARN_PARAMETER[action])) or "*", NOTHING_KNOWN)]


def _arn(value: object) -> str | None:
    """``value`` if it is an ARN."""
    return value if isinstance(value, str) and value.startswith("arn:") else None


_RESOLVERS: dict[str, Callable[[str, Mapping[str, Any], str, str], list[Check]]] = {
    **dict.fromkeys(_GROUP_ACTIONS, _group_checks),
    **dict.fromkeys(_LOAD_BALANCING_ACTIONS, _load_balancing_checks),
    **dict.fromkeys(_ALARM_ACTIONS, _alarm_checks),
    "ssm:SendCommand": _send_command_checks,
    **dict.fromkeys([*_DEPLOYMENT_GROUP_ACTIONS, "codedeploy:GetDeployment"], _deployment_group_checks),
    **dict.fromkeys(_APPLICATION_ACTIONS, _application_checks),
    "codedeploy:GetDeploymentConfig": _deployment_config_checks,
    **dict.fromkeys(_ARN_PARAMETER, _named_arn_checks),
    **dict.fromkeys(_PARAMETER_ACTIONS, _parameter_checks),
}


def _resolver(action: str) -> Callable[[str, Mapping[str, Any], str, str], list[Check]] | None:
    # Every DynamoDB call names its table (or a transaction, each part's).
    return _dynamodb_checks if action.startswith("dynamodb:") else _RESOLVERS.get(action)


def resolves(action: str) -> bool:
    """Whether :func:`resource_checks` knows what ``action`` is checked against."""
    return _resolver(action) is not None


def resource_checks(action: str, params: Mapping[str, Any], region: str, account: str) -> list[Check]:
    """What IAM checks ``action`` against, given the request's members: one check per resource
    the request names, each with what the request context holds of that resource (its tags)."""
    resolver = _resolver(action)
    assert resolver is not None, f"{action} is not resolved"
    return resolver(action, params, region, account)
