"""Typed errors. Class names are the error names the state machines catch."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NoAnswer


class CanaryfleetError(Exception):
    """Base class of every error canaryfleet raises on purpose."""


class InvalidEvent(CanaryfleetError):
    """An event or state input does not match its model; nothing was written."""

    def __init__(self, model: str, problems: list[str]) -> None:
        self.model = model
        self.problems = problems
        super().__init__(f"invalid {model}: " + "; ".join(problems))


class InvalidArtifactKey(CanaryfleetError):
    """An artifact key does not follow `<app>/<version>.zip`."""


class ArtifactNotFound(CanaryfleetError):
    """The object version an upload's event names is not in the bucket (deleted since, or never
    there under that key)."""


class ConfigurationError(CanaryfleetError):
    """A function's environment is missing or malformed."""


class RegistryEntryMalformed(ConfigurationError):
    """An application's registry entry (SSM parameter ``name``) that does not read, and why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"registry entry {name} is malformed: {reason}")
        self.name = name
        self.reason = reason


class TransientAwsError(CanaryfleetError):
    """An AWS call failed in a way that a retry may fix (throttling, 5xx)."""


# What botocore's standard retry mode tries again (botocore/retries/standard.py: the
# ThrottledRetryableChecker's error codes, the TransientRetryableChecker's codes, statuses and
# exceptions, and a 429 of no modeled error): a call still failing so once botocore's attempts are
# spent is tried again by its state machine's Retry, for longer, instead of failing the rollout.
THROTTLED_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_ERROR_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
TRANSIENT_STATUS_CODES = frozenset({429, 500, 502, 503, 504})
# And a throttle botocore does not retry: SNS's KMSThrottling (botocore sns, KMSThrottlingException:
# "The request was denied due to request throttling", HTTP 400), answered by a Publish to a topic
# encrypted with a KMS key, as the notification and approval email topics are (template.yaml).
UNRETRIED_THROTTLED_ERROR_CODES = frozenset({"KMSThrottling"})


def transient_aws(exc: BaseException) -> TransientAwsError | None:
    """``exc`` as a TransientAwsError if it is an AWS call's failure worth trying again."""
    if isinstance(exc, NoAnswer | HTTPClientError):  # connect or read timeouts, resets
        return TransientAwsError(f"an AWS call got no answer: {exc}")
    if not isinstance(exc, ClientError):
        return None
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in THROTTLED_ERROR_CODES | TRANSIENT_ERROR_CODES | UNRETRIED_THROTTLED_ERROR_CODES:
        return TransientAwsError(str(exc))
    if status in TRANSIENT_STATUS_CODES:
        return TransientAwsError(str(exc))
    return None


class InvalidBundle(CanaryfleetError):
    """A bundle that must not be deployed; ``reason`` is written for a person."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnknownApplication(CanaryfleetError):
    """No registry entry (/canaryfleet/apps/<app>) exists for the application."""


class VersionAlreadyDecided(CanaryfleetError):
    """The version was already released or rejected; it is not rolled out again."""


# --- errors the rollout state machine catches by name -------------------------------------
class DeploymentFailed(CanaryfleetError):
    """A CodeDeploy deployment ended Failed or Stopped."""


class DeploymentTimedOut(CanaryfleetError):
    """A CodeDeploy deployment did not end within the policy's deployment timeout."""


class DeploymentGroupBusy(CanaryfleetError):
    """CodeDeploy refused a deployment: another one of the group is still active
    (``DeploymentLimitExceededException``, one active deployment per group). The state machine
    waits for it to end by retrying with a bounded backoff."""


class CanaryNotHealthyYet(CanaryfleetError):
    """Canary targets are still registering or failing health checks (retried with backoff)."""


class ColorNotEmptyYet(CanaryfleetError):
    """Blue/green: the idle color still has instances (a warm old color draining on its way to
    zero). The state machine retries with a bounded backoff; the drain ends each one."""


class ColorStillServing(CanaryfleetError):
    """Blue/green: a color the step would scale to zero, or release onto, takes a share of the
    listener rule's requests; the message says which and how much. Never scaled to zero then:
    its requests would find no target (503)."""


