"""The longest messages canaryfleet sends to Slack: an approval and its notices at the models' limits.

An analysis holds at most 50 metrics, each named in at most 64 characters; a decision's comment
is at most 2,000 characters and its author DECIDER_MAX_LENGTH (230); an application's approvers
have no limit. Every name and comment here is made of ``&``, ``<`` and ``>``, which mrkdwn
escapes into 4 or 5 characters each.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from canaryfleet.logic.analysis.judge import judge
from canaryfleet.models.analysis import AnalysisSamples, MetricSamples
from canaryfleet.models.app_config import Approvers
from canaryfleet.models.approval import (
    Approval,
    ApprovalDecision,
    ApprovalStatus,
    SlackMessageRef,
)
from canaryfleet.models.decision import DECIDER_MAX_LENGTH
from canaryfleet.models.notification import Notice
from canaryfleet.models.rollout import Verdict

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
APPLICATION = "payments-api"
ROLLOUT_ID = "payments-api-2_7_0-5e0c2c7a"
HOSTILE = "&<>"
COMMENT = (HOSTILE * 667)[:2000]
DECIDER = (HOSTILE * DECIDER_MAX_LENGTH)[:DECIDER_MAX_LENGTH]
TIMELINE = (
    "https://approvals.example.com/approvals/q7Xr2LmN9pKv4TzW1bYc0A/timeline"
    "?expires=4102444800&view=" + "v" * 43
)


def metric_name(index: int) -> str:
    return f"m{index:02d}" + HOSTILE * 20 + "x"  # 64 characters


def inconclusive_verdict(metrics: int = 50) -> Verdict:
    """Every metric inconclusive (one interval each, three needed): one reason per metric."""
    samples = AnalysisSamples(
        metrics=tuple(MetricSamples(name=metric_name(i), canary=(1.0,), live=(1.0,)) for i in range(metrics))
    )
    judged = judge(samples)
    reasons = [
        "3 canary instance(s) were interrupted during the bake",
        "no 60-second interval in the window yet",
        *judged.reasons,
    ]
    return Verdict(
        result=judged.result,
        reasons=reasons,
        canary_requests=1e15,
        canary_errors=1e14,
        canary_error_rate=0.1,
        canary_latency=12.5,
        live_requests=1e15,
        live_errors=1e13,
        live_error_rate=0.01,
        live_latency=0.08,
        window_start=NOW - timedelta(minutes=30),
        window_end=NOW,
        score=judged.score,
        alpha=judged.alpha,
        metrics=list(judged.metrics),
    )


def many_approvers(count: int = 100) -> Approvers:
    """Slack users (mentions) and long email addresses full of what mrkdwn escapes (names that are
    not user ids are refused by the registry's model: test_notify.py shows them as text)."""
    return Approvers(
        emails=tuple(f"approver-{i:03d}-{HOSTILE * 20}@example.com" for i in range(count)),
        slack_user_ids=tuple(f"U{i:010d}" for i in range(count)),
        slack_channel="C0PAY",
    )


def approval(**changes: Any) -> Approval:
    values: dict[str, Any] = {
        "approval_id": "q7Xr2LmN9pKv4TzW1bYc0A",
        "application": APPLICATION,
        "rollout_id": ROLLOUT_ID,
        "version": "2.7.0-" + "9" * 58,
        "verdict": inconclusive_verdict(),
        "approvers": many_approvers(),
        "created_at": NOW,
        "expires_at": NOW + timedelta(hours=24),
        "closed_reason": "aborted: " + COMMENT,
    }
    return Approval.model_validate({**values, **changes})


def decided(action: str = "reject", channel: str = "slack") -> Approval:
    """Decided by an approver with the longest name, who wrote the longest comment."""
    decision = ApprovalDecision(
        action=action,  # type: ignore[arg-type]
        by=DECIDER,
        channel=channel,  # type: ignore[arg-type]
        comment=COMMENT,
        at=NOW,
    )
    status = ApprovalStatus.APPROVED if action == "approve" else ApprovalStatus.REJECTED
    return approval(
        status=status, decision=decision, slack_message=SlackMessageRef(channel="C0PAY", ts="1.2")
    )


def notice(kind: str, **body: Any) -> Notice:
    """A notice as record_stage publishes it (``detail``) or as a rollout's end does (``reason``)."""
    message = {"rollout_id": ROLLOUT_ID, "application": APPLICATION, "version": "2.7.0", **body}
    return Notice(kind=kind, application=APPLICATION, body=message, message_id=f"m-{kind}", published_at=NOW)


def notices() -> list[Notice]:
    verdict = inconclusive_verdict().model_dump(mode="json")
    return [
        notice("rollout.verdict", detail=verdict),
        notice(
            "rollout.awaiting_approval",
            detail={
                "verdict": verdict,
                "approvers": many_approvers().model_dump(mode="json"),
                "expires_at": (NOW + timedelta(hours=24)).isoformat(),
            },
        ),
        notice("rollout.rolled_back", reason=f"rejected by {DECIDER}: {COMMENT}"),
        notice("rollout.window_overridden", by=DECIDER, reason=COMMENT),
    ]
