"""An onboarded application, as its fleet stack registers it (SSM parameter /canaryfleet/apps/<app>)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from canaryfleet.models.artifact import AppName
from canaryfleet.models.policy import RolloutPolicy

REGISTRY_PREFIX = "/canaryfleet/apps/"


def registry_parameter(application: str) -> str:
    return f"{REGISTRY_PREFIX}{application}"


class FleetGroup(BaseModel):
    """One side of the fleet (canary or live)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    deployment_group: str = Field(min_length=1, description="CodeDeploy deployment group name.")
    target_group_arn: str = Field(pattern=r"^arn:aws[a-z-]*:elasticloadbalancing:")
    auto_scaling_group: str = Field(min_length=1)
    alarms: tuple[str, ...] = Field(default=(), description="CloudWatch alarm names watched for this side.")


class Approvers(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    emails: tuple[str, ...] = Field(default=())
    slack_user_ids: tuple[str, ...] = Field(default=())
    slack_channel: str | None = Field(default=None, description="Channel id for requests and updates.")


class AppConfig(BaseModel):
    """Everything the platform needs about one application."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    application: AppName
    codedeploy_application: str = Field(min_length=1)
    listener_rule_arn: str = Field(
        # The fleet stack's own rule: ShiftTraffic may modify only rules tagged as a fleet's,
        # never a listener (template.yaml, ShiftTrafficFunction's policy).
        pattern=r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:listener-rule/app/.+$",
        description="The weighted forward rule (the fleet stack's) whose weights the rollout sets.",
    )
    canary: FleetGroup
    live: FleetGroup
    approvers: Approvers = Field(default_factory=Approvers)
    policy: RolloutPolicy | None = Field(default=None, description="None: the platform default policy.")
    drain_on_rebalance: bool = Field(
        default=False, description="Start a drain on a rebalance recommendation."
    )
    log_prefix: str | None = Field(default=None, description="Prefix in the log bucket; default <app>/.")


def load_balancer_dimension(listener_or_rule_arn: str) -> str:
    """``app/<name>/<id>`` from a listener or listener-rule ARN (the CloudWatch LoadBalancer dimension)."""
    resource = listener_or_rule_arn.split(":", 5)[5]
    return "/".join(resource.split("/")[1:4])


def target_group_dimension(target_group_arn: str) -> str:
    """``targetgroup/<name>/<id>`` (the CloudWatch TargetGroup dimension)."""
    return target_group_arn.split(":", 5)[5]
