"""Turn an artifact upload into exactly one rollout execution, or a rejection with a reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from canaryfleet.errors import ArtifactNotFound, InvalidArtifactKey, InvalidBundle, UnknownApplication
from canaryfleet.logic.analysis.reach import bakes_too_short_to_judge
from canaryfleet.logic.bundle import BundleLimits, bundle_policy, validate_bundle
from canaryfleet.models.artifact import ArtifactRef, application_of_key, key_from_event
from canaryfleet.models.policy import PolicyLimits, default_policy
from canaryfleet.models.rollout import (
    MAX_BUNDLE_NOTES,
    MAX_COMMIT,
    ExecutionInput,
    Revision,
    RolloutInput,
    RolloutPlan,
    RolloutRef,
    build_url_kept,
    commit_kept,
)
from canaryfleet.models.rollout_record import VersionClaim
from canaryfleet.observability import logger, metrics, tracer
from canaryfleet.ports.approvals import EmailChannel
from canaryfleet.ports.artifacts import ArtifactStore
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.fleet import AppRegistry, Deployments
from canaryfleet.ports.notifier import Notifier
from canaryfleet.ports.rollouts import RolloutStore
from canaryfleet.ports.workflow import RolloutExecutions

# The longest a Lambda invocation may run (Lambda quotas: function timeout, 900 seconds).
_CLAIM_GRACE = timedelta(seconds=900)


class StartRolloutResult(BaseModel):
    model_config = ConfigDict(defer_build=True)

    status: Literal["started", "duplicate", "rejected"]
    rollout_id: str | None = None
    execution_arn: str | None = None
    reason: str | None = None


class Rejected(Exception):
    """An upload that will not be rolled out; the reason is written for a person."""


@tracer.capture_method
def start_rollout(
    event: S3EventNotificationEventBridgeModel,
    artifacts: ArtifactStore,
    registry: AppRegistry,
    store: RolloutStore,
    codedeploy: Deployments,
    workflow: RolloutExecutions,
    notifier: Notifier,
    clock: Clock,
    approver_emails: EmailChannel,
    policy_limits: PolicyLimits | None = None,
    bundle_limits: BundleLimits | None = None,
    load_balancer_metrics_period: int = 60,
) -> StartRolloutResult:
    """Check the upload, register the revision, record the rollout and start its execution.

    A rejection (off-layout key, unknown application, version already decided, invalid
    bundle) is an outcome, not an error: retrying the event cannot change it. Nothing is
    deployed or registered for a rejected upload. A duplicate event changes nothing. Once the
    rollout has started, approvers who have no approval email subscription get one
    (``approver_emails``; see :func:`_prepare_approvers`).
    """
    obj = event.detail.object
    received = clock.now()
    try:
        artifact = ArtifactRef.from_object(
            bucket=event.detail.bucket.name,
            key=key_from_event(obj.key),
            version_id=obj.version_id,
            etag=obj.etag,
            size=int(obj.size) if obj.size is not None else None,
        )
    except InvalidArtifactKey as exc:
        # The application's own channels hear of it when the key's first folder names one.
        named = application_of_key(key_from_event(obj.key))
        return _rejected(notifier, None, obj.key, str(exc), application=named)

    rollout_id = artifact.rollout_id
    logger.append_keys(rollout_id=rollout_id, application=artifact.application)
    existing = store.get(artifact.application, rollout_id)
    if existing is not None and existing.status != "received":
        logger.info("duplicate artifact event; already handled", extra={"status": existing.status})
        metrics.add_metric(name="DuplicateArtifactEvents", unit=MetricUnit.Count, value=1)
        return StartRolloutResult(status="duplicate", rollout_id=rollout_id, reason=existing.reason)

    try:
        app = registry.get(artifact.application)
        if app.strategy == "in_place" and store.live_color(artifact.application) == "green":
            # In place deploys the stack's live group (blue) and weighs it against green: with
            # green serving, that would put blue's older build back in front of users.
            raise Rejected(
                f"{artifact.application} is in place again but its green color serves: set "
                "Strategy=blue_green, release once so that blue serves, then switch back "
                '(fleet/README.md, "Switching strategies")'
            )
        _refuse_if_decided(store, artifact.application, artifact.version)
        _refuse_if_rolling_out(store, artifact.application, artifact.version, rollout_id)
        with artifacts.open(artifact) as bundle:
            report = validate_bundle(bundle, bundle_limits or BundleLimits())
            policy = bundle_policy(
                bundle,
                app.policy or default_policy(),
                policy_limits or PolicyLimits(),
                bundle_limits or BundleLimits(),
            )
        unreadable = [
            *policy.intervals_finer_than(load_balancer_metrics_period),
            *policy.bakes_beyond_their_analysis(),
        ]
        if unreadable:
            raise Rejected("the rollout policy cannot be analysed: " + "; ".join(unreadable))
        metadata = artifacts.metadata(artifact)  # before the claim: the object may be gone by now
        _claim_version(store, clock, artifact.application, artifact.version, rollout_id)
    except (UnknownApplication, InvalidBundle, Rejected) as exc:
        return _rejected(notifier, artifact, obj.key, str(exc), store, received)
    except ArtifactNotFound:
        return _rejected(notifier, artifact, obj.key, _not_in_the_bucket(artifact), store, received)

    build_url, dropped = _build_url(metadata.get("build-url"))
    commit, not_commit = _commit(metadata.get("commit"))
    rollout = RolloutInput(
        rollout_id=rollout_id,
        application=artifact.application,
        version=artifact.version,
        artifact=artifact,
        commit=commit,
        build_url=build_url,
        bundle_notes=[*bakes_too_short_to_judge(policy), *report.notes, *not_commit, *dropped][
            :MAX_BUNDLE_NOTES
        ],
        policy=policy,
    )
    revision = Revision.of(artifact)
    codedeploy.register_revision(app.codedeploy_application, revision)
    # Arrival order is the upload's time, then when this function first saw it; a retry
    # of this event keeps the place the first attempt took.
    arrival = f"{event.time:%Y%m%dT%H%M%S}#{received.isoformat()}"
    if not store.create(rollout, received_at=received, arrival=arrival):
        existing = store.get(artifact.application, rollout_id)
        arrival = (existing.arrival if existing is not None else None) or arrival
    execution = ExecutionInput(
        ref=RolloutRef(application=artifact.application, rollout_id=rollout_id, version=artifact.version),
        arrival=arrival,
        revision=revision,
        app=app,
        plan=RolloutPlan.of(policy, app),
    )
    # The place in the queue is taken at arrival, so executions start in upload order.
    store.enqueue(artifact.application, execution.arrival, rollout_id, workflow.execution_arn(rollout_id))
    execution_arn, started = workflow.start(execution)
    store.mark_started(artifact.application, rollout_id, execution_arn)
    if not started:
        logger.info("duplicate artifact event; rollout already started")
        metrics.add_metric(name="DuplicateArtifactEvents", unit=MetricUnit.Count, value=1)
        return StartRolloutResult(status="duplicate", rollout_id=rollout_id, execution_arn=execution_arn)
    metrics.add_metric(name="ArtifactsAccepted", unit=MetricUnit.Count, value=1)
    logger.info("rollout started", extra={"execution_arn": execution_arn, "version": rollout.version})
    _prepare_approvers(app.approvers.emails, approver_emails)
    return StartRolloutResult(status="started", rollout_id=rollout_id, execution_arn=execution_arn)


def _refuse_if_decided(store: RolloutStore, application: str, version: str) -> None:
    decided = store.version_status(application, version)
    if decided is not None:
        raise Rejected(
            f"version {version} of {application} was already {decided.status} "
            f"(rollout {decided.rollout_id}); upload a new version"
        )


def _rolling_out(application: str, version: str, other: str) -> Rejected:
    return Rejected(
        f"version {version} of {application} is already rolling out (rollout {other}); "
        "a version is rolled out once: upload a new version"
    )


def _refuse_if_rolling_out(store: RolloutStore, application: str, version: str, rollout_id: str) -> None:
    """Refuse a second upload of a version whose rollout has not ended.

    A version is rolled out once (``VERSION#``), but it is decided only when its rollout ends.
    Uploaded again meanwhile (a CI job retried: S3 gives the same key a new object version, so a
    new rollout id), it would queue behind the first, then deploy, bake and ask approvers about a
    version already released, and a rollback of it would mark that released version rejected.
    The rollouts in progress are the lock's and the queue's (a few items, read consistently).
    """
    for other in store.rollouts_in_progress(application):
        if other == rollout_id:
            continue
        record = store.get(application, other)
        if record is not None and record.version == version and record.outcome is None:
            raise _rolling_out(application, version, other)


def _claim_version(
    store: RolloutStore, clock: Clock, application: str, version: str, rollout_id: str
) -> None:
    """Make this upload the one rollout of its version, or refuse it.

    :func:`_refuse_if_rolling_out` reads, and the upload takes its place in the queue later: two
    uploads of one version at the same moment (a CI job and its retry) would both pass it. The
    claim is a conditional write, so one of them gets it and the other is refused. A claim stands
    while its rollout has not ended and is in progress, or may still be on its way to the queue;
    any other is taken over, so an upload that failed before it queued does not hold its version
    for ever. Then the version is read again: a rollout that ended has decided it.
    """
    standing = store.claim_version(application, version, rollout_id)
    if standing is not None and not _claim_stands(store, clock, application, standing):
        standing = store.claim_version(application, version, rollout_id, replacing=standing.rollout_id)
    if standing is not None:  # still held, or taken over by another upload meanwhile
        raise _rolling_out(application, version, standing.rollout_id)
    _refuse_if_decided(store, application, version)


def _claim_stands(store: RolloutStore, clock: Clock, application: str, claim: VersionClaim) -> bool:
    record = store.get(application, claim.rollout_id)
    if record is not None and record.outcome is not None:
        return False  # ended (and its version decided, unless the upload itself was refused)
    if claim.rollout_id in store.rollouts_in_progress(application):
        return True
    if record is not None and record.status != "received":
        # Its execution started, and holds neither the lock nor a place in the queue: it failed
        # without an outcome (before its turn, or after its release was made).
        return False
    # Not queued yet: its upload may still be on its way there (it claims before it registers the
    # revision and queues), or may have failed before. No invocation outlives the Lambda timeout.
    return clock.now() - claim.claimed_at < _CLAIM_GRACE


def _prepare_approvers(emails: tuple[str, ...], channel: EmailChannel) -> None:
    """Subscribe the approvers who have no approval email subscription yet, at the upload.

    SNS emails an address nothing until its owner follows the link of the confirmation email
    Subscribe sends (Subscribe, SNS API Reference). Subscribed only when the approval asks them,
    a new approver would get the confirmation and never that approval's link; subscribed now,
    they have the canary's deployment and bakes to confirm. Best effort: the approval subscribes
    whoever is still missing, and the rollout never waits on SNS.
    """
    if not emails:
        return
    try:
        reach = channel.ensure_subscribed(emails)
    except (BotoCoreError, ClientError) as exc:
        logger.warning("approvers not subscribed to approval emails yet", extra={"error": str(exc)})
        return
    if reach.subscribed_now:
        logger.info(
            "approvers subscribed to approval emails; SNS asks each to confirm",
            extra={"count": len(reach.subscribed_now)},
        )
    if reach.refused:  # the approval says so again, and counts it
        logger.warning(
            "approvers not subscribed to approval emails: SNS's filter policy quota is reached",
            extra={"count": len(reach.refused)},
        )


def _commit(value: str | None) -> tuple[str | None, list[str]]:
    """The commit metadata if it is one printable line of at most 128 characters; else nothing, and
    a note that says why. Anyone who may upload sets it: a longer or broken value must not stop
    the rollout (RolloutInput refuses it) after its bundle was checked."""
    if not value:
        return None, []
    if commit_kept(value):
        return value, []
    logger.warning("commit metadata dropped", extra={"length": len(value)})
    return None, [f"commit metadata dropped: not one printable line of at most {MAX_COMMIT} characters"]


def _build_url(value: str | None) -> tuple[str | None, list[str]]:
    """The build-url metadata if it is an https URL; else nothing, and a note that says why.

    Anyone who may upload sets the metadata, and notices and the CLI show it as a link: a
    ``javascript:`` or plain ``http:`` URL is never shown. The note names the scheme only.
    """
    if not value:
        return None, []
    if build_url_kept(value):
        return value, []
    scheme = value.split(":", 1)[0][:20] if ":" in value else "no scheme"
    logger.warning("build-url metadata dropped", extra={"scheme": scheme})
    return None, [f"build-url metadata dropped: only an https:// URL is shown (it was {scheme!r})"]


def _not_in_the_bucket(artifact: ArtifactRef) -> str:
    """Why an upload whose object is not there starts nothing: retrying its event cannot help."""
    which = f" (version {artifact.version_id})" if artifact.version_id else ""
    reason = (
        f"the uploaded object {artifact.key}{which} is not in the bucket: deleted since its upload"
        " (upload the build again)"
    )
    if "+" in artifact.key:
        # S3 writes a space in a key as '+' in its notifications (notification-content-structure).
        reason += ", or its key has a space where the event says '+' (a version may not contain spaces)"
    return reason


def _rejected(
    notifier: Notifier,
    artifact: ArtifactRef | None,
    key: str,
    reason: str,
    store: RolloutStore | None = None,
    received: datetime | None = None,
    application: str | None = None,
) -> StartRolloutResult:
    logger.warning("artifact rejected", extra={"key": key, "reason": reason})
    metrics.add_metric(name="ArtifactsRejected", unit=MetricUnit.Count, value=1)
    rollout_id = artifact.rollout_id if artifact else None
    if artifact is not None and store is not None and received is not None:
        rollout = RolloutInput(
            rollout_id=artifact.rollout_id,
            application=artifact.application,
            version=artifact.version,
            artifact=artifact,
        )
        store.create(rollout, received_at=received)
        store.record_outcome(artifact.application, artifact.rollout_id, "rejected", reason)
    notifier.publish(
        kind="rollout.rejected",
        application=artifact.application if artifact else application or "unknown",
        message={
            "key": key,
            "rollout_id": rollout_id,
            "version": artifact.version if artifact else None,
            "reason": reason,
            "outcome": "rejected",
        },
    )
    return StartRolloutResult(status="rejected", rollout_id=rollout_id, reason=reason)
