"""`canaryfleet app`: onboard an application (its fleet stack's parameters) and list those onboarded."""

from __future__ import annotations

import json
import re
import shlex
from enum import StrEnum
from pathlib import Path
from typing import Any

import boto3
import typer
import yaml
from botocore.exceptions import BotoCoreError, ClientError
from canaryfleet.models.app_config import REGISTRY_PREFIX, AppConfig
from canaryfleet.models.artifact import APP_NAME_PATTERN
from canaryfleet.models.policy import RolloutPolicy
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from canaryfleet_cli.local_endpoint import LocalOption
from canaryfleet_cli.options import ProfileOption, RegionOption
from canaryfleet_cli.plain import labelled
from canaryfleet_cli.platform import PlatformError, connect_platform

app_commands = typer.Typer(
    help="Onboard applications onto canaryfleet and list the onboarded ones.", no_args_is_help=True
)

FLEET_TEMPLATE = Path(__file__).resolve().parents[2] / "fleet" / "template.yaml"
STACK_PREFIX = "canaryfleet-app-"

_LISTENER_ARN = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:listener/app/.+$")
_REPOSITORY = re.compile(r"^(https://|ssh://|git@)[^'\"\s]+$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]+$")
_VPC = re.compile(r"^vpc-[0-9a-f]+$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]+$")
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_EMAIL = re.compile(r"^[^@\s,\"]+@[^@\s,\"]+\.[^@\s,\"]+$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]+$")
_SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]+$")
_INSTANCE_TYPE = re.compile(r"^[a-z0-9-]+\.[a-z0-9]+$")
_MAX_INSTANCE_TYPES = 6

console = Console()
errors = Console(stderr=True)


class Strategy(StrEnum):
    """How a release reaches the fleet (fleet/README.md, "Two strategies")."""

    IN_PLACE = "in_place"
    BLUE_GREEN = "blue_green"


def stack_name(application: str) -> str:
    return f"{STACK_PREFIX}{application}"


def _check(value: str, pattern: re.Pattern[str], what: str, option: str) -> str:
    if not pattern.match(value):
        raise typer.BadParameter(f"{value!r} is not {what}", param_hint=option)
    return value


def _split(values: list[str]) -> list[str]:
    """Repeated options and comma-separated values alike: ``--subnets a,b --subnets c``."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _validate_name(name: str) -> str:
    if not re.match(APP_NAME_PATTERN, name):
        raise typer.BadParameter(
            param_hint="NAME",
            message=f"{name!r} must be 2-40 lowercase letters, digits or '-', starting with a letter and "
            "not ending with '-' (it is the artifact key prefix and part of resource names)",
        )
    return name


def _policy_json(path: Path) -> str:
    """The rollout policy file (YAML or JSON) as the compact JSON the stack parameter takes."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--policy") from None
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{path} is not YAML or JSON: {exc}", param_hint="--policy") from None
    try:
        policy = RolloutPolicy.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "policy"
        raise typer.BadParameter(f"{path}: {where}: {first['msg']}", param_hint="--policy") from None
    return json.dumps(policy.model_dump(mode="json"), separators=(",", ":"))


def _template_path_for_humans() -> str:
    try:
        return str(FLEET_TEMPLATE.relative_to(Path.cwd()))
    except ValueError:
        return str(FLEET_TEMPLATE)


def deploy_command(application: str, parameter_file: Path) -> str:
    """The `aws cloudformation deploy` command (AWS CLI v2) that creates or updates the fleet stack."""
    parts = [
        ["aws", "cloudformation", "deploy"],
        ["--template-file", _template_path_for_humans()],
        ["--stack-name", stack_name(application)],
        ["--parameter-overrides", f"file://{parameter_file}"],
        ["--capabilities", "CAPABILITY_IAM"],
        ["--tags", f"application={application}"],
    ]
    return " \\\n  ".join(shlex.join(part) for part in parts)


