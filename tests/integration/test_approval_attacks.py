"""Bad input and attacks on the approval gate: each is refused, and nothing changes."""

import base64
import copy
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from canaryfleet.api.slack_app import REPLAYED

from canaryfleet_local.slack import SlackMessage
from tests.integration.approval_gate import (
    ALICE,
    ALICE_SLACK,
    BOB,
    MALLORY,
    MALLORY_SLACK,
    Gate,
    approval_gate,
    approval_of,
    assert_nothing_changed,
    audit,
    ended,
    heading,
    http,
    link_fields,
    page_url,
    post_decision,
    running_rollout,
    signing_key,
    wait_for_approval,
)
from tests.integration.helpers import invoke

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def gate() -> Iterator[Gate]:
    with approval_gate() as local:
        yield local


def signed_with_the_real_key(gate: Gate, approval_id: str, approver: str, expires: int) -> str:
    """A signature as the platform makes it (to show what else the gate checks)."""
    message = "\n".join(("canaryfleet-approval-link/v1", approval_id, approver, str(expires))).encode()
    digest = hmac.new(signing_key(gate).encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# -- signatures ----------------------------------------------------------------------------
def test_a_forged_signature_is_refused(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    forged = base64.urlsafe_b64encode(b"\x00" * 32).rstrip(b"=").decode()

    status, html = post_decision(waiting.link(ALICE), "approve", signature=forged)

    assert (status, heading(html)) == (403, "This link is not valid")
    assert_nothing_changed(gate, waiting)


def test_a_signature_with_one_character_changed_is_refused(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    signature = link_fields(waiting.link(ALICE))["signature"]
    altered = signature[:-1] + ("A" if signature[-1] != "A" else "B")

    status, _ = post_decision(waiting.link(ALICE), "approve", signature=altered)

    assert status == 403
    assert_nothing_changed(gate, waiting)


def test_a_link_whose_approver_was_changed_is_refused(gate: Gate) -> None:
    waiting = wait_for_approval(gate)

    status, _ = post_decision(waiting.link(ALICE), "approve", approver=BOB)

    assert status == 403
    assert_nothing_changed(gate, waiting)


def test_a_link_whose_expiry_was_pushed_back_is_refused(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    later = str(int(link_fields(waiting.link(ALICE))["expires"]) + 86_400)

    status, _ = post_decision(waiting.link(ALICE), "approve", expires=later)

    assert status == 403
    assert_nothing_changed(gate, waiting)


def test_one_approvals_link_does_not_work_on_another(gate: Gate) -> None:
    mine, other = wait_for_approval(gate), wait_for_approval(gate)
    foreign = page_url(other.link(ALICE)) + "?" + mine.link(ALICE).split("?", 1)[1]

    status, _ = post_decision(foreign, "approve")
    shown, _ = http("GET", foreign)

    assert (status, shown) == (403, 403)
    assert_nothing_changed(gate, other)
    assert_nothing_changed(gate, mine)


def test_a_correctly_signed_link_for_someone_not_an_approver_is_refused(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    expires = int(link_fields(waiting.link(ALICE))["expires"])
    fields = {"approver": MALLORY, "expires": str(expires)}
    fields["signature"] = signed_with_the_real_key(gate, waiting.approval_id, MALLORY, expires)

    status, _ = post_decision(f"{page_url(waiting.link(ALICE))}?{urlencode(fields)}", "approve")

    assert status == 403
    assert_nothing_changed(gate, waiting)


# -- single use and time ------------------------------------------------------------------
def test_a_link_used_twice_shows_the_first_decision_and_changes_nothing_more(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    post_decision(waiting.link(ALICE), "approve", comment="first")

    status, html = post_decision(waiting.link(ALICE), "reject", comment="second")

    assert (status, heading(html)) == (409, "Already decided: approved")
    assert f"Approved by {ALICE} via the approval page" in html
    assert ended(gate, waiting)["status"] == "SUCCEEDED"
    assert [(e["kind"], e["reason"]) for e in audit(gate, waiting)] == [("approve", "first")]
    assert approval_of(gate, waiting).status.value == "approved"


def test_another_approvers_later_click_changes_nothing(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    assert waiting.message is not None
    seen_by_alice = copy.deepcopy(waiting.message)  # her Slack still shows the buttons
    post_decision(waiting.link(BOB), "reject", comment="no")

    gate.slack.press(gate.api.url, seen_by_alice, "approval.approve", ALICE_SLACK)

    assert ended(gate, waiting)["error"] == "Rejected"
    assert [e["kind"] for e in audit(gate, waiting)] == ["reject"]
    assert gate.slack.calls[-1].response_type == "ephemeral"
    assert "Rejected by bob@example.com" in gate.slack.calls[-1].text


def test_an_expired_link_decides_nothing(gate: Gate) -> None:
    waiting = wait_for_approval(gate, timeout_seconds=1)
    time.sleep(1.2)

    status, html = post_decision(waiting.link(ALICE), "approve")

    assert (status, heading(html)) == (410, "Expired")
    assert ended(gate, waiting)["error"] == "States.Timeout"
    assert approval_of(gate, waiting).status.value == "expired"
    assert [e["kind"] for e in audit(gate, waiting)] == ["approval_expired"]


def test_a_decision_for_a_rollout_no_longer_waiting_is_refused(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    invoke(
        gate.cloud, "DecideFunction", {"application": waiting.application, "action": "abort", "by": "oncall"}
    )
    ended(gate, waiting)

    status, html = post_decision(waiting.link(ALICE), "approve")

    assert (status, heading(html)) == (409, "No longer waiting")
    assert "aborted by oncall" in html
    assert [e["kind"] for e in audit(gate, waiting)] == ["abort"]
    assert approval_of(gate, waiting).status.value == "closed"


# -- GET never decides ---------------------------------------------------------------------
def test_a_get_that_tries_to_decide_only_shows_the_page(gate: Gate) -> None:
    waiting = wait_for_approval(gate)

    status, html = http("GET", waiting.link(ALICE) + "&action=approve&comment=prefetched")

    assert (status, heading(html)) == (200, "Waiting for your decision")
    assert_nothing_changed(gate, waiting)


def test_there_is_no_decision_url_to_get(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    query = waiting.link(ALICE).split("?", 1)[1]

    status, _ = http("GET", f"{page_url(waiting.link(ALICE))}/approve?{query}")

    assert status == 404
    assert_nothing_changed(gate, waiting)


# -- malformed input ----------------------------------------------------------------------
def test_a_json_body_is_not_a_form(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    body = json.dumps({**link_fields(waiting.link(ALICE)), "action": "approve"}).encode()

    status, _ = http("POST", page_url(waiting.link(ALICE)), body, {"Content-Type": "application/json"})

    assert status == 415
    assert_nothing_changed(gate, waiting)


@pytest.mark.parametrize(
    "body",
    [
        "action=approve",  # no signed fields
        "action=approve&action=reject&approver=x&expires=1&signature=y",  # a field twice
        "action=merge",  # not an action
        "%%%&&==",  # not a form
        "",  # nothing
    ],
    ids=["unsigned", "duplicate-field", "unknown-action", "garbage", "empty"],
)
def test_a_malformed_form_is_refused(gate: Gate, body: str) -> None:
    waiting = wait_for_approval(gate)
    if body.startswith("action=merge"):
        body = urlencode({**link_fields(waiting.link(ALICE)), "action": "merge"})

    status, _ = http("POST", page_url(waiting.link(ALICE)), body.encode(), FORM)

    assert status == 400
    assert_nothing_changed(gate, waiting)


def test_an_incomplete_link_is_refused(gate: Gate) -> None:
    waiting = wait_for_approval(gate)

    status, _ = http("GET", page_url(waiting.link(ALICE)) + "?approver=alice%40example.com")

    assert status == 400
    assert_nothing_changed(gate, waiting)


# -- Slack ---------------------------------------------------------------------------------
def test_a_slack_user_who_is_not_an_approver_is_told_so_and_nothing_changes(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    assert waiting.message is not None

    status, _ = gate.slack.press(gate.api.url, waiting.message, "approval.approve", MALLORY_SLACK)

    assert status == 200
    refusal = gate.slack.calls[-1]
    assert (refusal.kind, refusal.response_type, refusal.replace_original) == (
        "response_url",
        "ephemeral",
        False,
    )
    assert "not an approver" in refusal.text
    assert_nothing_changed(gate, waiting)


def test_a_signed_request_naming_a_response_url_outside_slack_gets_nothing_sent_there(gate: Gate) -> None:
    # Given a listener on a host that is not Slack's (an internal service, say)
    heard: list[str] = []

    class Listener(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            heard.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    listener = HTTPServer(("127.0.0.1", 0), Listener)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    try:
        waiting = wait_for_approval(gate)
        assert waiting.message is not None
        # When a correctly signed press (whose answer goes to its response_url) names that host
        form = parse_qs(gate.slack.button_press_body(waiting.message, "approval.approve", MALLORY_SLACK))
        payload = json.loads(form["payload"][0])
        payload["response_url"] = f"http://127.0.0.1:{listener.server_port}/internal/admin"
        body = urlencode({"payload": json.dumps(payload)})
        before = len(gate.slack.calls)

        status, _ = gate.slack.send(
            f"{gate.api.url}/slack/interactions", body, gate.slack.signed_headers(body)
        )

        # Then Slack gets its 200, nothing is posted anywhere, and nothing changes
        assert status == 200
        assert heard == []
        assert [call.kind for call in gate.slack.calls[before:] if call.kind != "users.info"] == []
        assert_nothing_changed(gate, waiting)
    finally:
        listener.shutdown()
        listener.server_close()


def test_a_slack_request_with_a_bad_signature_is_refused(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    assert waiting.message is not None
    body = gate.slack.button_press_body(waiting.message, "approval.approve", ALICE_SLACK)
    headers = {**gate.slack.signed_headers(body), "X-Slack-Signature": "v0=" + "0" * 64}

    status, _ = gate.slack.send(f"{gate.api.url}/slack/interactions", body, headers)

    assert status == 401
    assert_nothing_changed(gate, waiting)


def test_a_slack_request_signed_for_another_body_is_refused(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    assert waiting.message is not None
    body = gate.slack.button_press_body(waiting.message, "approval.approve", MALLORY_SLACK)
    headers = gate.slack.signed_headers(body)
    swapped = body.replace(MALLORY_SLACK, ALICE_SLACK)

    status, _ = gate.slack.send(f"{gate.api.url}/slack/interactions", swapped, headers)

    assert status == 401
    assert_nothing_changed(gate, waiting)


def test_a_slack_request_older_than_five_minutes_is_refused(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    assert waiting.message is not None
    body = gate.slack.button_press_body(waiting.message, "approval.approve", ALICE_SLACK)
    replayed = gate.slack.signed_headers(body, timestamp=int(time.time()) - 301)

    status, _ = gate.slack.send(f"{gate.api.url}/slack/interactions", body, replayed)

    assert status == 401
    assert_nothing_changed(gate, waiting)


def test_a_signed_slack_request_with_malformed_json_is_refused(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    body = urlencode({"payload": '{"type": "block_actions", "user": '})

    status, _ = gate.slack.send(f"{gate.api.url}/slack/interactions", body, gate.slack.signed_headers(body))

    assert status == 400
    assert_nothing_changed(gate, waiting)


def test_a_slash_command_from_someone_not_an_approver_changes_nothing(gate: Gate) -> None:
    waiting = wait_for_approval(gate, register=True)
    body = gate.slack.command_body(MALLORY_SLACK, f"abort {waiting.application} because I can")

    status, answer = gate.slack.send(f"{gate.api.url}/slack/commands", body, gate.slack.signed_headers(body))

    assert status == 200
    assert json.loads(answer) == {
        "response_type": "ephemeral",
        "text": f"You are not an approver of {waiting.application}; nothing was changed.",
    }
    assert_nothing_changed(gate, waiting)
    record = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert record is not None and record.abort_requested is None


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_slacks_certificate_check_of_the_command_url_is_answered_and_changes_nothing(
    gate: Gate, signed: bool
) -> None:
    # Given a rollout waiting for approval, and Slack checking the slash command's URL (it sends
    # ssl_check=1 and a token when the URL is set or changed)
    waiting = wait_for_approval(gate, register=True)
    body = urlencode({"ssl_check": "1", "token": "gIkuvaNzQIHg97ATvDxqgjtO"})
    headers = gate.slack.signed_headers(body) if signed else FORM

    # When it reaches the command endpoint
    status, answer = gate.slack.send(f"{gate.api.url}/slack/commands", body, headers)

    # Then it is answered 200 with nothing, and nothing changed
    assert (status, answer) == (200, "")
    assert_nothing_changed(gate, waiting)


# -- Slack: each request once, each command on one rollout ---------------------------------
def slash(
    gate: Gate, text: str, user: str = ALICE_SLACK, *, typed: bool = True
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A signed slash command sent once: its body and headers (to replay), and the app's answer.
    ``typed``: ``text`` as the person typed it (Slack escapes it), else as Slack sends it."""
    body = gate.slack.command_body(user, text, typed=typed)
    headers = gate.slack.signed_headers(body)
    status, answer = gate.slack.send(f"{gate.api.url}/slack/commands", body, headers)
    assert status == 200
    return body, headers, json.loads(answer)


def press_confirm(gate: Gate, reply: dict[str, Any], action_id: str) -> str:
    """Press the confirm button of an ephemeral reply; what the app answered through the response URL."""
    prompt = SlackMessage("C0LOCAL", "1.000001", reply["text"], reply["blocks"])
    body = gate.slack.button_press_body(prompt, action_id, ALICE_SLACK)
    before = len(gate.slack.calls)
    status, _ = gate.slack.send(f"{gate.api.url}/slack/interactions", body, gate.slack.signed_headers(body))
    assert status == 200
    [answer] = [call for call in gate.slack.calls[before:] if call.kind == "response_url"]
    return answer.text


def next_rollout_takes_the_lock(gate: Gate, application: str, version: str = "1.3.0") -> str:
    """The application's next build holds the lock now (its own rollout record)."""
    return running_rollout(gate, application, version, "v2").rollout_id


def test_a_replayed_slash_command_has_no_second_effect_and_says_so(gate: Gate) -> None:
    waiting = wait_for_approval(gate, register=True)
    body, headers, first = slash(gate, f"abort {waiting.application} 1.2.0 errors rising")
    ended(gate, waiting)

    status, answer = gate.slack.send(f"{gate.api.url}/slack/commands", body, headers)

    assert first["text"].endswith("done: errors rising")
    assert (status, json.loads(answer)) == (200, {"response_type": "ephemeral", "text": REPLAYED})
    assert [e["kind"] for e in audit(gate, waiting)] == ["abort"]


def test_a_promote_replayed_on_the_next_build_does_not_release_it(gate: Gate) -> None:
    waiting = wait_for_approval(gate, register=True)
    body, headers, _ = slash(gate, f"promote {waiting.application} 1.2.0")
    assert ended(gate, waiting)["status"] == "SUCCEEDED"
    following = next_rollout_takes_the_lock(gate, waiting.application)

    status, answer = gate.slack.send(f"{gate.api.url}/slack/commands", body, headers)

    assert (status, json.loads(answer)["text"]) == (200, REPLAYED)
    record = gate.rollouts.get(waiting.application, following)
    assert record is not None and (record.promoted_by, record.audit) == (None, [])


def test_a_replayed_button_press_has_no_second_effect_and_says_so(gate: Gate) -> None:
    waiting = wait_for_approval(gate)
    assert waiting.message is not None
    body = gate.slack.button_press_body(waiting.message, "approval.reject", ALICE_SLACK)
    headers = gate.slack.signed_headers(body)
    gate.slack.send(f"{gate.api.url}/slack/interactions", body, headers)
    ended(gate, waiting)
    calls = len(gate.slack.calls)

    status, answer = gate.slack.send(f"{gate.api.url}/slack/interactions", body, headers)

    assert (status, answer) == (200, REPLAYED)
    assert len(gate.slack.calls) == calls, "a replay tells Slack nothing"
    assert [e["kind"] for e in audit(gate, waiting)] == ["reject"]


def test_slack_requests_are_remembered_by_a_digest_of_their_signature_that_expires(gate: Gate) -> None:
    waiting = wait_for_approval(gate, register=True)
    _, headers, _ = slash(gate, "help")
    signature = headers["X-Slack-Signature"]

    items = gate.cloud.client("dynamodb").scan(TableName=gate.cloud.output("StateTableName"))["Items"]
    [seen] = [
        i for i in items if i["pk"]["S"] == "SLACKREQ#" + hashlib.sha256(signature.encode()).hexdigest()
    ]

    assert signature.removeprefix("v0=") not in json.dumps(items)
    assert time.time() + 300 < int(seen["expires_at"]["N"]) < time.time() + 3600
    assert_nothing_changed(gate, waiting)


def test_a_command_without_a_version_asks_to_confirm_and_changes_nothing_yet(gate: Gate) -> None:
    waiting = wait_for_approval(gate, register=True)

    _, _, reply = slash(gate, f"promote {waiting.application}")

    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == f"Promote {waiting.application} 1.2.0 (rollout `{waiting.rollout_id}`)?"
    [button] = [e for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert json.loads(button["value"])["rollout_id"] == waiting.rollout_id
    assert_nothing_changed(gate, waiting)


def test_a_reason_too_long_for_a_confirm_button_is_refused_and_changes_nothing(gate: Gate) -> None:
    waiting = wait_for_approval(gate, register=True)
    reason = '"p99" ' * 240  # 1,440 characters (within the 1,500 allowed), each quote two in JSON

    _, _, reply = slash(gate, f"abort {waiting.application} {reason}")

    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("That reason is too long to carry on a confirm button")
    assert f"/canaryfleet abort {waiting.application} 1.2.0 <reason>" in reply["text"]
    assert not [b for b in reply.get("blocks") or [] if b["type"] == "actions"]
    assert_nothing_changed(gate, waiting)


def test_the_confirm_button_promotes_the_rollout_it_carries(gate: Gate) -> None:
    waiting = wait_for_approval(gate, register=True)
    _, _, reply = slash(gate, f"promote {waiting.application}")

    said = press_confirm(gate, reply, "rollout.promote")

    assert said == f"Promote of {waiting.application} rollout {waiting.rollout_id} by <@U0ALICE> done"
    assert json.loads(ended(gate, waiting)["output"])["decision"]["promoted"] is True


def test_a_confirm_button_for_a_rollout_that_ended_does_not_touch_the_next_one(gate: Gate) -> None:
    waiting = wait_for_approval(gate, register=True)
    _, _, reply = slash(gate, f"abort {waiting.application} not this one")
    post_decision(waiting.link(ALICE), "approve")
    ended(gate, waiting)
    following = next_rollout_takes_the_lock(gate, waiting.application)

    said = press_confirm(gate, reply, "rollout.abort")

    assert (
        said
        == f"Rollout {waiting.rollout_id} of {waiting.application} is no longer running; nothing was changed."
    )
    record = gate.rollouts.get(waiting.application, following)
    assert record is not None and (record.abort_requested, record.audit) == (None, [])


def test_a_command_naming_another_version_changes_nothing(gate: Gate) -> None:
    waiting = wait_for_approval(gate, register=True)

    _, _, reply = slash(gate, f"promote {waiting.application} 1.1.9")

    assert reply == {
        "response_type": "ephemeral",
        "text": f"{waiting.application} is rolling out 1.2.0, not 1.1.9; nothing was changed.",
    }
    assert_nothing_changed(gate, waiting)


# Typed, Slack sends the brackets escaped; a mention or link Slack resolved comes with its own.
@pytest.mark.parametrize("typed", [True, False], ids=["typed", "resolved-by-slack"])
def test_a_reason_with_mrkdwn_is_shown_as_text_in_the_reply(gate: Gate, typed: bool) -> None:
    waiting = wait_for_approval(gate, register=True)

    _, _, reply = slash(
        gate, f"abort {waiting.application} 1.2.0 <!channel> see <https://evil.example|runbook>", typed=typed
    )

    assert reply["text"].endswith("done: &lt;!channel&gt; see &lt;https://evil.example|runbook&gt;")
    assert "<!channel>" not in reply["text"]


def test_a_reason_is_kept_as_typed_not_as_slack_escapes_it(gate: Gate) -> None:
    # Slack sends "p99 &gt; 2s &amp; 5xx &lt;rising&gt;" for what the person typed
    waiting = wait_for_approval(gate, register=True)

    _, _, reply = slash(gate, f"abort {waiting.application} 1.2.0 p99 > 2s & 5xx <rising> (&lt; is fine)")

    typed = "p99 > 2s & 5xx <rising> (&lt; is fine)"
    result = ended(gate, waiting)
    assert (result["error"], result["cause"]) == ("Aborted", f"aborted by alice (Slack U0ALICE): {typed}")
    record = gate.rollouts.get(waiting.application, waiting.rollout_id)
    assert record is not None and record.abort_requested is not None
    assert record.abort_requested.reason == typed
    # The reply escapes it once, for Slack to show it as typed
    assert reply["text"].endswith("done: p99 &gt; 2s &amp; 5xx &lt;rising&gt; (&amp;lt; is fine)")
