"""An onboarded application, as its fleet stack registers it (SSM parameter /canaryfleet/apps/<app>)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from canaryfleet.errors import RegistryEntryMalformed
from canaryfleet.models.artifact import AppName
from canaryfleet.models.policy import RolloutPolicy
from canaryfleet.models.problems import problems, short
from canaryfleet.settings import SPACES_AND_CONTROLS

REGISTRY_PREFIX = "/canaryfleet/apps/"

Strategy = Literal["in_place", "blue_green"]
Color = Literal["blue", "green"]


def other_color(color: Color) -> Color:
    return "green" if color == "blue" else "blue"


def registry_parameter(application: str) -> str:
    return f"{REGISTRY_PREFIX}{application}"


def fleet_stack_name(application: str) -> str:
    """The application's fleet stack, as the onboarding's deploy command and the local cloud name it."""
    return f"canaryfleet-app-{application}"


def fleet_template_prefix(application: str) -> str:
    """Where an application's fleet template goes in the artifact bucket (``aws cloudformation
    deploy --s3-bucket <ArtifactBucketName> --s3-prefix`` this): under no application's builds
    (a name starts with a letter), and matched by no rule of the bucket (they match archives)."""
    return f"_fleet-templates/{application}"


def fleet_template_key(application: str, template: bytes) -> str:
    """The key the AWS CLI gives the template under that prefix: its MD5, extension ``.template``
    (awscli's S3Uploader.upload_with_dedup, which `aws cloudformation deploy` calls)."""
    checksum = hashlib.md5(template, usedforsecurity=False).hexdigest()
    return f"{fleet_template_prefix(application)}/{checksum}.template"


class FleetGroup(BaseModel):
    """One side of the fleet (canary or live)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    deployment_group: str = Field(min_length=1, description="CodeDeploy deployment group name.")
    target_group_arn: str = Field(pattern=r"^arn:aws[a-z-]*:elasticloadbalancing:")
    auto_scaling_group: str = Field(min_length=1)
    alarms: tuple[str, ...] = Field(default=(), description="CloudWatch alarm names watched for this side.")


# Who may approve, as the fleet stack's parameters take them (fleet/template.yaml's ApproverEmails,
# ApproverSlackUserIds and SlackChannel allow these patterns, or nothing). An address has no space,
# comma, quote or backslash: one address (not "Name <address>"), one member of the list, and one
# JSON string in the registry entry the template writes. At most 200 characters: who decided is
# recorded with the address (models/decision.py, DECIDER_MAX_LENGTH, fits the longest). An entry
# that breaks them is refused when it is read (RegistryEntryMalformed), before any approver is asked.
# The characters refused are spelled out (settings.SPACES_AND_CONTROLS), not \s, which CloudFormation
# reads as ASCII whitespace only.
_NOT_IN_AN_ADDRESS = rf'@,"\\{SPACES_AND_CONTROLS}'
_ADDRESS_PART = rf"[^{_NOT_IN_AN_ADDRESS}]+"
APPROVER_EMAIL_PATTERN = rf"^{_ADDRESS_PART}@{_ADDRESS_PART}\.{_ADDRESS_PART}$"
# A Slack user id: "U" or "W" and 2 to 20 more characters, as the Slack app reads a request's user
# (models/approval.py, SlackUser): a longer id listed as an approver could never match anyone.
SLACK_USER_ID_MAX_LENGTH = 21
SLACK_USER_ID_PATTERN = rf"^[UW][A-Z0-9]{{2,{SLACK_USER_ID_MAX_LENGTH - 1}}}$"
SLACK_CHANNEL_ID_PATTERN = r"^[CGD][A-Z0-9]+$"
SLACK_CHANNEL_ID_MAX_LENGTH = 64
# A host name a listener rule's host-header condition can match (fleet/template.yaml's
# HostHeaders): "You must include at least one "." character. You can include only alphabetical
# characters after the final "." character" (ELB API Reference, HostHeaderConditionConfig).
HOST_NAME_PATTERN = r"^[A-Za-z0-9*?.-]*\.[A-Za-z]+$"
APPROVER_EMAIL_MAX_LENGTH = 200
ApproverEmail = Annotated[str, Field(max_length=APPROVER_EMAIL_MAX_LENGTH, pattern=APPROVER_EMAIL_PATTERN)]
SlackUserId = Annotated[str, Field(max_length=SLACK_USER_ID_MAX_LENGTH, pattern=SLACK_USER_ID_PATTERN)]
SlackChannelId = Annotated[
    str, Field(max_length=SLACK_CHANNEL_ID_MAX_LENGTH, pattern=SLACK_CHANNEL_ID_PATTERN)
]


class Approvers(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    emails: tuple[ApproverEmail, ...] = Field(default=())
    slack_user_ids: tuple[SlackUserId, ...] = Field(default=())
    slack_channel: SlackChannelId | None = Field(
        default=None, description="Channel id for requests and updates."
    )


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
    strategy: Strategy = Field(
        default="in_place",
        description="in_place: the canary group gets the build, then live is deployed in place. "
        "blue_green: the two groups are colors (blue: the stack's live group, green: its canary "
        "group); the idle color comes up with the build and takes all the traffic.",
    )
    scale_down_delay_seconds: int = Field(
        default=1_800,
        ge=0,
        le=86_400,
        description="blue_green: how long the old color stays warm after a release (a rollback "
        "until then is weights only), before it scales to zero through the drain.",
    )
    capacity_timeout_seconds: int = Field(
        default=600,
        ge=1,
        le=3_600,
        description="blue_green: longest wait for the idle color's healthy capacity; then the "
        "release ends, no traffic moved.",
    )
    color_capacity: int = Field(
        default=2,
        ge=1,
        le=1_000,
        description="blue_green: the fewest instances a release brings its color up with (the fleet "
        "stack's LiveMinSize); more when the live color runs more.",
    )
    live_color: Color | None = Field(
        default=None,
        description="blue_green, on a rollout's copy only: the color serving when it began "
        "(``live`` is that color's group, ``canary`` the other's). None in the registry.",
    )

    @model_validator(mode="after")
    def _colors_only_for_blue_green(self) -> AppConfig:
        if self.live_color is not None and self.strategy != "blue_green":
            raise ValueError("live_color is set only on a blue_green application's rollout copy")
        return self

    def colors(self) -> dict[Color, FleetGroup]:
        """blue_green: each color's group (blue: the registry's ``live``, green: its ``canary``)."""
        if self.live_color == "green":
            return {"blue": self.canary, "green": self.live}
        return {"blue": self.live, "green": self.canary}

    @property
    def release_color(self) -> Color | None:
        """blue_green, on a rollout's copy: the color that carries the release."""
        return other_color(self.live_color) if self.live_color is not None else None

    def for_release(self, live_color: Color) -> AppConfig:
        """The registry entry as a blue/green rollout drives it: ``live`` the serving color's
        group, ``canary`` the idle color's (which takes the build)."""
        colors = self.colors()
        return self.model_copy(
            update={
                "live_color": live_color,
                "live": colors[live_color],
                "canary": colors[other_color(live_color)],
            }
        )


