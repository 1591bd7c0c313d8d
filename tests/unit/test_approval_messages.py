"""What approvers read: the Slack message, the email and the outcome, from an approval."""

import json
from datetime import UTC, datetime, timedelta

from canaryfleet.logic import approval_messages
from canaryfleet.models.app_config import Approvers
from canaryfleet.models.approval import Approval, ApprovalDecision, ApprovalStatus, SlackMessageRef
from canaryfleet.models.rollout import Verdict

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def approval(**changes: object) -> Approval:
    values: dict[str, object] = {
        "approval_id": "q7Xr2LmN9pKv4TzW1bYc0A",
        "application": "payments-api",
        "rollout_id": "payments-api-2_7_0-5e0c2c7a",
        "version": "2.7.0",
        "verdict": Verdict(
            result="pass",
            reasons=["canary error rate 0.10% and latency within limits"],
            canary_requests=1234,
            canary_errors=1,
            canary_error_rate=0.00081,
            canary_latency=0.081,
            live_requests=11020,
            live_errors=12,
            live_error_rate=0.00109,
            live_latency=0.079,
            window_start=NOW - timedelta(minutes=10),
            window_end=NOW,
        ),
        "approvers": Approvers(
            emails=("lead@example.com",), slack_user_ids=("U024BE7LH",), slack_channel="C0PAY"
        ),
        "created_at": NOW,
        "expires_at": NOW + timedelta(hours=24),
    }
    return Approval.model_validate({**values, **changes})


def decided(action: str, comment: str = "", channel: str = "page") -> Approval:
    status = ApprovalStatus.APPROVED if action == "approve" else ApprovalStatus.REJECTED
    decision = ApprovalDecision(
        action=action, by="lead@example.com", channel=channel, comment=comment, at=NOW
    )  # type: ignore[arg-type]
    return approval(
        status=status, decision=decision, slack_message=SlackMessageRef(channel="C0PAY", ts="1.2")
    )


def test_the_slack_request_has_the_verdict_and_two_buttons_carrying_only_the_approval_id() -> None:
    text, blocks = approval_messages.slack_request(approval())

    assert text == "payments-api 2.7.0 is waiting for approval"
    rendered = json.dumps(blocks)
    assert "pass: canary 0.08% errors over 1,234 requests, 81 ms (live 0.11%, 79 ms)" in rendered
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("approval.approve", "q7Xr2LmN9pKv4TzW1bYc0A"),
        ("approval.reject", "q7Xr2LmN9pKv4TzW1bYc0A"),
    ]
    assert "<@U024BE7LH>, lead@example.com" in rendered


def test_the_slack_outcome_says_who_decided_how_and_has_no_buttons() -> None:
    text, blocks = approval_messages.slack_outcome(decided("reject", "p99 <!channel> up"))

    # The fallback text (chat.update's text) is mrkdwn as well: escaped like the blocks.
    assert text == (
        "payments-api 2.7.0: Rejected by lead@example.com via the approval page at 2026-11-26 09:00:00 UTC: "
        '"p99 &lt;!channel&gt; up"'
    )
    assert not any(b["type"] == "actions" for b in blocks)
    assert "&lt;!channel&gt;" in json.dumps(blocks), "a comment cannot mention the channel"


def test_a_comment_with_a_fake_link_is_shown_as_text_in_every_part_of_the_slack_outcome() -> None:
    text, blocks = approval_messages.slack_outcome(
        decided("approve", "see <https://evil.example|the runbook> & go")
    )

    rendered = text + json.dumps(blocks)
    assert "<https://evil.example" not in rendered
    assert "&lt;https://evil.example|the runbook&gt; &amp; go" in text


def test_an_expired_approval_says_the_policy_applied() -> None:
    assert approval_messages.outcome(approval(status="expired")) == (
        "Expired at 2026-11-27 09:00:00 UTC: nobody decided in time,"
        " so the rollout followed its timeout policy"
    )


def test_a_decision_made_elsewhere_names_its_channel() -> None:
    assert approval_messages.outcome(decided("approve", channel="cli")).startswith(
        "Approved by lead@example.com via the CLI"
    )


def test_the_email_carries_the_link_and_says_opening_it_decides_nothing() -> None:
    subject, body = approval_messages.email(
        approval(), "https://approvals.example.com/approvals/x?signature=s"
    )

    assert subject == "Approve payments-api 2.7.0?"
    assert "https://approvals.example.com/approvals/x?signature=s\n" in body
    assert "opening it decides nothing" in body
    assert "Decide before: 2026-11-27 09:00:00 UTC" in body


def test_the_email_says_its_timeline_link_is_read_only_and_decides_nothing() -> None:
    timeline = "https://approvals.example.com/approvals/x/timeline?expires=1&view=v"

    _, body = approval_messages.email(
        approval(), "https://approvals.example.com/approvals/x?signature=s", timeline
    )

    assert f"(read only: anyone with this link can see it, not decide):\n{timeline}\n" in body
    assert "same link" not in body


def test_without_an_analysis_the_messages_say_so() -> None:
    _, blocks = approval_messages.slack_request(approval(verdict=None))

    assert "no canary analysis ran" in json.dumps(blocks)
