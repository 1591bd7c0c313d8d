"""IAM facts the template's policy tests share."""

from __future__ import annotations

# Actions without resource-level permissions: the only ones a statement may grant on "*",
# since "*" is then the narrowest grant there is.
WITHOUT_RESOURCE_LEVEL = frozenset(
    {
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeRules",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:GetMetricData",
        "ec2:DescribeTags",
        # Service Authorization Reference, "Actions, resources, and condition keys for Amazon EC2
        # Auto Scaling": both List actions have no resource type.
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeScalingActivities",
        # "Actions, resources, and condition keys for AWS Systems Manager": the Run Command reads
        # of a command (GetCommandInvocation, like ListCommands and CancelCommand) name no
        # resource type.
        "ssm:GetCommandInvocation",
    }
)
