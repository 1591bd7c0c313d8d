"""The installed platform, as an operator's CLI sees it: one stack, its outputs, its state.

The same code talks to AWS (the default boto3 credentials, or a profile) and to the local
cloud (inside `LocalCloud`, every client reaches moto).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)
from canaryfleet.adapters.clients import (
    CONNECT_TIMEOUT_SECONDS,
    READ_TIMEOUT_SECONDS,
    reset_clients,
    use_profile,
)
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.errors import UnknownApplication
from canaryfleet.logic.analysis.words import metric_lines
from canaryfleet.logic.notify_messages import who_decided
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.rollout_record import RolloutRecord

from canaryfleet_cli.local_endpoint import NoLocalCloud, use_local_endpoint
from canaryfleet_cli.plain import hide_url_credentials, warn
from canaryfleet_cli.rollout_view import window_wait_text

DEFAULT_STACK = "canaryfleet"


class PlatformError(Exception):
    """Something an operator can fix, said plainly (no stack trace)."""


def sam_deploy_parameters(samconfig: Path = Path("samconfig.toml")) -> dict[str, Any]:
    """The parameters `sam deploy` reads from samconfig.toml's default environment.

    Its ``deploy`` entries over its ``global`` ones: "entries provided for a specific command take
    precedence over global entries" (AWS SAM Developer Guide, "AWS SAM CLI configuration file",
    Configuration precedence). `sam deploy --guided` writes the stack name and region under
    ``[default.deploy.parameters]``.
    """
    if not samconfig.is_file():
        return {}
    try:
        environment = tomllib.loads(samconfig.read_text()).get("default", {})
    except tomllib.TOMLDecodeError as exc:
        raise PlatformError(f"{samconfig} is not TOML ({exc}): pass --stack and --region") from None
    parameters: dict[str, Any] = {}
    for command in ("global", "deploy"):
        section = environment.get(command, {}) if isinstance(environment, dict) else {}
        given = section.get("parameters", {}) if isinstance(section, dict) else {}
        parameters.update(given if isinstance(given, dict) else {})
    return parameters


def default_stack(region: str | None, samconfig: Path = Path("samconfig.toml")) -> tuple[str, str | None]:
    """The stack `sam deploy` deploys (samconfig.toml's, else "canaryfleet") and where to look for it.

    The region: ``region`` (--region), else samconfig.toml's, as `sam deploy` reads it (its config
    file's value stands in for its --region), else None: the AWS configuration's (AWS_REGION,
    AWS_DEFAULT_REGION, the profile's region).
    """
    parameters = sam_deploy_parameters(samconfig)
    name, sam_region = parameters.get("stack_name"), parameters.get("region")
    stack = name if isinstance(name, str) and name else DEFAULT_STACK
    return stack, region or (sam_region if isinstance(sam_region, str) and sam_region else None)


def connect_platform(
    stack: str | None, region: str | None, profile: str | None, local: bool = False
) -> Platform:
    """The platform an operator command names: in AWS, or (``local``) `canaryfleet local up`'s.

    Without --stack, the stack samconfig.toml deploys, in its region unless --region says
    otherwise (:func:`default_stack`); a stack named on the command line is looked for in --region
    or the AWS configuration's.
    """
    if local:
        if profile or region:
            raise PlatformError("--local talks to `canaryfleet local up`: leave out --profile and --region")
        try:
            endpoint = use_local_endpoint()
        except NoLocalCloud as exc:
            raise PlatformError(str(exc)) from None
        stack = stack or endpoint.stack
    if not stack:
        stack, region = default_stack(region)
    return Platform.connect(stack, region, profile)


# botocore waits 60 s to connect and 60 s for each answer, and the CLI retries five times
# (main.py): a network that drops packets, or an endpoint that accepts and never answers, kept a
# command silent for five minutes. The CLI's own calls wait as the platform's functions do
# (CONNECT_TIMEOUT_SECONDS and READ_TIMEOUT_SECONDS, from canaryfleet.adapters.clients).


def aws_client_config(read_timeout: float | None = None) -> Config:
    """Bounded waits for a client the CLI makes (retries: AWS_RETRY_MODE and AWS_MAX_ATTEMPTS).

    Each of the CLI's own ``boto3.client`` calls passes it; the stores' clients have the platform's.
    """
    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS if read_timeout is None else read_timeout,
    )


# botocore's refusals for an IAM Identity Center (SSO) profile whose login is missing or over: no
# token cached for its session (SSOTokenLoadError), one it could not refresh (TokenRetrievalError),
# or one the SSO service no longer takes (UnauthorizedSSOTokenError). `aws sso login` gets a new one
# ("Configuring IAM Identity Center authentication with the AWS CLI", AWS CLI User Guide).
SSO_LOGIN_ERRORS = (SSOTokenLoadError, TokenRetrievalError, UnauthorizedSSOTokenError)

SetUpError = (
    NoCredentialsError
    | NoRegionError
    | ProfileNotFound
    | SSOTokenLoadError
    | TokenRetrievalError
    | UnauthorizedSSOTokenError
)


def set_up_problem(exc: SetUpError, profile: str | None) -> str:
    """What the operator's AWS set-up lacks, and how to give it, for botocore's own refusal."""
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found: set AWS_PROFILE (or pass --profile), or run `aws sso login`"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_DEFAULT_REGION"
    named = profile or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE")
    if isinstance(exc, SSO_LOGIN_ERRORS):
        login = f"aws sso login --profile {named}" if named else "aws sso login"
        whose = f" of profile {named!r}" if named else ""
        return f"the AWS SSO login{whose} has expired (or was never made): run `{login}`, then try again"
    return f"no AWS profile named {named!r} in your AWS config files"


@dataclass
class Platform:
    stack: str
    outputs: dict[str, str]
    # Registry entries already named as left out: the dashboard reads the registry at every
    # refresh, and says each once, not every few seconds.
    _told: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    @classmethod
    def connect(cls, stack: str, region: str | None = None, profile: str | None = None) -> Platform:
        """Read the stack's outputs; PlatformError for missing credentials or an unknown stack."""
        if profile:
            os.environ["AWS_PROFILE"] = profile
        if region:
            os.environ["AWS_DEFAULT_REGION"] = region
        reset_clients()
        try:
            if profile:
                # By name, so that it wins over keys in the environment (clients.use_profile).
                boto3.setup_default_session(profile_name=profile)
                use_profile(profile)
            stacks = boto3.client("cloudformation", config=aws_client_config())
            described = stacks.describe_stacks(StackName=stack)["Stacks"][0]
        except (NoCredentialsError, NoRegionError, ProfileNotFound, *SSO_LOGIN_ERRORS) as exc:
            raise PlatformError(set_up_problem(exc, profile)) from None
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", str(exc))
            # The region named: a stack "that does not exist" is most often in another region.
            raise PlatformError(f"stack {stack!r} in {stacks.meta.region_name}: {message}") from None
        except BotoCoreError as exc:
            where = os.environ.get("AWS_ENDPOINT_URL")
            if where:
                raise PlatformError(
                    hide_url_credentials(
                        f"{where} unreachable (is `canaryfleet local up` still running?): {exc}"
                    )
                ) from None
            raise PlatformError(f"AWS unreachable: {exc}") from None
        return cls(stack, {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])})

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise PlatformError(
                f"stack {self.stack} has no output {name}; is it a canaryfleet stack?"
            ) from None

    @property
    def store(self) -> DynamoRolloutStore:
        return DynamoRolloutStore(self.output("StateTableName"))

    def application(self, name: str) -> AppConfig:
        try:
            return SsmRegistry().get(name)
        except UnknownApplication as exc:
            raise PlatformError(str(exc)) from None

    def applications(self) -> list[AppConfig]:
        """Every application whose registry entry reads; each entry that does not, named on stderr
        (once for each way it is broken).

        Left out, not an error: one entry broken by hand must not hide every other application.
        Warned, not logged: the runtime's log line would be JSON, and stdout is the command's.
        """
        listing = SsmRegistry().listing()
        for why in listing.left_out.values():
            if why not in self._told:
                self._told.add(why)
                warn(f"{why}; its application is left out")
        return listing.found

    def decide(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a decision through the platform's decide function (the approval gate's path)."""
        # Invoke answers once the function has run: its timeout is 30 s (template.yaml's Globals).
        response = boto3.client("lambda", config=aws_client_config(read_timeout=60)).invoke(
            FunctionName=self.output("DecideFunctionName"), Payload=json.dumps(payload).encode()
        )
        body: dict[str, Any] = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise PlatformError(str(body.get("errorMessage", body)))
        return body

    def caller(self) -> str:
        """Who is deciding: the caller's IAM identity, recorded in the audit."""
        try:
            return str(boto3.client("sts", config=aws_client_config()).get_caller_identity()["Arn"])
        except (ClientError, BotoCoreError):
            return os.environ.get("USER", "unknown")


