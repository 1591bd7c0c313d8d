"""Asking people to approve: the wait's token is stored, never shown; the approvers are asked.

The rollout record keeps the task token (only the decision path reads it). What goes out
names a random approval id: a Slack message with Approve and Reject, and one email per
approver with a link signed for them alone. An execution of the expiry state machine marks
the approval expired if nobody answers in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit

from canaryfleet.logic import approval_messages
from canaryfleet.logic.alarms import end_wait_if_firing
from canaryfleet.logic.approval_gate import ApprovalGate
from canaryfleet.logic.canary import begin_wait
from canaryfleet.logic.links import LinkSigner, link_url, view_url
from canaryfleet.logic.record_stage import record_stage
from canaryfleet.models.app_config import Approvers
from canaryfleet.models.approval import Approval, new_approval_id
from canaryfleet.models.rollout import RecordStageRequest, Stage
from canaryfleet.models.rollout_record import RolloutRecord, Wait
from canaryfleet.models.tasks import ApprovalTask
from canaryfleet.observability import logger, metrics, tracer
from canaryfleet.ports.approvals import ApprovalStore, EmailChannel, SlackChannel
from canaryfleet.ports.clock import Clock
from canaryfleet.ports.fleet import FleetMetrics
from canaryfleet.ports.notifier import Notifier
from canaryfleet.ports.rollouts import RolloutStore
from canaryfleet.ports.workflow import ApprovalExpiry, Callbacks


@dataclass(frozen=True)
class ApprovalChannels:
    """Where an approval is recorded and how its approvers are asked (built by the wiring)."""

    approvals: ApprovalStore
    signer: LinkSigner
    email: EmailChannel
    expiry: ApprovalExpiry
    slack: SlackChannel | None
    page_base_url: str


@tracer.capture_method
def request_approval(
    task: ApprovalTask,
    store: RolloutStore,
    notifier: Notifier,
    callbacks: Callbacks,
    channels: ApprovalChannels,
    clock: Clock,
    alarms: FleetMetrics,
) -> str:
    """Store the approval wait and ask the approvers; "aborted" or "promoted" if decided beforehand.

    A canary alarm already in ALARM ends the wait at once and nobody is asked ("alarm"): its
    event came between the bake's end and this wait, when there was no wait for it to end.
    A retried request reuses its approval and asks nobody twice, whether Step Functions gives the
    retry the first attempt's task token or a new one (``_retried_approval``), and ends its wait
    with an answer given while it was being retried ("decided"; ``ApprovalGate.apply_kept_answer``).
    """
    app, ref, token = task.app, task.ref, task.token
    rollout_id, version = ref.rollout_id, ref.version
    now = clock.now()
    record = store.get(ref.application, rollout_id)
    retried = _retried_approval(task, record, channels.approvals, now)
    if retried is not None:
        approval_id, expires = retried
    else:
        approval_id = new_approval_id()
        expires = wait_ends_at(task, now)
    wait = Wait(
        kind="approval",
        token=token,
        started_at=now,
        approval_id=approval_id,
        approval_expires_at=expires,
        approval_step=task.step,
    )
    outcome = begin_wait(wait, ref, store, callbacks)
    if outcome != "waiting":
        return outcome
    if end_wait_if_firing(app, alarms, ref, token, store, callbacks):
        return "alarm"  # nobody is asked to approve a canary in ALARM
    verdict = record.verdict if record is not None else None
    approval = Approval(
        approval_id=approval_id,
        application=ref.application,
        rollout_id=rollout_id,
        version=version,
        verdict=verdict,
        commit=record.commit if record is not None else None,
        build_url=record.build_url if record is not None else None,
        live_version=live.version if (live := store.last_good(ref.application)) is not None else None,
        approvers=app.approvers,
        created_at=now,
        expires_at=expires,
    )
    channels.approvals.create(approval)
    approval = channels.approvals.get(approval_id) or approval
    record_stage(
        RecordStageRequest(
            ref=ref,
            stage=Stage.AWAITING_APPROVAL,
            at=now,
            detail={
                "verdict": verdict.model_dump(mode="json") if verdict is not None else None,
                "expires_at": expires.isoformat(),
                "approvers": app.approvers.model_dump(mode="json"),
                "approval_id": approval_id,
            },
            step=task.step,
        ),
        store,
        notifier,
    )
    channels.expiry.schedule(approval_id, expires, now)
    _ask_in_slack(approval, channels)
    _ask_by_email(approval, channels)
    if not approval.approvers.emails and not approval.approvers.slack_user_ids:
        logger.warning("nobody may approve: the approval will time out", extra={"approval_id": approval_id})
    if retried is not None:
        # An answer given while this wait was being retried was kept for it: it ends the wait now.
        gate = ApprovalGate(channels.approvals, store, callbacks, channels.slack, clock)
        if gate.apply_kept_answer(approval_id):
            return "decided"
    return "waiting"


def wait_ends_at(task: ApprovalTask, now: datetime) -> datetime:
    """When the approval expires: the wait's timeout counted from when the state machine entered it.

    The task's ``entered_at`` is ``$$.State.EnteredTime``. The state's timeout runs from about
    then: before the function's cold start and any Retry of its invoke (a retry stays in the
    state: the context's ``State`` keeps its ``EnteredTime`` and counts ``RetryCount``), so the
    wait ends no earlier than this and no link outlives it. Counted from the function's own
    clock, the approval outlived the wait by that start-up, and a decision in the gap found the
    task timed out. An ``EnteredTime`` ahead of this clock (two clocks a moment apart) counts from
    ``now``, as does a definition from before ``entered_at`` was sent.
    """
    started = now if task.entered_at is None else min(task.entered_at, now)
    return started + timedelta(seconds=task.timeout_seconds)


def _retried_approval(
    task: ApprovalTask, record: RolloutRecord | None, approvals: ApprovalStore, now: datetime
) -> tuple[str, datetime] | None:
    """The approval (id, expiry) an earlier attempt of this same wait asked for; None for a new wait.

    The Lambda invoke of "Wait for approval" is retried on transient errors, and one of them
    (``Lambda.ServiceException``, ``Sandbox.Timedout``) may come after the function has asked. A
    retry with the same task token is the same wait. Step Functions documents a task token as
    generated "when a workflow enters a task state"; whether a retried attempt gets a new one is
    not documented, so a new token also counts as a retry while the rollout still waits on an
    approval of the same canary step that nobody has settled and that has not expired. The new
    token replaces the old in the record, so the links and the Slack message already sent end
    the wait that is running.
    """
    if record is None or not record.approval_id or record.approval_expires_at is None:
        return None
    waiting = record.waits_with("approval")
    if waiting is None:
        return None
    asked = (record.approval_id, record.approval_expires_at)
    if waiting == task.token:
        return asked
    if task.step is None or record.approval_step != task.step or record.approval_expires_at <= now:
        return None
    approval = approvals.get(record.approval_id)
    if approval is None or approval.is_final:
        return None
    logger.info("approval request retried with a new task token", extra={"approval_id": record.approval_id})
    return asked


def _ask_in_slack(approval: Approval, channels: ApprovalChannels) -> None:
    if approval.slack_message is not None:
        return
    why = _why_slack_cannot_ask(approval.approvers, channels)
    if why is not None and approval.approvers.slack_user_ids:
        # The approvers named by Slack id are not asked: unless someone decides from the CLI or
        # an emailed approver does, the approval waits out its timeout.
        logger.error(
            f"approvers named by Slack id not asked: {why}",
            extra={"approval_id": approval.approval_id, "count": len(approval.approvers.slack_user_ids)},
        )
        metrics.add_metric(name="ApprovalsNotAskedInSlack", unit=MetricUnit.Count, value=1)
        return
    if channels.slack is None:
        return
    view = channels.signer.sign_view(approval.approval_id, int(approval.expires_at.timestamp()))
    text, blocks = approval_messages.slack_request(approval, view_url(channels.page_base_url, view))
    message = channels.slack.post(approval.approvers.slack_channel, text, blocks)
    if message is not None:
        channels.approvals.set_slack_message(approval.approval_id, message)


def _why_slack_cannot_ask(approvers: Approvers, channels: ApprovalChannels) -> str | None:
    """Why no approval message can be posted; None when one can. Slack is set up for approvals
    when its secret has its signing secret beside a bot token or webhook; the channel is the
    application's (the fleet template and onboarding refuse Slack approvers without one, a
    registry entry edited by hand may not)."""
    if channels.slack is None:
        return "Slack is not set up for approvals"
    if approvers.slack_channel is None:
        return "the application names no Slack channel"
    return None


def _ask_by_email(approval: Approval, channels: ApprovalChannels) -> None:
    emails = approval.approvers.emails
    if approval.emails_sent or not emails:
        return
    reach = channels.email.ensure_subscribed(emails)
    if reach.subscribed_now:
        logger.info("approvers subscribed to approval emails", extra={"count": len(reach.subscribed_now)})
    if reach.refused:
        # The approval email topic's subscriptions hold as many filter policies as SNS allows
        # (200 a topic, 10,000 an account, by default): these approvers get no email until some are
        # unsubscribed (`canaryfleet approvers list`) or the quota is raised. Slack and the CLI
        # still reach them; the platform alarm on the metric tells on-call.
        logger.error(
            "SNS refused to subscribe approvers to approval emails: its filter policy quota is reached",
            extra={"approval_id": approval.approval_id, "count": len(reach.refused)},
        )
        metrics.add_metric(
            name="ApprovalEmailSubscriptionsRefused", unit=MetricUnit.Count, value=len(reach.refused)
        )
    if reach.awaiting_confirmation:
        # SNS emails nobody before they follow the link of its confirmation email: these approvers
        # get no link for this approval (Slack and the CLI still reach them).
        logger.warning(
            "approval link cannot reach approvers who have not confirmed the approval email subscription",
            extra={"approval_id": approval.approval_id, "count": len(reach.awaiting_confirmation)},
        )
        metrics.add_metric(
            name="ApprovalEmailsUnconfirmed", unit=MetricUnit.Count, value=len(reach.awaiting_confirmation)
        )
    expires = int(approval.expires_at.timestamp())
    # The timeline's link is read only, like the Slack card's: an email gets forwarded, and an
    # approver's own link there would let whoever reads it decide as them.
    timeline = view_url(channels.page_base_url, channels.signer.sign_view(approval.approval_id, expires))
    for email in emails:
        link = channels.signer.sign(approval.approval_id, email, expires)
        subject, body = approval_messages.email(approval, link_url(channels.page_base_url, link), timeline)
        channels.email.send(email, subject, body)
    channels.approvals.mark_emails_sent(approval.approval_id)
