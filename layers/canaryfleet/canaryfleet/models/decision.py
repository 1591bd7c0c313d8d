"""A person's decision on a running rollout (approve, reject, abort, promote), and what it did."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canaryfleet.models.app_config import APPROVER_EMAIL_MAX_LENGTH, SLACK_USER_ID_MAX_LENGTH
from canaryfleet.models.artifact import AppName
from canaryfleet.models.text import OneLineText, PersonText

# A Slack user as the app reads them from a signed request (SlackUser): an id (app_config's
# SLACK_USER_ID_PATTERN), and a name.
SLACK_USER_NAME_MAX_LENGTH = 100
SLACK_USER_LABEL = "{who} (Slack {user_id})"
# Who decided, as recorded (ApprovalDecision.by, Decision.by): an approver's address (the page),
# or a Slack user's label, whose ``who`` is an approver's address, the user's name or their id.
# Bounded by the longest label, so that every approver the registry accepts can decide in Slack.
DECIDER_MAX_LENGTH = (
    len(SLACK_USER_LABEL.format(who="", user_id=""))
    + max(APPROVER_EMAIL_MAX_LENGTH, SLACK_USER_NAME_MAX_LENGTH, SLACK_USER_ID_MAX_LENGTH)
    + SLACK_USER_ID_MAX_LENGTH
)


class Decision(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    application: AppName
    action: Literal["approve", "reject", "abort", "promote"]
    # Shown as the decider in the audit, the approval page, Slack and every operator's
    # terminal: one printable line, so no escape sequence or bidi override can make it read
    # as someone else.
    by: OneLineText = Field(
        min_length=1,
        max_length=DECIDER_MAX_LENGTH,
        description="Who decided (email, Slack user, IAM identity).",
    )
    reason: PersonText = Field(
        default="", max_length=2000, description="What they said: printable text, several lines allowed."
    )
    channel: Literal["slack", "page", "cli", "local"] = "cli"
    rollout_id: str | None = Field(default=None, description="Act only if this rollout is the running one.")
    approval_id: str | None = Field(
        default=None,
        description="Approve or reject only: act only while the rollout waits on this approval (the"
        " gate's answers: a late answer to one step's approval never ends the next step's wait).",
    )
    override_window: bool = Field(
        default=False,
        description="Promote only: also release outside the deployment windows and during freezes (audited).",
    )

    @model_validator(mode="after")
    def _override_is_a_named_promotion(self) -> Decision:
        if self.override_window and self.action != "promote":
            raise ValueError("override_window goes with promote only")
        if self.override_window and not self.reason.strip():
            raise ValueError("overriding a deployment window or freeze needs a reason")
        if self.approval_id is not None and self.action not in ("approve", "reject"):
            raise ValueError("approval_id goes with approve or reject only")
        return self


class OperatorDecision(Decision):
    """A decision sent to DecideFunction: the CLI, the dashboard, the local cloud's approver.

    "slack" and "page" are recorded by the Slack app and the approval page only, after they
    checked the person against the approvers; whoever invokes the function cannot claim them.
    """

    channel: Literal["cli", "local"] = "cli"


# An abort that finds no wait open ("recorded") is honoured by every step that would take the
# build further (logic/canary.py, refuse_if_aborted; logic/deployments.py), not only at a wait.
ABORT_RECORDED = "recorded; the rollout stops before its build goes further"


def too_late_to_abort(version: str) -> str:
    """Why an abort changes nothing once the build serves all traffic (the result's detail)."""
    return (
        f"too late to abort: {version} already serves all traffic and its rollout is ending as"
        " released; to go back, roll out the build before it"
    )


def recorded_words(action: str) -> str:
    """What a "recorded" outcome means, as the CLI, the dashboard and Slack say it: an abort is
    honoured before the build goes further; a promote (or an approval kept for a retried wait,
    the result's detail says so) takes effect at the rollout's next wait."""
    return ABORT_RECORDED if action == "abort" else "recorded; it takes effect at the next wait"


# An approve or reject that met "Wait for approval" between a failed attempt and its Retry
# (logic/approval_gate.py, keep_for_retry): the retried request ends its wait with it.
KEPT_FOR_RETRY = (
    "Step Functions is retrying the rollout's wait for approval; this decision ends it when it resumes"
)


class DecisionResult(BaseModel):
    model_config = ConfigDict(defer_build=True)

    rollout_id: str
    action: str
    outcome: Literal["applied", "recorded", "already_decided"]
    detail: str = ""
    approval_id: str | None = Field(
        default=None, description="The approval whose wait this decision ended, if it ended one."
    )