def running_rollout(platform: Platform, application: str) -> RolloutRecord | None:
    lock = platform.store.lock(application)
    if lock is None:
        return None
    return platform.store.get(application, lock.rollout_id)


def queued_behind(platform: Platform, record: RolloutRecord) -> str | None:
    """The rollout ``record`` waits for its turn behind, said for a person; None if it does not wait.

    A rollout's execution starts at its upload and waits in the application's queue while another
    holds the lock (one rollout at a time): its record is "started" with no stage recorded yet.
    """
    if record.outcome is not None or record.current_stage is not None:
        return None
    lock = platform.store.lock(record.application)
    if lock is None or lock.rollout_id == record.rollout_id:
        return None
    holder = platform.store.get(record.application, lock.rollout_id)
    return f"{holder.version} ({lock.rollout_id})" if holder is not None else lock.rollout_id


def live_version(platform: Platform, application: str) -> str | None:
    """The version the live group runs: the last released build's, None before any release."""
    revision = platform.store.last_good(application)
    if revision is None:
        return None
    return revision.key.rsplit("/", 1)[-1].removesuffix(".zip")


def current_weight(record: RolloutRecord) -> int:
    return record.current_weight


def status_of(platform: Platform, app: AppConfig) -> dict[str, Any]:
    """One application's current rollout, as `canaryfleet status` shows it."""
    record = running_rollout(platform, app.application)
    queued = platform.store.queue_length(app.application)
    if record is None:
        return {"application": app.application, "running": False, "queued": queued}
    waiting = record.wait_kind
    waiting_for = None
    if waiting == "approval":
        people = [*app.approvers.emails, *app.approvers.slack_user_ids]
        waiting_for = ", ".join(people) or "an approver"
    elif waiting == "deployment":
        waiting_for = "CodeDeploy"
    elif waiting == "bake":
        waiting_for = "the bake timer (or an alarm)"
    elif waiting == "window":
        waiting_for = window_wait_text(record, datetime.now(UTC))
    verdict = record.verdict
    return {
        "application": app.application,
        "running": True,
        "rollout_id": record.rollout_id,
        "version": record.version,
        "stage": record.current_stage.value if record.current_stage else None,
        "canary_weight": current_weight(record),
        "verdict": verdict.result if verdict else None,
        "verdict_reasons": verdict.reasons if verdict else [],
        "verdict_score": verdict.score if verdict else None,
        "verdict_metrics": metric_lines(verdict),
        "waiting_for": waiting_for,
        "waiting_since": _iso(record.wait_started_at) if waiting else None,
        "window_waits": [w.model_dump(mode="json") for w in record.window_waits.values()],
        "window_overrides": [o.model_dump(mode="json") for o in record.window_overrides],
        "commit": record.commit,
        "bundle_notes": record.bundle_notes,
        "queued": queued,
        "strategy": record.strategy or "in_place",
        "live_color": record.live_color,
        "release_color": record.release_color,
        "colors": record.color_text(),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if not start or not end:
        return None
    return round((end - start).total_seconds(), 1)


def history_of(platform: Platform, application: str) -> list[dict[str, Any]]:
    """Past rollouts, newest first, with outcome, reason, who decided and how long each took."""
    rows = []
    for record in platform.store.list_rollouts(application):
        decisions = [said for said in map(who_decided, record.audit) if said]
        rows.append(
            {
                "rollout_id": record.rollout_id,
                "version": record.version,
                "received_at": record.received_at.isoformat(),
                "outcome": record.outcome or record.status,
                "reason": record.reason or "",
                "decided_by": decisions,
                "seconds": _seconds(record.received_at, record.ended_at),
                "commit": record.commit,
                "strategy": record.strategy or "in_place",
                "live_color": record.live_color,
                "release_color": record.release_color,
            }
        )
    return sorted(rows, key=lambda r: str(r["received_at"] or ""), reverse=True)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
