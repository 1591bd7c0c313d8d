"""Configuration of the acceptance suite: what the story talks to, and what the deploy creates.

Two models, kept apart on purpose. :class:`StoryConfig` is everything the story needs once the
stacks exist (region, an optional endpoint, stack names, the application), so the same story
runs against a real account or against a local cloud kept up by `canaryfleet local up`.
:class:`DeployConfig` is what only a real account needs (the VPC, subnets and Ansible repository
the fleet stack takes). Both read ``CANARYFLEET_AWS_*`` environment variables; a samconfig.toml
profile (``CANARYFLEET_AWS_SAMCONFIG_ENV``) may give the platform stack's name and region, and an
explicit variable always wins over it.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from canaryfleet.models.app_config import fleet_stack_name
from canaryfleet.models.artifact import APP_NAME_PATTERN
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "CANARYFLEET_AWS_"
REPO_ROOT = Path(__file__).resolve().parents[2]
SAMCONFIG = REPO_ROOT / "samconfig.toml"

_REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"
_STACK = r"^[A-Za-z][A-Za-z0-9-]{0,127}$"
_EMAIL = r"^[^@\s,\"]+@[^@\s,\"]+\.[^@\s,\"]+$"


class AcceptanceConfigError(ValueError):
    """The suite's configuration is missing or wrong; the message names the variable to set."""


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]


class StoryConfig(BaseSettings):
    """What the story (publish, watch, approve through the link, scale in, check the manifest) reads."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    region: str = Field(default="us-east-1", pattern=_REGION)
    endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="Every AWS call goes here when set (a local cloud); None: AWS's own endpoints.",
    )
    profile: str | None = Field(default=None, description="AWS profile; None: boto3's default chain.")
    platform_stack: str = Field(default="canaryfleet-acceptance", pattern=_STACK)
    application: str = Field(default="hello-acc", pattern=APP_NAME_PATTERN)
    fleet_stack: str | None = Field(
        default=None, pattern=_STACK, description="None: `canaryfleet app onboard`'s stack name for it."
    )
    approver_email: str = Field(
        default="canaryfleet-acceptance@example.com",
        pattern=_EMAIL,
        description="The approver the links are signed for; example.com receives no mail (RFC 2606).",
    )
    traffic_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="Base URL the story sends requests to (the load balancer); None: something else does.",
    )
    host_header: str = Field(default="hello-acc.canaryfleet.test", pattern=r"^[a-z0-9.-]+$")
    requests_per_second: float = Field(default=5.0, gt=0, le=50)
    rollout_timeout_seconds: int = Field(default=3_600, ge=1)
    drain_timeout_seconds: int = Field(default=900, ge=1)
    poll_seconds: float = Field(default=10.0, gt=0)

    @property
    def fleet_stack_name(self) -> str:
        return self.fleet_stack or fleet_stack_name(self.application)


class DeployConfig(BaseSettings):
    """What deploying to a real account needs beyond the story's names."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]+$")
    alb_subnets: CommaList = Field(min_length=2, description="Public subnets in two AZs for the test's ALB.")
    instance_subnets: CommaList = Field(
        default_factory=list,
        description="Subnets of the instances, with a way out (NAT, or public IPs); default: alb_subnets.",
    )
    ansible_repo: str = Field(pattern=r"^(https://|ssh://|git@)[^'\"\s]+$")
    ansible_branch: str = Field(default="main", pattern=r"^[A-Za-z0-9._/-]+$")
    instance_types: CommaList = Field(default_factory=lambda: ["t3.small", "t3a.small"], min_length=1)
    ingress_cidr: str = Field(
        default="0.0.0.0/0", pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$", description="Who may reach the ALB."
    )
    alb_stack: str = Field(default="canaryfleet-acceptance-alb", pattern=_STACK)
    samconfig_env: str | None = Field(default=None, description="samconfig.toml profile for `sam deploy`.")

    @field_validator("alb_subnets", "instance_subnets", "instance_types", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("alb_subnets", "instance_subnets")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        for subnet in value:
            if not re.match(r"^subnet-[0-9a-f]+$", subnet):
                raise ValueError(f"{subnet!r} is not a subnet id")
        return value

    @field_validator("instance_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        if len(value) > 6:
            raise ValueError("at most 6 instance types (the fleet template's limit)")
        for kind in value:
            if not re.match(r"^[a-z0-9-]+\.[a-z0-9]+$", kind):
                raise ValueError(f"{kind!r} is not an instance type")
        return value

    @property
    def subnets_of_instances(self) -> list[str]:
        return self.instance_subnets or self.alb_subnets


def samconfig_values(environment: str, samconfig: Path = SAMCONFIG) -> dict[str, str]:
    """The stack name and region of one samconfig.toml profile (its global, then deploy parameters)."""
    if not samconfig.is_file():
        raise AcceptanceConfigError(f"{ENV_PREFIX}SAMCONFIG_ENV={environment} but {samconfig} does not exist")
    config = tomllib.loads(samconfig.read_text())
    if environment not in config:
        known = ", ".join(sorted(k for k, v in config.items() if isinstance(v, dict)))
        raise AcceptanceConfigError(f"samconfig.toml has no profile {environment!r} (it has: {known})")
    found: dict[str, str] = {}
    for section in ("global", "deploy"):
        parameters = config[environment].get(section, {}).get("parameters", {})
        for ours, theirs in (("platform_stack", "stack_name"), ("region", "region")):
            if isinstance(parameters.get(theirs), str):
                found[ours] = parameters[theirs]
    return found


def _from_samconfig(samconfig: Path) -> dict[str, str]:
    environ = os.environ
    profile = environ.get(f"{ENV_PREFIX}SAMCONFIG_ENV")
    if not profile:
        return {}
    values = samconfig_values(profile, samconfig)
    # An explicit variable wins over the profile.
    return {key: value for key, value in values.items() if f"{ENV_PREFIX}{key.upper()}" not in environ}


def _readable(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    said = []
    for error in errors():
        field = ".".join(str(part) for part in error["loc"])
        said.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
    return "; ".join(said)


def load_story_config(samconfig: Path = SAMCONFIG) -> StoryConfig:
    """The story's configuration from the environment (and samconfig.toml), or AcceptanceConfigError."""
    try:
        return StoryConfig(**_from_samconfig(samconfig))  # type: ignore[arg-type]
    except ValueError as exc:
        raise AcceptanceConfigError(_readable(exc)) from None


def load_deploy_config() -> DeployConfig:
    """The deploy's configuration from the environment, or AcceptanceConfigError naming what is missing."""
    try:
        return DeployConfig()
    except ValueError as exc:
        raise AcceptanceConfigError(_readable(exc)) from None
