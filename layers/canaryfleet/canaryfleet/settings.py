"""Function settings: the environment the template gives a function, as pydantic models.

Logic never reads ``os.environ``; handlers call :func:`load_settings` once per invocation.
Parsing is cached on the relevant variables' values, so it costs nothing after the first
call and stays correct when several functions share one interpreter (the local cloud).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from canaryfleet.errors import ConfigurationError

ModelT = TypeVar("ModelT", bound=BaseModel)

# For a negated class in a pattern that a stack parameter and a model both hold a value to: the
# control characters (raw in a JSON string they break it), the space and every other Unicode
# White_Space character. Spelled out, not \s: CloudFormation reads patterns as Java does ("All
# regular expressions in CloudFormation conform to the Java regex syntax", CloudFormation User
# Guide, "Using regular expressions in CloudFormation templates"), whose \s is ASCII whitespace
# only, while pydantic's (Rust's) and Python's \s is Unicode's: a pasted no-break space would pass
# the stack and fail the model. Java, Rust and Python read \xhh and \uhhhh alike.
SPACES_AND_CONTROLS = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A base URL for emailed links: no space, control character, query or fragment (template.yaml's
# ApprovalPageUrl allows this pattern, or nothing).
APPROVAL_URL_PATTERN = rf"^https?://[^?#{SPACES_AND_CONTROLS}]+$"

# Variables several functions take, declared once.
NotificationTopicArn = Annotated[str, Field(alias="NOTIFICATION_TOPIC_ARN", pattern=r"^arn:aws[a-z-]*:sns:")]
ApprovalEmailTopicArn = Annotated[
    str, Field(alias="APPROVAL_EMAIL_TOPIC_ARN", pattern=r"^arn:aws[a-z-]*:sns:")
]
ApprovalExpiryStateMachineArn = Annotated[
    str, Field(alias="APPROVAL_EXPIRY_STATE_MACHINE_ARN", pattern=r"^arn:aws[a-z-]*:states:")
]
DrainQueueUrl = Annotated[str, Field(alias="DRAIN_QUEUE_URL", pattern=r"^https://")]


class BaseSettings(BaseModel):
    """Variables every function has (Globals in template.yaml)."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    state_table_name: str = Field(alias="STATE_TABLE_NAME", min_length=3)


class AlarmEventSettings(BaseSettings):
    """The alarm handler: its idempotency table (one effect per alarm state change)."""

    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME", min_length=3)
    approval_expiry_state_machine_arn: ApprovalExpiryStateMachineArn


class ReleaseTurnSettings(BaseSettings):
    """release_turn: a recovery's take-over settles the approval the stopped rollout waited for,
    and tells the recovery how long the stopped execution's last task may still run."""

    approval_expiry_state_machine_arn: ApprovalExpiryStateMachineArn
    stopped_task_grace_seconds: int = Field(default=35, alias="STOPPED_TASK_GRACE_SECONDS", ge=1, le=900)


class RecordStageSettings(BaseSettings):
    notification_topic_arn: NotificationTopicArn


RolloutStateMachineArn = Annotated[
    str, Field(alias="ROLLOUT_STATE_MACHINE_ARN", pattern=r"^arn:aws[a-z-]*:states:")
]


class RolloutWorkflowSettings(BaseSettings):
    """execution_ended: the rollout state machine, whose ended executions it recovers."""

    rollout_state_machine_arn: RolloutStateMachineArn


class StartRolloutSettings(RecordStageSettings):
    rollout_state_machine_arn: RolloutStateMachineArn
    approval_email_topic_arn: ApprovalEmailTopicArn
    load_balancer_metrics_period: int = Field(
        default=60,
        ge=1,
        le=60,
        alias="LOAD_BALANCER_METRICS_PERIOD",
        description="Seconds between the load balancer's datapoints: 60 on AWS, 1 on the local cloud.",
    )


def _aliases(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(field.alias or name for name, field in model.model_fields.items())


@lru_cache(maxsize=64)
def _parse(model: type[ModelT], values: tuple[tuple[str, str], ...]) -> ModelT:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigurationError(f"{model.__name__}: " + "; ".join(problems)) from None


def load_settings(model: type[ModelT]) -> ModelT:
    """Parse the variables ``model`` declares from the environment (cached)."""
    values = tuple((alias, os.environ[alias]) for alias in _aliases(model) if alias in os.environ)
    return cast(ModelT, _parse(model, values))


# --- drains -------------------------------------------------------------------------------
class DrainRequestSettings(BaseSettings):
    drain_queue_url: DrainQueueUrl


class DrainDispatchSettings(RecordStageSettings):
    """The drain dispatcher and completer: the document, the log bucket, the alert topic, and the
    drain queue, where each command sent is checked ``DRAIN_CHECK_SECONDS`` later."""

    drain_document_name: str = Field(alias="DRAIN_DOCUMENT_NAME", pattern=r"^[a-zA-Z0-9_.-]{3,128}$")
    log_bucket_name: str = Field(alias="LOG_BUCKET_NAME", min_length=3, max_length=63)
    drain_queue_url: DrainQueueUrl
    # At most models.drain.HOOK_RENEW_SECONDS (settings sit below the models): a check that finds
    # its command not yet ended renews the instance's termination hook, whose timeout is 300 s.
    drain_check_seconds: int = Field(default=60, alias="DRAIN_CHECK_SECONDS", ge=1, le=240)


class DrainQueueDispatchSettings(DrainDispatchSettings):
    """The dispatcher alone: its queue is also where it makes failed orders visible again sooner."""


# --- approval gate ------------------------------------------------------------------------
_SM_ARN = r"^arn:aws[a-z-]*:secretsmanager:"  # a Secrets Manager secret


class SlackAppSettings(BaseSettings):
    """Functions that talk to Slack: the Slack app's secret."""

    slack_secret_arn: str = Field(alias="SLACK_SECRET_ARN", pattern=_SM_ARN)


class DecideSettings(SlackAppSettings):
    """The decide function: Slack (settling an approval) and the notification topic (overrides)."""

    notification_topic_arn: NotificationTopicArn


class ApprovalPageSettings(SlackAppSettings):
    signing_key_secret_arn: str = Field(alias="SIGNING_KEY_SECRET_ARN", pattern=_SM_ARN)


class RequestApprovalSettings(RecordStageSettings):
    signing_key_secret_arn: str = Field(alias="SIGNING_KEY_SECRET_ARN", pattern=_SM_ARN)
    slack_secret_arn: str = Field(alias="SLACK_SECRET_ARN", pattern=_SM_ARN)
    approval_email_topic_arn: ApprovalEmailTopicArn
    approval_expiry_state_machine_arn: ApprovalExpiryStateMachineArn
    approval_api_endpoint: str = Field(alias="APPROVAL_API_ENDPOINT", pattern=APPROVAL_URL_PATTERN)
    approval_page_url: str = Field(
        default="",
        alias="APPROVAL_PAGE_URL",
        pattern=rf"^$|{APPROVAL_URL_PATTERN}",
        description="Custom domain.",
    )

    @property
    def page_base_url(self) -> str:
        """Where emailed links point: the custom domain if set, else the API's own endpoint."""
        return (self.approval_page_url or self.approval_api_endpoint).rstrip("/")


class NotifySettings(SlackAppSettings):
    """The notifications function: Slack, the approvers' email topic, and its idempotency table."""

    approval_email_topic_arn: ApprovalEmailTopicArn
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME", min_length=3)
