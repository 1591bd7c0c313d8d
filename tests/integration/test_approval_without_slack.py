"""An approval whose Slack approvers cannot be asked: Slack set up for notices only, or no channel."""

import json

import pytest
from canaryfleet.models.app_config import Approvers

from tests.integration.approval_gate import (
    ALICE_SLACK,
    CHANNEL,
    approval_gate,
    approval_of,
    wait_for_approval,
)


@pytest.mark.parametrize(
    ("slack_for_approvals", "channel", "why"),
    [
        (False, CHANNEL, "Slack is not set up for approvals"),
        # A registry entry edited by hand: the fleet template and onboarding refuse it
        (True, None, "the application names no Slack channel"),
    ],
    ids=["notices-only-secret", "no-channel"],
)
def test_slack_approvers_who_cannot_be_asked_page_on_call_and_the_approval_still_waits(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    slack_for_approvals: bool,
    channel: str | None,
    why: str,
) -> None:
    # Given an application whose approvers are named by Slack id alone, that Slack cannot ask
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # the suite's default is off
    with approval_gate(slack_for_approvals=slack_for_approvals) as gate:
        # When its rollout waits for approval
        waiting = wait_for_approval(
            gate, approvers=Approvers(slack_user_ids=(ALICE_SLACK,), slack_channel=channel)
        )
        approval = approval_of(gate, waiting)
        posted = gate.slack.posted(CHANNEL)

    # Then nobody is asked, the approval still waits (the CLI can decide) ...
    assert (waiting.links, waiting.message, approval.status.value) == ({}, None, "pending")
    assert not any(approval.approval_id in json.dumps(m.blocks) for m in posted)
    # ... and the metric ApprovalsNotAskedInSlackAlarm counts is emitted once, with an error log
    out = capsys.readouterr().out.splitlines()
    emitted = [json.loads(line) for line in out if '"_aws"' in line]
    assert [m["ApprovalsNotAskedInSlack"] for m in emitted if "ApprovalsNotAskedInSlack" in m] == [[1.0]]
    assert any(f"approvers named by Slack id not asked: {why}" in line and '"ERROR"' in line for line in out)
