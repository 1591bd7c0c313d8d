"""The approval gate on the local cloud: how approvers are asked and how their answers end a wait."""

import html as html_lib
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urljoin

import pytest
from canaryfleet.adapters.approval_store import DynamoApprovalStore
from canaryfleet.adapters.secrets import SecretsManagerSigningKeys
from canaryfleet.logic.approval_gate import ApprovalGate, Outcome
from canaryfleet.logic.links import LinkSigner
from canaryfleet.models.app_config import APPROVER_EMAIL_MAX_LENGTH, SLACK_USER_ID_MAX_LENGTH, Approvers
from canaryfleet.models.approval import ApprovalDecision, ApprovalLink
from canaryfleet.models.rollout_record import AbortRequest, Wait
from canaryfleet.ports.clock import FixedClock

from canaryfleet_local.standins.secretsmanager import rotate_secret_with_its_function
from tests.integration.approval_gate import (
    ALICE,
    ALICE_SLACK,
    BOB,
    CAROL_SLACK,
    CHANNEL,
    Gate,
    Waiting,
    approval_gate,
    approval_of,
    assert_nothing_changed,
    audit,
    ended,
    execution,
    heading,
    http,
    link_fields,
    page_url,
    post_decision,
    signing_key,
    wait_for_approval,
)
from tests.integration.helpers import RecordingCallbacks, eventually, invoke


@pytest.fixture(scope="module")
def gate() -> Iterator[Gate]:
    with approval_gate() as local:
        yield local


# -- asking --------------------------------------------------------------------------------
def test_each_approver_gets_one_email_with_a_link_signed_for_them_alone(gate: Gate) -> None:
    waiting = wait_for_approval(gate)

    emails = gate.inbox.for_approval(waiting.approval_id)

    assert sorted(m["MessageAttributes"]["approver"]["Value"] for m in emails) == sorted(
        [ALICE, BOB, "carol@example.com"]
    )
    for message in emails:
        approver = message["MessageAttributes"]["approver"]["Value"]
        assert waiting.links[approver].count("/approvals/") == 1
        assert f"approver={approver.replace('@', '%40')}" in waiting.links[approver]
    subscribed = gate.cloud.client("sns").list_subscriptions_by_topic(
        TopicArn=gate.cloud.output("ApprovalEmailTopicArn")
    )["Subscriptions"]
    policies = {s["Endpoint"]: s for s in subscribed if s["Protocol"] == "email"}
    assert set(policies) >= {ALICE, BOB}


def test_the_slack_message_shows_the_verdict_and_approve_and_reject_buttons(gate: Gate) -> None:
    waiting = wait_for_approval(gate)

    assert waiting.message is not None
    text = json.dumps(waiting.message.blocks)
    assert "is waiting for approval" in waiting.message.text
    assert "pass: canary 0.08% errors over 1,234 requests, 81 ms" in text
    buttons = [e for b in waiting.message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("approval.approve", waiting.approval_id),
        ("approval.reject", waiting.approval_id),
    ]


def _slack_timeline_link(waiting: Waiting) -> str:
    assert waiting.message is not None
    texts = [e["text"] for b in waiting.message.blocks if b["type"] == "context" for e in b["elements"]]
    [url] = [m.group(1) for t in texts if (m := re.search(r"<(https?://[^|>]+)\|The rollout's timeline>", t))]
    return html_lib.unescape(url)  # mrkdwn writes the URL's "&" as "&amp;"