class CapacityNotHealthyYet(CanaryfleetError):
    """Blue/green: the release color has fewer healthy instances than it asked for, and its
    capacity timeout has not passed (retried)."""


class CapacityUnavailable(CanaryfleetError):
    """Blue/green: the release color did not reach healthy capacity in its capacity timeout.
    The message says how many were healthy and why the rest were not (e.g. Spot capacity)."""


class CanaryUnhealthy(CanaryfleetError):
    """The canary target group has no healthy target; its instances are named."""


class TrafficNotShifted(CanaryfleetError):
    """The listener rule's weights read back differ from those just set."""


class CanaryAlarm(CanaryfleetError):
    """One of the canary's alarms is in ALARM when a wait reads them (a bake or an approval as
    it begins, a bake's timeout, an unanswered approval about to promote): the state-change
    event that would have ended the wait came before it, late or not at all. Also the error a
    task token is failed with when that event does arrive. The message names the alarm."""


class CriticalMetricFailed(CanaryfleetError):
    """A critical metric's fail-fast alarm is in ALARM when its bake reads it (as it begins or
    when its timer runs out), or its event ended the bake. The message names the metric and the
    alarm."""


class AnalysisFailed(CanaryfleetError):
    """Canary is worse than live beyond the policy's thresholds."""


class AnalysisInconclusive(CanaryfleetError):
    """Too little evidence to judge, and no approval step left to put it before a person."""


class Aborted(CanaryfleetError):
    """On-call asked to abort while no wait was open (``decide`` answered "recorded"), and a step
    that would take the build further read it: the rollout rolls back as if a wait had ended so.
    The message is the wait's cause: who asked, and why."""


# --- errors of the decision path (approve, reject, abort, promote) ------------------------
class RolloutNotRunning(CanaryfleetError):
    """The application has no running rollout to act on."""


class NotAwaitingApproval(CanaryfleetError):
    """Approve and reject need a rollout that waits for approval."""


# --- drains (scale-in, Spot interruption, rebalance) ----------------------------------------
class DrainNotReady(CanaryfleetError):
    """A command status event came before its drain recorded the command; a retry finds it."""


class DrainDispatchFailed(CanaryfleetError):
    """SendCommand failed for a batch of drains in a way that a redelivery may fix."""


class InvalidManifest(CanaryfleetError):
    """A drain's manifest.json is missing, unreadable, or names objects that are not in S3."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class InstancesNotReachable(CanaryfleetError):
    """Run Command cannot reach the instances (not managed, stopped or already gone)."""


# --- approval gate (Slack, email links, the approval page) -----------------------------------
class ApprovalNotExpiredYet(CanaryfleetError):
    """The expiry ran before the approval's time (clock skew) or while a decision is ending it."""


class ApprovalNotFound(CanaryfleetError):
    """No approval has this id (never existed, or its record expired)."""


# --- notifications (Slack threads, email summaries) ----------------------------------------
class NotificationNotDelivered(CanaryfleetError):
    """Slack or SNS did not take a notice; the notifications queue delivers it again."""


class NoticeLeftForLater(CanaryfleetError):
    """Too little of the invocation is left to tell a notice whole; the queue delivers it again."""


class SlackThreadBeingStarted(CanaryfleetError):
    """Another notice of the rollout is posting its thread's first message; a redelivery joins it."""


class UnknownFreeze(CanaryfleetError):
    """No standing freeze has this id (never declared, or already removed)."""


class FreezeExists(CanaryfleetError):
    """A freeze with this id was already declared."""


class CalendarUnbounded(CanaryfleetError):
    """Windows and freezes leave no moment to release in the calendar's horizon."""


class InvalidFreeze(CanaryfleetError):
    """A freeze that cannot be declared (it ends before it starts, or has already ended)."""


class InvalidConfirmationLink(CanaryfleetError):
    """What was given is not the link of SNS's confirmation email for the approval email topic."""


def parse_cause(cause: str | None) -> str:
    """A person's reading of a Catch's Cause: a Lambda error's message, or the text itself."""
    if not cause:
        return ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage") or parsed.get("reason") or cause)
    return cause