def integer_bounds(field_name: str) -> tuple[int, int]:
    """The least and the most an integer field of AppConfig takes (its ``ge`` and ``le``)."""
    metadata = AppConfig.model_fields[field_name].metadata
    [least] = [int(m.ge) for m in metadata if hasattr(m, "ge")]
    [most] = [int(m.le) for m in metadata if hasattr(m, "le")]
    return least, most


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def read_registry_entry(name: str, value: str | bytes) -> AppConfig:
    """The entry SSM parameter ``name`` (``/canaryfleet/apps/<app>``) holds, as the platform reads
    it; RegistryEntryMalformed if it does not read as ``<app>``'s entry.

    Refused beside what the model refuses:
    - a key given twice in one object. JSON parsers keep the last (pydantic's too), and the fleet
      stack writes its ``RolloutPolicy`` parameter into the entry as it is given (CloudFormation
      cannot check JSON): a "policy" that closed itself and went on with ``"approvers": ...`` or
      ``"live": ...`` would replace the stack's own approvers or groups with others;
    - an entry whose ``application`` is not ``<app>``: every rollout of ``<app>`` would act on
      another application's name;
    - a ``live_color``: it is set on a rollout's copy only, and an entry holding one would swap
      the stack's groups for every release.
    A name outside the registry is the caller's mistake (ValueError): without ``<app>`` the entry
    could not be checked against it.
    """
    named = name.removeprefix(REGISTRY_PREFIX)
    if named == name or not named:
        raise ValueError(f"{name!r} is not a registry entry's name ({REGISTRY_PREFIX}<app>)")
    try:
        json.loads(value, object_pairs_hook=_unique_keys)
    except _DuplicateKey as twice:
        raise RegistryEntryMalformed(name, f"key {short(str(twice))} is given twice in one object") from None
    except (ValueError, RecursionError):
        pass  # not JSON, or nested past the parser's depth: the model says why, below
    try:
        config = AppConfig.model_validate_json(value)
    except ValidationError as exc:
        raise RegistryEntryMalformed(name, problems(exc)) from None
    if config.application != named:
        raise RegistryEntryMalformed(name, f"it names application {config.application!r}, not {named!r}")
    if config.live_color is not None:
        raise RegistryEntryMalformed(
            name, "live_color is set on a rollout's copy only, never in the registry"
        )
    return config


def load_balancer_dimension(listener_or_rule_arn: str) -> str:
    """``app/<name>/<id>`` from a listener or listener-rule ARN (the CloudWatch LoadBalancer dimension)."""
    resource = listener_or_rule_arn.split(":", 5)[5]
    return "/".join(resource.split("/")[1:4])


def target_group_dimension(target_group_arn: str) -> str:
    """``targetgroup/<name>/<id>`` (the CloudWatch TargetGroup dimension)."""
    return target_group_arn.split(":", 5)[5]


class GroupCapacity(BaseModel):
    """An Auto Scaling group's capacity as a blue/green release reads it."""

    model_config = ConfigDict(frozen=True)

    desired: int = Field(ge=0)
    instances: int = Field(ge=0, description="Instances in the group, leaving ones included.")
    healthy: int = Field(ge=0, description="InService and Healthy.")
    max_size: int | None = Field(default=None, ge=0, description="The group's MaxSize; None: not read.")
    launch_failures: tuple[str, ...] = Field(
        default=(), description="Why recent launches failed (the group's failed scaling activities)."
    )