def test_the_slack_message_links_to_the_timeline_read_only_and_the_link_decides_nothing(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    url = _slack_timeline_link(waiting)
    fields = link_fields(url)

    # The card's link shows the rollout's timeline, with no approver in it
    status, html = http("GET", url)
    assert status == 200 and waiting.application in html and "Stages" in html
    assert set(fields) == {"expires", "view"}

    # A changed view signature, or an approver's signature used as one, is refused
    tampered = url.replace("view=", "view=A", 1)[: len(url)]
    assert http("GET", tampered)[0] == 403
    approver_signature = link_fields(waiting.link(ALICE))["signature"]
    assert http("GET", url.replace(fields["view"], approver_signature))[0] == 403

    # And the view signature is no approver's: it neither opens the page nor decides
    as_alice = {"approver": ALICE, "expires": fields["expires"], "signature": fields["view"]}
    page = page_url(waiting.link(ALICE))
    assert http("GET", f"{page}?{urlencode(as_alice)}")[0] == 403
    assert post_decision(f"{page}?{urlencode(as_alice)}", "approve")[0] == 403
    assert_nothing_changed(gate, waiting)


def _email_timeline_link(gate: Gate, waiting: Waiting, approver: str = ALICE) -> str:
    [message] = [
        m
        for m in gate.inbox.for_approval(waiting.approval_id)
        if m["MessageAttributes"]["approver"]["Value"] == approver
    ]
    [url] = [word for word in message["Message"].split() if "/timeline?" in word]
    return str(url)


def _page_timeline_link(waiting: Waiting, approver: str = ALICE) -> str:
    status, html = http("GET", waiting.link(approver))
    found = re.search(r'id="timeline-link" href="([^"]+)"', html)
    assert status == 200 and found, "the waiting page links to the timeline"
    return urljoin(waiting.link(approver), html_lib.unescape(found.group(1)))


def _refused_as_a_decision(gate: Gate, waiting: Waiting, timeline: str) -> None:
    """Whoever the timeline link was forwarded to cannot decide with it, however they send it."""
    fields = link_fields(timeline)
    page = page_url(waiting.link(ALICE))
    # Its fields as they are: no approver's fields among them
    status, html = post_decision(f"{page}?{urlencode(fields)}", "approve")
    assert (status, heading(html)) == (400, "The form is incomplete")
    # Or its signature given as an approver's: the same answer as a forged link
    as_alice = {"approver": ALICE, "expires": fields["expires"], "signature": fields["view"]}
    status, html = post_decision(f"{page}?{urlencode(as_alice)}", "approve")
    assert (status, heading(html)) == (403, "This link is not valid")
    assert_nothing_changed(gate, waiting)


def test_the_emails_timeline_link_is_read_only_and_cannot_decide(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    timeline = _email_timeline_link(gate, waiting)

    # It shows the timeline, with no approver in it
    status, html = http("GET", timeline)
    assert status == 200 and waiting.application in html and "Stages" in html
    assert set(link_fields(timeline)) == {"expires", "view"}
    assert page_url(timeline) == page_url(waiting.link(ALICE)) + "/timeline"
    # And posted to the approval page as a decision, it decides nothing
    _refused_as_a_decision(gate, waiting, timeline)


def test_the_approval_pages_timeline_link_is_read_only_and_cannot_decide(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    timeline = _page_timeline_link(waiting)

    status, html = http("GET", timeline)
    assert status == 200 and waiting.application in html and "Stages" in html
    assert set(link_fields(timeline)) == {"expires", "view"}
    assert link_fields(timeline)["expires"] == link_fields(_email_timeline_link(gate, waiting))["expires"]
    _refused_as_a_decision(gate, waiting, timeline)


def test_the_timeline_refuses_an_approvers_link_as_not_valid(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    query = waiting.link(ALICE).split("?", 1)[1]

    # An approver's link decides: it is no credential for the timeline (emails sent before view
    # links carried it there), and it gets the page a forged link gets
    status, html = http("GET", f"{page_url(waiting.link(ALICE))}/timeline?{query}")

    assert (status, heading(html)) == (403, "This link is not valid")
    assert waiting.application not in html
    assert_nothing_changed(gate, waiting)


def _asked_in_slack(gate: Gate, approval_id: str) -> int:
    return len([m for m in gate.slack.posted(CHANNEL) if approval_id in json.dumps(m.blocks)])


def _request_again(gate: Gate, waiting: Waiting, token: str, later_steps: int = 0) -> dict[str, Any]:
    """RequestApprovalFunction's payload for the waiting rollout, as its state sends it."""
    described = gate.cloud.client("stepfunctions").describe_execution(executionArn=waiting.execution_arn)
    task = json.loads(described["input"])
    return {
        "token": token,
        "app": task["app"],
        "ref": task["ref"],
        "timeout_seconds": task["step"]["timeout_seconds"],
        "step": task["step"]["index"] + later_steps,
    }


def test_a_retried_request_reuses_its_approval_and_asks_nobody_twice(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    record = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert record is not None and record.wait_token
    payload = _request_again(gate, waiting, record.wait_token)

    body, error = invoke(gate.cloud, "RequestApprovalFunction", payload)

    assert (body, error) == ({"approval": "waiting"}, None)
    after = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert after is not None and after.approval_id == waiting.approval_id
    assert len(gate.inbox.for_approval(waiting.approval_id)) == 3
    assert _asked_in_slack(gate, waiting.approval_id) == 1


def test_a_retry_with_a_new_task_token_keeps_its_approval_and_the_links_sent_end_the_running_wait(
    gate: Gate,
) -> None:
    # Given a rollout waiting for approval, its approvers asked
    waiting = wait_for_approval(gate)
    sfn = gate.cloud.client("stepfunctions")
    first = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert first is not None and first.wait_token

    # When the same wait is asked for again with another real task token (what a retried attempt
    # is given if Step Functions makes a new token for it): a second execution of the same step
    retry = sfn.start_execution(
        stateMachineArn=gate.machine_arn,
        name=f"{waiting.rollout_id}-retry",
        input=sfn.describe_execution(executionArn=waiting.execution_arn)["input"],
    )["executionArn"]

    def token_replaced() -> str | None:
        record = gate.rollouts.get(waiting.application, waiting.rollout_id)
        return record.wait_token if record and record.wait_token != first.wait_token else None

    eventually(token_replaced, timeout=20)

    # Then it is the same approval, nobody is asked twice, and Bob's emailed link ends the new wait
    record = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert record is not None and record.approval_id == waiting.approval_id
    assert len(gate.inbox.for_approval(waiting.approval_id)) == 3
    assert _asked_in_slack(gate, waiting.approval_id) == 1
    status, html = post_decision(waiting.link(BOB), "approve")
    assert (status, heading(html)) == (200, "Approved")
    retried = ended(gate, replace(waiting, execution_arn=retry))
    assert retried["status"] == "SUCCEEDED"
    assert json.loads(retried["output"])["decision"]["by"] == BOB
    assert approval_of(gate, waiting).status.value == "approved"
    sfn.stop_execution(executionArn=waiting.execution_arn)  # on AWS, the failed attempt's token is gone


def test_an_answer_kept_while_the_wait_was_retried_ends_the_retried_wait(gate: Gate) -> None:
    # Given a rollout waiting for approval, and Alice's answer kept for its retry: the gate
    # claims the approval and holds the claim while "Wait for approval" is being retried
    # (tests/unit/test_approval_retry_gap.py: its first attempt's token refused)
    waiting = wait_for_approval(gate)
    sfn = gate.cloud.client("stepfunctions")
    kept = ApprovalDecision(action="approve", by=ALICE, channel="page", comment="kept", at=datetime.now(UTC))
    assert gate.approvals.claim(
        waiting.approval_id, kept, "claim-of-alices-answer", kept.at - timedelta(minutes=2)
    )

    # When the wait is attempted again with another real task token
    retry = sfn.start_execution(
        stateMachineArn=gate.machine_arn,
        name=f"{waiting.rollout_id}-kept",
        input=sfn.describe_execution(executionArn=waiting.execution_arn)["input"],
    )["executionArn"]

    # Then the retried request ends its wait with Alice's answer, asking nobody again
    retried = ended(gate, replace(waiting, execution_arn=retry), timeout=20)
    assert retried["status"] == "SUCCEEDED"
    assert json.loads(retried["output"])["decision"] == {
        "decision": "approve",
        "by": ALICE,
        "comment": "kept",
    }
    approval = approval_of(gate, waiting)
    assert approval.status.value == "approved" and approval.decision == kept
    assert [(entry["kind"], entry["by"]) for entry in audit(gate, waiting) if entry["kind"] == "approve"] == [
        ("approve", ALICE)
    ]
    assert len(gate.inbox.for_approval(waiting.approval_id)) == 3
    [card] = [m for m in gate.slack.posted(CHANNEL) if waiting.application in m.text]
    assert "Approved by alice@example.com" in json.dumps(card.blocks)  # its one card now says so
    sfn.stop_execution(executionArn=waiting.execution_arn)


def test_a_request_for_another_canary_step_is_a_new_approval_and_asks_again(gate: Gate) -> None:
    # Given a rollout waiting for approval in one canary step
    waiting = wait_for_approval(gate)
    payload = _request_again(gate, waiting, "a-later-steps-task-token", later_steps=1)

    # When a later step's approval is asked for with a new token
    body, error = invoke(gate.cloud, "RequestApprovalFunction", payload)

    # Then that is a new approval, asked for anew; the first stays as it was
    assert (body, error) == ({"approval": "waiting"}, None)
    record = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert record is not None and record.approval_id not in (None, waiting.approval_id)
    assert (record.approval_step, record.wait_token) == (payload["step"], payload["token"])
    assert len(gate.inbox.for_approval(record.approval_id)) == 3
    assert _asked_in_slack(gate, record.approval_id) == 1
    assert approval_of(gate, waiting).status.value == "pending"
    gate.cloud.client("stepfunctions").stop_execution(executionArn=waiting.execution_arn)


def test_the_approval_expires_by_the_time_step_functions_times_its_wait_out(gate: Gate) -> None:
    # Given an approval of one second that nobody answers
    waiting = wait_for_approval(gate, timeout_seconds=1)

    # When Step Functions times the wait out (its timeout runs from the state's start)
    assert ended(gate, waiting)["status"] == "FAILED"

    # Then the approval had expired by then: no link outlives the wait it would end, though
    # the function read its clock after the state began
    events = gate.cloud.client("stepfunctions").get_execution_history(executionArn=waiting.execution_arn)
    when = {event["type"]: event["timestamp"] for event in events["events"]}
    approval = approval_of(gate, waiting)
    assert approval.expires_at <= when["TaskTimedOut"]
    assert approval.created_at > when["TaskStateEntered"]


def test_a_new_token_after_the_approval_expired_is_a_new_approval(gate: Gate) -> None:
    # Given an approval of one second that nobody answered
    waiting = wait_for_approval(gate, timeout_seconds=1)
    assert ended(gate, waiting)["status"] == "FAILED"  # States.Timeout: the wait and the approval are over
    payload = _request_again(gate, waiting, "a-token-after-the-expiry")

    # When the same step's approval is asked for again with another token
    body, error = invoke(gate.cloud, "RequestApprovalFunction", payload)

    # Then the expired approval is not taken up again: a new one is asked for
    assert (body, error) == ({"approval": "waiting"}, None)
    record = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert record is not None and record.approval_id not in (None, waiting.approval_id)
    assert _asked_in_slack(gate, record.approval_id) == 1


# -- the page --------------------------------------------------------------------------
def test_the_page_shows_the_rollout_the_verdict_and_a_form(gate: Gate) -> None:
    waiting = wait_for_approval(gate)

    status, html = http("GET", waiting.link(ALICE))

    assert status == 200
    assert heading(html) == "Waiting for your decision"
    assert waiting.application in html and "1.2.0" in html
    assert "1,234" in html and "0.08%" in html and "81 ms" in html
    assert 'name="action" value="approve"' in html and 'name="action" value="reject"' in html
    assert approval_of(gate, waiting).status.value == "pending"


def test_approving_on_the_page_ends_the_wait_and_records_who_how_and_the_comment(gate: Gate) -> None:
    waiting = wait_for_approval(gate)

    status, html = post_decision(waiting.link(BOB), "approve", comment="error rate matches live")

    assert (status, heading(html)) == (200, "Approved")
    result = ended(gate, waiting)
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["decision"] == {
        "decision": "approve",
        "by": BOB,
        "comment": "error rate matches live",
    }
    [entry] = audit(gate, waiting)
    assert (entry["kind"], entry["by"], entry["channel"], entry["reason"]) == (
        "approve",
        BOB,
        "page",
        "error rate matches live",
    )
    approval = approval_of(gate, waiting)
    assert approval.status.value == "approved"
    assert approval.decision is not None and approval.decision.by == BOB


def test_rejecting_on_the_page_fails_the_wait_as_rejected_saying_who_and_why(gate: Gate) -> None:
    waiting = wait_for_approval(gate)

    status, html = post_decision(waiting.link(ALICE), "reject", comment="p99 is creeping up")

    assert (status, heading(html)) == (200, "Rejected")
    result = ended(gate, waiting)
    assert (result["status"], result["error"]) == ("FAILED", "Rejected")
    assert json.loads(result["cause"]) == {"by": ALICE, "reason": "p99 is creeping up"}
    assert approval_of(gate, waiting).status.value == "rejected"


def test_the_slack_message_says_who_decided_on_the_page_and_loses_its_buttons(gate: Gate) -> None:
    waiting = wait_for_approval(gate)

    post_decision(waiting.link(BOB), "approve", comment="ship it")

    assert waiting.message is not None
    assert waiting.message.text.startswith(
        f"{waiting.application} 1.2.0: Approved by {BOB} via the approval page"
    )
    assert not any(block["type"] == "actions" for block in waiting.message.blocks)


def test_a_decision_made_through_the_cli_closes_the_approval_at_once(gate: Gate) -> None:
    waiting = wait_for_approval(gate)

    answer, error = invoke(
        gate.cloud,
        "DecideFunction",
        {
            "application": waiting.application,
            "action": "approve",
            "by": "oncall@example.com",
            "channel": "cli",
        },
    )

    assert error is None and answer["approval_id"] == waiting.approval_id
    # Settled now, not when the approval's expiry run comes: the record, Slack and the page.
    settled = DynamoApprovalStore(gate.cloud.output("StateTableName")).get(waiting.approval_id)
    assert settled is not None and settled.status.value == "approved"
    assert settled.decision is not None and settled.decision.by == "oncall@example.com"
    assert (
        waiting.message is not None and "Approved by oncall@example.com via the CLI" in waiting.message.text
    )
    status, html = http("GET", waiting.link(ALICE))
    assert (status, heading(html)) == (409, "Already decided: approved")
    assert "Approved by oncall@example.com via the CLI" in html
    expiry, _ = invoke(gate.cloud, "ExpireApprovalFunction", {"approval_id": waiting.approval_id})
    assert expiry == {"status": "approved"}  # the expiry run finds it settled


def test_a_cli_decision_refused_by_a_wait_that_is_not_being_retried_is_not_kept(gate: Gate) -> None:
    # Given the record names a token Step Functions refuses, and the execution's history shows
    # no failed attempt of "Wait for approval" (tests/unit/test_approval_retry_gap.py keeps it)
    waiting = wait_for_approval(gate)
    record = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert record is not None and record.approval_expires_at is not None
    refused = Wait(
        kind="approval",
        token="a-token-step-functions-never-issued",
        started_at=datetime.now(UTC),
        approval_id=waiting.approval_id,
        approval_expires_at=record.approval_expires_at,
        approval_step=record.approval_step,
    )
    gate.rollouts.set_wait(waiting.application, waiting.rollout_id, refused)

    answer, error = invoke(
        gate.cloud,
        "DecideFunction",
        {"application": waiting.application, "action": "approve", "by": "oncall@example.com"},
    )

    # Then DecideFunction asked the execution, found no retry, and says it was already decided
    assert error is None and (answer["outcome"], answer["detail"]) == ("already_decided", "")
    assert approval_of(gate, waiting).status.value == "pending"
    gate.cloud.client("stepfunctions").stop_execution(executionArn=waiting.execution_arn)


def test_an_abort_from_the_cli_closes_the_approval_it_ended(gate: Gate) -> None:
    waiting = wait_for_approval(gate)

    invoke(
        gate.cloud,
        "DecideFunction",
        {
            "application": waiting.application,
            "action": "abort",
            "by": "oncall@example.com",
            "reason": "incident",
        },
    )

    settled = DynamoApprovalStore(gate.cloud.output("StateTableName")).get(waiting.approval_id)
    assert settled is not None and settled.status.value == "closed"
    assert settled.closed_reason == "the rollout was aborted by oncall@example.com"
    assert ended(gate, waiting)["error"] == "Aborted"


def test_a_click_on_the_approval_of_a_rollout_stopped_in_step_functions_is_told_why(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    record = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert record is not None and record.wait_token is not None
    # What the recovery's take-over writes (logic/recovery.py): the wait is forgotten and, in the
    # same write, why; the cause is whatever the operator gave StopExecution
    stopped = "stopped outside canaryfleet: Manual: <b>paged</b> & rolled"
    gate.rollouts.clear_wait(waiting.application, waiting.rollout_id, record.wait_token, stopped)

    status, html = post_decision(waiting.link(ALICE), "approve")

    said = f"{stopped}; the rollout rolls back"
    assert (status, heading(html)) == (409, "No longer waiting")
    assert html_lib.escape(said, quote=False) in html and "<b>paged" not in html
    approval = approval_of(gate, waiting)
    assert (approval.status.value, approval.closed_reason, approval.decision) == ("closed", said, None)
    assert waiting.message is not None
    assert (
        f"No longer waiting: {said}".replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        in waiting.message.text
    )
    assert not any(block["type"] == "actions" for block in waiting.message.blocks)
    assert execution(gate, waiting)["status"] == "RUNNING", "the click ended no task"


def test_a_click_on_an_approval_whose_wait_an_abort_just_closed_says_aborted_not_expired(gate: Gate) -> None:
    # Given an abort that has closed the wait's task in Step Functions, its record not yet
    # cleared (the abort's DecideFunction is between SendTaskFailure and its own write)
    waiting = wait_for_approval(gate)
    gate.rollouts.request_abort(
        waiting.application, waiting.rollout_id, AbortRequest(by="oncall@example.com", reason="incident")
    )
    record = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert record is not None and record.wait_token is not None
    gate.cloud.client("stepfunctions").send_task_failure(
        taskToken=record.wait_token, error="Aborted", cause="aborted by oncall@example.com: incident"
    )

    # When an approver clicks approve in that moment
    status, html = post_decision(waiting.link(ALICE), "approve")

    # Then they are told the rollout was aborted: not that nobody decided in time
    said = "the rollout was aborted by oncall@example.com"
    assert (status, heading(html)) == (409, "No longer waiting"), html
    approval = approval_of(gate, waiting)
    assert (approval.status.value, approval.closed_reason, approval.decision) == ("closed", said, None)
    assert "approval_expired" not in [entry["kind"] for entry in audit(gate, waiting)]
    assert ended(gate, waiting)["error"] == "Aborted"


def test_an_approval_step_functions_took_whose_answer_was_lost_is_recorded_as_the_approvers(
    gate: Gate,
) -> None:
    # Given Alice's SendTaskSuccess took effect and its response was lost (what Step Functions
    # keeps of it is her output; botocore's retry is told TaskTimedOut)
    waiting = wait_for_approval(gate)
    record = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert record is not None and record.wait_token is not None
    output = {"decision": "approve", "by": ALICE, "comment": "LGTM"}
    gate.cloud.client("stepfunctions").send_task_success(
        taskToken=record.wait_token, output=json.dumps(output)
    )

    # When her answer reaches the page (its request, sent again, finds the task closed)
    status, html = post_decision(waiting.link(ALICE), "approve", "LGTM")

    # Then the approval is hers, in the approval and once in the rollout's audit: not expired
    assert (status, heading(html)) == (200, "Approved"), html
    approval = approval_of(gate, waiting)
    assert approval.status.value == "approved" and approval.decision is not None
    assert approval.decision.by == ALICE
    assert [(entry["kind"], entry.get("by")) for entry in audit(gate, waiting)] == [("approve", ALICE)]
    assert ended(gate, waiting)["status"] == "SUCCEEDED"


def test_an_approval_whose_decision_died_midway_shows_its_form_again_and_can_be_decided(gate: Gate) -> None:
    # Given an answer that claimed the approval ten minutes ago and never finished (its function
    # timed out in an outage, and could not release its claim either)
    waiting = wait_for_approval(gate)
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    dead = ApprovalDecision(action="reject", by=BOB, channel="page", comment="", at=long_ago)
    assert gate.approvals.claim(waiting.approval_id, dead, "dead-claim", long_ago - timedelta(minutes=2))

    # When an approver opens their link, then approves
    status, html = http("GET", waiting.link(ALICE))
    decided, _ = post_decision(waiting.link(ALICE), "approve")

    # Then the page showed the form, not "being decided", and the approval ends the wait
    assert (status, heading(html)) == (200, "Waiting for your decision")
    assert 'name="action" value="approve"' in html
    assert decided == 200
    approval = approval_of(gate, waiting)
    assert approval.status.value == "approved"
    assert approval.decision is not None and approval.decision.by == ALICE
    assert ended(gate, waiting)["status"] == "SUCCEEDED"


# -- Slack ---------------------------------------------------------------------------------
def test_an_approver_approves_with_the_slack_button(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    assert waiting.message is not None

    status, _ = gate.slack.press(gate.api.url, waiting.message, "approval.approve", ALICE_SLACK)

    assert status == 200
    assert ended(gate, waiting)["status"] == "SUCCEEDED"
    [entry] = audit(gate, waiting)
    assert (entry["kind"], entry["channel"], entry["by"]) == ("approve", "slack", "alice (Slack U0ALICE)")
    assert waiting.message.text.startswith(
        f"{waiting.application} 1.2.0: Approved by alice (Slack U0ALICE) via Slack"
    )


def test_an_approver_with_the_longest_address_the_registry_accepts_approves_with_the_slack_button(
    gate: Gate,
) -> None:
    # Given an approver listed by an address as long as the registry accepts, whose Slack user id
    # is as long as the app reads
    domain = ".example.com"
    email = f"dana@{'d' * (APPROVER_EMAIL_MAX_LENGTH - len('dana@') - len(domain))}{domain}"
    user_id = "U0DANA".ljust(SLACK_USER_ID_MAX_LENGTH, "0")
    gate.slack.users[user_id] = email
    waiting = wait_for_approval(gate, approvers=Approvers(emails=(email,), slack_channel=CHANNEL))
    assert waiting.message is not None

    # When they press Approve
    status, _ = gate.slack.press(gate.api.url, waiting.message, "approval.approve", user_id)

    # Then the wait ends approved, and who decided is recorded whole
    assert status == 200
    assert ended(gate, waiting)["status"] == "SUCCEEDED"
    [entry] = audit(gate, waiting)
    assert (entry["kind"], entry["by"]) == ("approve", f"{email} (Slack {user_id})")
    assert approval_of(gate, waiting).status.value == "approved"


def test_a_slack_user_listed_only_by_email_is_an_approver(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    assert waiting.message is not None

    gate.slack.press(gate.api.url, waiting.message, "approval.reject", CAROL_SLACK)

    result = ended(gate, waiting)
    assert (result["status"], result["error"]) == ("FAILED", "Rejected")
    assert json.loads(result["cause"])["by"] == "carol@example.com (Slack U0CAROL)"


def test_an_approver_aborts_the_rollout_with_the_slash_command(gate: Gate) -> None:
    waiting = wait_for_approval(gate, register=True)
    body = gate.slack.command_body(ALICE_SLACK, f"abort {waiting.application} 1.2.0 checkout errors rising")

    status, answer = gate.slack.send(f"{gate.api.url}/slack/commands", body, gate.slack.signed_headers(body))

    assert status == 200
    reply = json.loads(answer)
    assert reply["response_type"] == "in_channel"
    assert reply["text"].startswith(
        f"Abort of {waiting.application} rollout {waiting.rollout_id} by <@U0ALICE> done"
    )
    result = ended(gate, waiting)
    assert (result["status"], result["error"]) == ("FAILED", "Aborted")
    assert "checkout errors rising" in result["cause"]
    # The approval it ended is closed at once, in its record and its Slack message.
    settled = DynamoApprovalStore(gate.cloud.output("StateTableName")).get(waiting.approval_id)
    assert settled is not None and settled.status.value == "closed"
    assert waiting.message is not None and "aborted by" in waiting.message.text


def test_an_approver_promotes_the_rollout_with_the_slash_command(gate: Gate) -> None:
    waiting = wait_for_approval(gate, register=True)
    body = gate.slack.command_body(ALICE_SLACK, f"promote {waiting.application} 1.2.0")

    status, answer = gate.slack.send(f"{gate.api.url}/slack/commands", body, gate.slack.signed_headers(body))

    assert status == 200 and json.loads(answer)["text"].endswith("done")
    result = ended(gate, waiting)
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["decision"]["promoted"] is True


def test_the_slash_command_explains_itself(gate: Gate) -> None:
    body = gate.slack.command_body(ALICE_SLACK, "help")

    status, answer = gate.slack.send(f"{gate.api.url}/slack/commands", body, gate.slack.signed_headers(body))

    assert status == 200
    assert json.loads(answer) == {
        "response_type": "ephemeral",
        "text": "Usage: /canaryfleet abort <application> [version] [reason]"
        " | /canaryfleet promote <application> [version] [reason]",
    }


# -- expiry ------------------------------------------------------------------------------
def test_an_unanswered_approval_expires_and_its_page_and_slack_message_say_so(gate: Gate) -> None:
    waiting = wait_for_approval(gate, timeout_seconds=2)
    timeline = _slack_timeline_link(waiting)
    emailed = _email_timeline_link(gate, waiting)

    result = ended(gate, waiting)
    approval = eventually(
        lambda: (a := approval_of(gate, waiting)).status.value == "expired" and a, timeout=15
    )
    status, html = http("GET", waiting.link(ALICE))

    assert result["error"] == "States.Timeout"
    assert approval.decision is None
    assert [e["kind"] for e in audit(gate, waiting)] == ["approval_expired"]
    assert (status, heading(html)) == (410, "Expired")
    assert http("GET", timeline)[0] == 410, "the card's timeline link expired with the approval"
    assert http("GET", emailed)[0] == 410, "the email's timeline link expired with the approval"
    assert waiting.message is not None and "Expired at" in waiting.message.text
    assert not any(block["type"] == "actions" for block in waiting.message.blocks)


def test_nobody_listed_means_nobody_is_asked(gate: Gate) -> None:
    waiting = wait_for_approval(gate, approvers=Approvers())

    assert (waiting.links, waiting.message) == ({}, None)
    assert approval_of(gate, waiting).status.value == "pending"


# -- the signing key -----------------------------------------------------------------------
def test_links_sent_before_a_key_rotation_keep_working_and_new_ones_use_the_new_key(gate: Gate) -> None:
    before = wait_for_approval(gate)
    old_key = signing_key(gate)

    rotate_secret_with_its_function(gate.cloud.output("ApprovalSigningKeyArn"))
    after = wait_for_approval(gate)

    new_key = signing_key(gate)
    assert new_key != old_key and len(new_key) == 64
    assert signing_key(gate, "AWSPREVIOUS") == old_key
    assert http("GET", before.link(ALICE))[0] == 200
    status, html = post_decision(after.link(ALICE), "approve")
    assert (status, heading(html)) == (200, "Approved")


def test_a_look_after_the_expiry_shows_it_expired_before_anything_recorded_it(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    later = ApprovalGate(gate.approvals, gate.rollouts, RecordingCallbacks(), None, FixedClock(tomorrow))
    signer = LinkSigner(SecretsManagerSigningKeys(gate.cloud.output("ApprovalSigningKeyArn")))
    link = ApprovalLink.model_validate(
        {**link_fields(waiting.link(ALICE)), "approval_id": waiting.approval_id}
    )

    result = later.show(link, signer)

    assert result.outcome is Outcome.EXPIRED
    assert approval_of(gate, waiting).status.value == "pending", "a look writes nothing"
    assert audit(gate, waiting) == []


def test_an_approval_decided_on_the_page_ends_its_expiry_without_invoking_anything(gate: Gate) -> None:
    # 5 seconds: the decision must land before the expiry even on a loaded machine (2 did not).
    waiting = wait_for_approval(gate, timeout_seconds=5)
    post_decision(waiting.link(ALICE), "approve")
    machine = gate.cloud.output("ApprovalExpiryStateMachineArn")
    expiry = machine.replace(":stateMachine:", ":execution:") + f":{waiting.approval_id}"

    record = gate.cloud.wait_for_execution(expiry, timeout=20)

    assert record.status == "SUCCEEDED"
    assert record.states_entered[-2:] == ["Is it still open", "Already decided"]
    assert "Expire the approval" not in record.states_entered
    assert approval_of(gate, waiting).status.value == "approved"