@app_commands.command("onboard")
def onboard(
    name: str = typer.Argument(..., help="Application name: the artifact key prefix <name>/<version>.zip."),
    repo: str = typer.Option(..., "--repo", help="Git repository that ansible-pull runs on every instance."),
    branch: str = typer.Option("main", "--branch", help="Branch of --repo."),
    listener_arn: str = typer.Option(
        ..., "--listener-arn", help="Existing ALB listener for the weighted rule."
    ),
    priority: int = typer.Option(
        ..., "--priority", min=1, max=50000, help="Rule priority on the listener (unique per listener)."
    ),
    host_header: list[str] = typer.Option(
        [], "--host-header", help="Host the rule matches (repeat or comma-separate)."
    ),
    path_pattern: list[str] = typer.Option(
        [], "--path-pattern", help="Path the rule matches (repeat or comma-separate)."
    ),
    vpc_id: str = typer.Option(..., "--vpc-id", help="VPC of the instances and target groups."),
    subnets: list[str] = typer.Option(..., "--subnets", help="Instance subnets (repeat or comma-separate)."),
    alb_security_group: str = typer.Option(
        ..., "--alb-security-group", help="The load balancer's security group; only it reaches the instances."
    ),
    artifact_bucket: str = typer.Option(
        ..., "--artifact-bucket", help="The platform stack's ArtifactBucketName output."
    ),
    log_bucket: str = typer.Option(..., "--log-bucket", help="The platform stack's LogBucketName output."),
    approver_email: list[str] = typer.Option([], "--approver-email", help="May approve by email (repeat)."),
    approver_slack_id: list[str] = typer.Option(
        [], "--approver-slack-id", help="Slack user id (U...) who may approve (repeat)."
    ),
    slack_channel: str | None = typer.Option(None, "--slack-channel", help="Slack channel id (C...)."),
    drain_on_rebalance: bool = typer.Option(
        False, "--drain-on-rebalance", help="Drain on a rebalance recommendation, before the Spot notice."
    ),
    strategy: Strategy = typer.Option(
        Strategy.IN_PLACE,
        "--strategy",
        help="in_place (canary group, then live in place) or blue_green (two colors, traffic moves).",
    ),
    instance_types: list[str] = typer.Option(
        [], "--instance-types", help="Up to 6 instance types of one size (default: the template's)."
    ),
    policy: Path | None = typer.Option(
        None, "--policy", help="Rollout policy file (YAML or JSON); default: the platform's policy."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Parameter file to write (default: <name>-fleet-parameters.json)."
    ),
) -> None:
    """Write the fleet stack's parameter file for NAME and print the command that deploys it."""
    _validate_name(name)
    _check(repo, _REPOSITORY, "a git repository URL (https://, ssh:// or git@)", "--repo")
    _check(branch, _BRANCH, "a branch name", "--branch")
    _check(listener_arn, _LISTENER_ARN, "an Application Load Balancer listener ARN", "--listener-arn")
    _check(vpc_id, _VPC, "a VPC id", "--vpc-id")
    _check(alb_security_group, _SECURITY_GROUP, "a security group id", "--alb-security-group")
    _check(artifact_bucket, _BUCKET, "a bucket name", "--artifact-bucket")
    _check(log_bucket, _BUCKET, "a bucket name", "--log-bucket")
    hosts, paths = _split(host_header), _split(path_pattern)
    if not hosts and not paths:
        raise typer.BadParameter(
            "give --host-header, --path-pattern or both: the listener rule needs a condition",
            param_hint="--host-header / --path-pattern",
        )
    subnet_ids = [_check(subnet, _SUBNET, "a subnet id", "--subnets") for subnet in _split(subnets)]
    if not subnet_ids:
        raise typer.BadParameter("give at least one subnet", param_hint="--subnets")
    emails = [
        _check(email, _EMAIL, "an email address", "--approver-email") for email in _split(approver_email)
    ]
    slack_ids = [
        _check(user, _SLACK_USER, "a Slack user id (U...)", "--approver-slack-id")
        for user in _split(approver_slack_id)
    ]
    if slack_channel is not None:
        _check(slack_channel, _SLACK_CHANNEL, "a Slack channel id (C...)", "--slack-channel")
    types = [
        _check(kind, _INSTANCE_TYPE, "an instance type", "--instance-types")
        for kind in _split(instance_types)
    ]
    if len(types) > _MAX_INSTANCE_TYPES:
        raise typer.BadParameter(
            f"at most {_MAX_INSTANCE_TYPES} instance types", param_hint="--instance-types"
        )

    parameters: dict[str, str] = {
        "Application": name,
        "AnsibleRepositoryUrl": repo,
        "AnsibleBranch": branch,
        "ArtifactBucketName": artifact_bucket,
        "LogBucketName": log_bucket,
        "VpcId": vpc_id,
        "SubnetIds": ",".join(subnet_ids),
        "LoadBalancerSecurityGroupId": alb_security_group,
        "ListenerArn": listener_arn,
        "ListenerRulePriority": str(priority),
        "HostHeaders": ",".join(hosts),
        "PathPatterns": ",".join(paths),
        "Strategy": strategy.value,
        "ApproverEmails": ",".join(emails),
        "ApproverSlackUserIds": ",".join(slack_ids),
        "SlackChannel": slack_channel or "",
        "DrainOnRebalance": "true" if drain_on_rebalance else "false",
        "RolloutPolicy": _policy_json(policy) if policy is not None else "",
    }
    if types:
        parameters["InstanceTypes"] = ",".join(types)

    target = output or Path(f"{name}-fleet-parameters.json")
    document = [{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()]
    try:
        target.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {target}: {exc.strerror}", param_hint="--output") from None
    errors.print(Text(f"wrote {target}"))
    if emails:
        errors.print(Text(APPROVER_EMAIL_HINT))
    typer.echo(deploy_command(name, target))


APPROVER_EMAIL_HINT = (
    "SNS emails each approver a confirmation link at the first upload. Ask them to copy that link "
    "without opening it, and run `canaryfleet approvers confirm` with it: a mail scanner opening the "
    "unsubscribe link of an approval email can then not stop their approval emails "
    "(`canaryfleet approvers list` shows who is protected)."
)


def _registered(ssm: Any) -> list[AppConfig]:
    found: list[AppConfig] = []
    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path=REGISTRY_PREFIX.rstrip("/"), Recursive=True
    )
    for page in pages:
        for parameter in page["Parameters"]:
            try:
                found.append(AppConfig.model_validate_json(parameter["Value"]))
            except ValidationError as exc:
                errors.print(Text(f"skipped {parameter['Name']}: {exc.errors()[0]['msg']}", style="yellow"))
    return sorted(found, key=lambda config: config.application)


