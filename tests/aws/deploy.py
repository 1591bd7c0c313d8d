"""Deploy and tear down what the story needs in a real account: platform, load balancer, one fleet.

Kept apart from the story: against a local cloud the stacks already exist and none of this runs.
The platform goes up the way a platform team installs it (`make build`, then `sam deploy` from
`.venv-sam`); the fleet's parameters come from `canaryfleet app onboard`. Teardown deletes in the
reverse order and keeps going past a failed step, so one stuck resource does not leave the rest
running; it also removes what the platform stack keeps on purpose (its buckets and table are
`DeletionPolicy: Retain`), which a real installation would keep.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from typer.testing import CliRunner

from canaryfleet_cli.main import app as cli_app
from canaryfleet_local.fleet import put_fleet_template
from tests.aws.config import REPO_ROOT, DeployConfig, StoryConfig

ALB_TEMPLATE = Path(__file__).resolve().parent / "alb.yaml"
FLEET_TEMPLATE = REPO_ROOT / "fleet" / "template.yaml"
SAM = REPO_ROOT / ".venv-sam" / "bin" / "sam"
# CreateStack's TemplateBody limit; a larger fleet template goes through S3 (TemplateURL).
TEMPLATE_BODY_LIMIT = 51_200
# The rollout policy of the run: a real bake with analysis and a real approval, kept short.
ACCEPTANCE_POLICY = {
    "steps": [
        {"kind": "set_weight", "weight": 20},
        {"kind": "bake", "duration_seconds": 300, "analysis": {"min_requests": 50}},
        {"kind": "approval", "timeout_seconds": 3_600, "on_timeout": "rollback"},
    ],
    "deployment_timeout_seconds": 1_800,
}
TAGS = {"project": "canaryfleet", "purpose": "acceptance"}
_STACK_WAIT = {"Delay": 15, "MaxAttempts": 240}  # up to an hour per stack


class DeployFailed(RuntimeError):
    """A stack or step of the deploy failed; the message says which and why."""


@dataclass(frozen=True)
class Deployed:
    platform_outputs: dict[str, str]
    load_balancer_dns: str
    fleet_outputs: dict[str, str]


def _session(story: StoryConfig) -> boto3.Session:
    return boto3.Session(profile_name=story.profile, region_name=story.region)


def _outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def _exists(cloudformation: Any, stack: str) -> bool:
    try:
        status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return False
        raise
    return str(status) != "DELETE_COMPLETE"


def _run(command: list[str], say: Callable[[str], None], env: dict[str, str] | None = None) -> None:
    say("$ " + " ".join(command))
    finished = subprocess.run(command, cwd=REPO_ROOT, env=env, check=False)
    if finished.returncode != 0:
        raise DeployFailed(f"{command[0]} {command[1]} exited {finished.returncode}")


@dataclass(frozen=True)
class TemplateBucket:
    """Where a fleet template goes before CreateStack reads it, as fleet/README.md's `aws
    cloudformation deploy --s3-bucket --s3-prefix` puts it (``put_fleet_template``), and its
    path-style URL (with the object's version in a versioned bucket)."""

    s3: Any
    bucket: str
    application: str

    def upload(self, body: str) -> str:
        return put_fleet_template(self.s3, self.bucket, self.application, body)


def _create_stack(
    cloudformation: Any,
    stack: str,
    template: Path,
    parameters: dict[str, str],
    say: Callable[[str], None],
    through: TemplateBucket | None = None,
) -> dict[str, str]:
    body = template.read_text()
    if through is None and len(body.encode()) > TEMPLATE_BODY_LIMIT:
        raise DeployFailed(
            f"{template} is over CreateStack's {TEMPLATE_BODY_LIMIT}-byte TemplateBody limit: deploy it"
            " through a bucket"
        )
    say(f"create stack {stack}")
    source = {"TemplateURL": through.upload(body)} if through is not None else {"TemplateBody": body}
    cloudformation.create_stack(
        StackName=stack,
        **source,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
        OnFailure="DELETE",
        Tags=[{"Key": k, "Value": v} for k, v in TAGS.items()],
    )
    try:
        cloudformation.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig=_STACK_WAIT)
    except BotoCoreError as exc:
        raise DeployFailed(f"stack {stack} was not created: {exc}") from None
    return _outputs(cloudformation, stack)


def deploy_platform(deploy: DeployConfig, story: StoryConfig, say: Callable[[str], None]) -> None:
    """`make build`, then `sam deploy` of the built template as the stack the story names."""
    _run(["make", "build"], say)
    command = [
        str(SAM),
        "deploy",
        "--stack-name",
        story.platform_stack,
        "--region",
        story.region,
        "--resolve-s3",
        "--s3-prefix",
        story.platform_stack,
        "--capabilities",
        "CAPABILITY_IAM",
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
        "--tags",
        *(f"{k}={v}" for k, v in TAGS.items()),
    ]
    if deploy.samconfig_env:
        command += ["--config-env", deploy.samconfig_env]
    if story.profile:
        command += ["--profile", story.profile]
    _run(command, say, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})


def fleet_parameters(
    deploy: DeployConfig, story: StoryConfig, platform: dict[str, str], alb: dict[str, str], folder: Path
) -> dict[str, str]:
    """The fleet stack's parameters, written by `canaryfleet app onboard` (plus what it has no option for)."""
    policy = folder / "acceptance-policy.json"
    policy.write_text(json.dumps(ACCEPTANCE_POLICY))
    target = folder / "fleet-parameters.json"
    arguments = [
        "app",
        "onboard",
        story.application,
        "--repo",
        deploy.ansible_repo,
        "--branch",
        deploy.ansible_branch,
        "--listener-arn",
        alb["ListenerArn"],
        "--priority",
        "10",
        "--host-header",
        story.host_header,
        "--vpc-id",
        deploy.vpc_id,
        "--subnets",
        ",".join(deploy.subnets_of_instances),
        "--alb-security-group",
        alb["SecurityGroupId"],
        "--artifact-bucket",
        platform["ArtifactBucketName"],
        "--log-bucket",
        platform["LogBucketName"],
        "--approver-email",
        story.approver_email,
        "--instance-types",
        ",".join(deploy.instance_types),
        "--policy",
        str(policy),
        "--output",
        str(target),
    ]
    if story.profile:  # onboarding reads the listener's load balancer (its target groups in use)
        arguments += ["--profile", story.profile]
    result = CliRunner().invoke(cli_app, arguments)
    if result.exit_code != 0:
        raise DeployFailed(f"canaryfleet app onboard exited {result.exit_code}: {result.output.strip()}")
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in json.loads(target.read_text())}
    # `app onboard` has no option for the drain document; the platform names it in its outputs.
    parameters["LogSyncDocumentName"] = platform["DrainDocumentName"]
    return parameters


def deploy_all(
    deploy: DeployConfig, story: StoryConfig, folder: Path, say: Callable[[str], None]
) -> Deployed:
    """Platform, load balancer and fleet, in that order; DeployFailed on the first that fails."""
    cloudformation = _session(story).client("cloudformation")
    deploy_platform(deploy, story, say)
    platform = _outputs(cloudformation, story.platform_stack)
    alb = _create_stack(
        cloudformation,
        deploy.alb_stack,
        ALB_TEMPLATE,
        {
            "VpcId": deploy.vpc_id,
            "SubnetIds": ",".join(deploy.alb_subnets),
            "IngressCidr": deploy.ingress_cidr,
        },
        say,
    )
    parameters = fleet_parameters(deploy, story, platform, alb, folder)
    # As fleet/README.md's command deploys it: through the artifact bucket (`--s3-bucket`).
    bucket = TemplateBucket(_session(story).client("s3"), platform["ArtifactBucketName"], story.application)
    fleet = _create_stack(cloudformation, story.fleet_stack_name, FLEET_TEMPLATE, parameters, say, bucket)
    return Deployed(platform, alb["DnsName"], fleet)


# --- teardown ---------------------------------------------------------------------------------
def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every version and delete marker (the buckets are versioned), then the bucket; how many."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for start in range(0, len(doomed), 1000):  # DeleteObjects takes up to 1,000 keys
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True})
        deleted += len(doomed)
    s3.delete_bucket(Bucket=bucket)
    return deleted


def _empty(s3: Any, bucket: str, say: Callable[[str], None]) -> None:
    say(f"deleted {bucket} ({empty_bucket(s3, bucket)} versions)")


def _delete_stack(cloudformation: Any, stack: str, say: Callable[[str], None]) -> None:
    if not _exists(cloudformation, stack):
        return
    say(f"delete stack {stack}")
    cloudformation.delete_stack(StackName=stack)
    cloudformation.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig=_STACK_WAIT)


def teardown_all(deploy: DeployConfig, story: StoryConfig, say: Callable[[str], None]) -> list[str]:
    """Delete everything deploy_all may have created, whatever state it is in; the steps that failed."""
    session = _session(story)
    cloudformation = session.client("cloudformation")
    failures: list[str] = []

    def step(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except (BotoCoreError, ClientError) as exc:
            failures.append(f"{what}: {exc}")
            say(f"teardown: {what} failed: {exc}")

    retained: dict[str, str] = {}

    def read_retained() -> None:
        if _exists(cloudformation, story.platform_stack):
            outputs = _outputs(cloudformation, story.platform_stack)
            retained.update(
                {
                    k: outputs[k]
                    for k in ("ArtifactBucketName", "LogBucketName", "StateTableName")
                    if k in outputs
                }
            )

    step("read the platform's outputs", read_retained)
    # The fleet goes first, while the platform's drain functions still answer its termination hooks.
    step(
        f"delete {story.fleet_stack_name}", lambda: _delete_stack(cloudformation, story.fleet_stack_name, say)
    )
    step(f"delete {deploy.alb_stack}", lambda: _delete_stack(cloudformation, deploy.alb_stack, say))
    step(f"delete {story.platform_stack}", lambda: _delete_stack(cloudformation, story.platform_stack, say))
    s3 = session.client("s3")
    for output in ("ArtifactBucketName", "LogBucketName"):
        if output in retained:
            step(f"empty and delete {retained[output]}", functools.partial(_empty, s3, retained[output], say))
    if "StateTableName" in retained:
        table = retained["StateTableName"]
        step(f"delete table {table}", lambda: session.client("dynamodb").delete_table(TableName=table))
    logs = session.client("logs")

    def delete_function_logs() -> None:
        # The stack deletes its functions' log group (FunctionLogs), but Lambda makes it again if
        # a function runs after that and before the function is gone.
        prefix = f"/canaryfleet/{story.platform_stack}/"
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
            for group in page["logGroups"]:
                logs.delete_log_group(logGroupName=group["logGroupName"])

    step("delete the functions' log groups", delete_function_logs)
    return failures
