"""An approval whose Slack approvers cannot be asked, because Slack is set up for notices only."""

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


def test_slack_approvers_not_asked_for_want_of_slack_set_up_for_approvals_page_on_call(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the platform's Slack secret without its signing secret (notices only), and an
    # application whose approvers are named by Slack id alone
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # the suite's default is off
    with approval_gate(slack_for_approvals=False) as gate:
        # When its rollout waits for approval
        waiting = wait_for_approval(
            gate, approvers=Approvers(slack_user_ids=(ALICE_SLACK,), slack_channel=CHANNEL)
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
    assert any("approvers named by Slack id not asked" in line and '"ERROR"' in line for line in out)