@app_commands.command("list")
def list_applications(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
    stack: str | None = typer.Option(
        None,
        "--stack",
        help="The platform stack to check first (the registry is the account's and region's, "
        "shared by the platform there): refused if it is not deployed where you look.",
    ),
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    local: bool = LocalOption,
) -> None:
    """Show the onboarded applications (their registry entries in SSM Parameter Store)."""
    try:
        if stack is not None or local:
            # As the other commands connect: the platform's stack must be there (or local up's).
            connect_platform(stack, region, profile, local)
            applications = _registered(boto3.client("ssm"))
        else:
            session = boto3.session.Session(profile_name=profile, region_name=region)
            applications = _registered(session.client("ssm"))
    except PlatformError as exc:
        errors.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except (BotoCoreError, ClientError) as exc:
        errors.print(
            labelled(f"cannot read the registry ({REGISTRY_PREFIX}*): ", "red", exc), highlight=False
        )
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps([config.model_dump(mode="json") for config in applications], indent=2))
        return
    table = Table(title=f"onboarded applications ({len(applications)})")
    for column in ("application", "canary group", "live group", "approvers", "slack", "policy"):
        table.add_column(column)
    for config in applications:
        approvers = len(config.approvers.emails) + len(config.approvers.slack_user_ids)
        table.add_row(  # registry values as written (a group name may hold "[...]"), not markup
            *(
                Text(value)
                for value in (
                    config.application,
                    config.canary.auto_scaling_group,
                    config.live.auto_scaling_group,
                    str(approvers),
                    config.approvers.slack_channel or "-",
                    "custom" if config.policy else "default",
                )
            )
        )
    console.print(table)
