"""Notifications: one Slack thread per rollout, in any order of arrival, and an email at the end."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from canaryfleet.errors import NotificationNotDelivered, SlackThreadBeingStarted
from canaryfleet.logic.notify import (
    NOTICE_BUDGET_SECONDS,
    Notifications,
    NotifyChannels,
    email_summary,
    tell_slack,
)
from canaryfleet.logic.notify_messages import card_blocks, detail_lines, reply_blocks, summary_email
from canaryfleet.models.app_config import AppConfig, Approvers, FleetGroup
from canaryfleet.models.approval import SlackMessageRef
from canaryfleet.models.events import parse_event
from canaryfleet.models.notification import Notice, NoticeBatch, NoticeRecord
from canaryfleet.ports.approvals import CardUpdate
from canaryfleet.ports.clock import FixedClock
from canaryfleet.ports.notify import STALE_CLAIM

from tests.helpers import load_event
from tests.unit.drain_fakes import (
    FakeRegistry,
    FakeSlack,
    InMemoryRollouts,
    InMemorySlackThreads,
    RecordingEmail,
)

APP = "payments-api"
ROLLOUT = "payments-api-1_4_2-5c1d9a0e7b3f42a8d6e1f0b9"
CHANNEL = "C0DEPLOYS"
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
REASON = "canary alarm payments-api-canary-5xx-rate went to ALARM"


def notice(kind: str, seconds: int = 0, **body: Any) -> Notice:
    message = {"rollout_id": ROLLOUT, "application": APP, "version": "1.4.2", **body}
    return Notice(
        kind=kind,
        application=APP,
        body=message,
        message_id=f"msg-{kind}-{seconds}",
        published_at=T0 + timedelta(seconds=seconds),
    )


def app_config(approvers: Approvers) -> AppConfig:
    group = FleetGroup(
        deployment_group="g",
        target_group_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/x/1",
        auto_scaling_group="asg",
    )
    return AppConfig(
        application=APP,
        codedeploy_application="payments-api",
        listener_rule_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/x/1/2/3",
        canary=group,
        live=group,
        approvers=approvers,
    )


APPROVERS = Approvers(emails=("alice@example.com", "bob@example.com"), slack_channel=CHANNEL)


def channels(
    slack: FakeSlack | None = None, approvers: Approvers = APPROVERS, records: InMemoryRollouts | None = None
) -> NotifyChannels:
    """Where notices go, at T0."""
    return NotifyChannels(
        registry=FakeRegistry(app_config(approvers)),
        threads=InMemorySlackThreads(),
        rollouts=records or InMemoryRollouts(),
        slack=slack,
        email=RecordingEmail(),
        clock=FixedClock(T0),
    )


# --- one thread per rollout ---------------------------------------------------------------


def test_a_rollout_is_one_thread_whose_card_shows_the_furthest_stage() -> None:
    slack = FakeSlack()
    where = channels(slack)
    for n in (
        notice("rollout.started", 0),
        notice("rollout.canary_deployed", 40, previous_stage="started", previous_stage_seconds=40),
        notice("rollout.traffic_shifted", 41, detail={"canary": 5, "live": 95}),
        notice("rollout.rolled_back", 300, detail={"reason": REASON, "outcome": "rolled_back"}),
    ):
        tell_slack(notice=n, channels=where)

    [root] = slack.roots()
    assert root["channel"] == CHANNEL and "Rollout started" in root["text"]
    assert [r["thread_ts"] for r in slack.replies()] == [root["ts"]] * 4
    assert "canary 5%, live 95%" in json.dumps(slack.replies()[2]["blocks"])
    assert "started took 40 s" in json.dumps(slack.replies()[1]["blocks"])
    assert slack.updates[-1] == (root["ts"], f"payments-api 1.4.2: Rolled back: {REASON}")


class _SlowUpdateOf(FakeSlack):
    """chat.update of one stage's card takes a while: meanwhile ``meanwhile`` runs (another
    invocation telling a later notice of the rollout), and the slow update lands after it."""

    def __init__(self, slow_stage: str) -> None:
        super().__init__()
        self.slow_stage = slow_stage
        self.meanwhile: list[Callable[[], object]] = []

    def update(self, message: SlackMessageRef, text: str, blocks: list[dict[str, Any]]) -> CardUpdate:
        if self.slow_stage in text and self.meanwhile:
            self.meanwhile.pop()()
        return super().update(message, text, blocks)


def test_an_earlier_stages_update_landing_after_the_outcome_does_not_leave_the_card_behind() -> None:
    # Given the awaiting-approval notice and the outcome told at the same time, the former's
    # chat.update landing after the outcome's
    slack = _SlowUpdateOf("Waiting for approval")
    where = channels(slack)
    tell_slack(notice=notice("rollout.started", 0), channels=where)
    outcome = notice("rollout.rolled_back", 60, detail={"reason": REASON, "outcome": "rolled_back"})
    slack.meanwhile.append(lambda: tell_slack(notice=outcome, channels=where))

    tell_slack(notice=notice("rollout.awaiting_approval", 59, step=1), channels=where)

    # Then the card Slack shows last is the outcome's
    assert [text.split(": ")[1] for _, text in slack.updates] == [
        "Rolled back",
        "Waiting for approval",
        "Rolled back",
    ]
    assert "Rolled back" in json.dumps(slack.cards[-1])


def test_the_card_follows_the_canary_steps_and_a_late_steps_notice_does_not_move_it_back() -> None:
    # Given a policy of two canary steps (indexes 1 to 4: shift, bake, shift, bake), the second
    # bake extended once, and step 2's verdict delivered after step 4's shift
    slack = FakeSlack()
    where = channels(slack)
    for n in (
        notice("rollout.started", 0),
        notice("rollout.traffic_shifted", 10, step=0, detail={"canary": 5, "live": 95}),
        notice("rollout.traffic_shifted", 30, step=2, detail={"canary": 25, "live": 75}),
        notice("rollout.verdict", 20, step=1),  # late
        notice("rollout.verdict", 40, step=3),
        notice("rollout.verdict", 50, step=3, extension=1),
    ):
        tell_slack(notice=n, channels=where)

    # Then the card moved with each step, said which, and never went back to step 2's verdict
    shown = [_card_status(blocks) for blocks in slack.cards]
    assert shown == [
        ":twisted_rightwards_arrows: *Canary takes traffic* (policy step 1)",
        ":twisted_rightwards_arrows: *Canary takes traffic* (policy step 3)",
        ":mag: *Canary analysed* (policy step 4)",
        ":mag: *Canary analysed* (policy step 4, bake extended)",
    ]
    assert len(slack.replies()) == 6  # every notice is still told in the thread


def _card_status(blocks: list[dict[str, Any]]) -> str:
    return str(blocks[1]["text"]["text"])


def test_a_late_notice_replies_in_the_thread_but_never_moves_the_card_back() -> None:
    slack = FakeSlack()
    where = channels(slack)
    tell_slack(notice=notice("rollout.released", 10), channels=where)  # the first to arrive
    tell_slack(notice=notice("rollout.started", 0), channels=where)
    tell_slack(notice=notice("rollout.canary_deployed", 5), channels=where)

    [root] = slack.roots()
    assert "Released" in root["text"]
    assert slack.updates == []
    assert len(slack.replies()) == 3


def test_a_notice_that_finds_the_thread_being_started_asks_to_come_back_and_posts_nothing() -> None:
    slack = FakeSlack()
    where = channels(slack)
    assert where.threads.claim(APP, ROLLOUT, T0)  # another notice, mid-post

    with pytest.raises(SlackThreadBeingStarted):
        tell_slack(notice=notice("rollout.canary_deployed"), channels=where)
    assert slack.posts == []


def test_a_claim_left_by_a_poster_that_died_is_taken_over_after_a_while() -> None:
    slack = FakeSlack()
    where = channels(slack)
    assert where.threads.claim(APP, ROLLOUT, T0 - STALE_CLAIM - timedelta(seconds=1))

    tell_slack(notice=notice("rollout.started"), channels=where)

    assert len(slack.roots()) == 1 and len(slack.replies()) == 1


def test_slack_down_on_the_first_message_raises_and_leaves_the_thread_to_the_next_try() -> None:
    slack = FakeSlack()
    where = channels(slack)
    slack.down = True
    with pytest.raises(NotificationNotDelivered):
        tell_slack(notice=notice("rollout.started"), channels=where)

    slack.down = False
    tell_slack(notice=notice("rollout.started"), channels=where)
    assert len(slack.roots()) == 1 and len(slack.replies()) == 1


def test_a_drain_that_lost_logs_is_a_message_of_its_own() -> None:
    slack = FakeSlack()
    lost = Notice(
        kind="drain.logs_lost",
        application=APP,
        body={
            "instance_id": "i-0598c7d356eba48d7",
            "trigger": "spot",
            "side": "live",
            "reason": "manifest names 2 objects that are not in S3",
            "attempts": 2,
            "log_prefix": "payments-api/i-0598c7d356eba48d7/run/",
        },
        message_id="m-1",
        published_at=T0,
    )

    tell_slack(notice=lost, channels=channels(slack))

    [message] = slack.posts
    assert message["thread_ts"] is None
    assert "i-0598c7d356eba48d7" in message["text"]
    assert "spot on the live side after 2 attempt(s)" in json.dumps(message["blocks"])


def test_without_a_bot_token_only_the_start_and_the_end_reach_the_channel() -> None:
    slack = FakeSlack(threads=False)
    where = channels(slack)
    told = [
        tell_slack(notice=notice(kind), channels=where)["slack"]
        for kind in ("rollout.started", "rollout.canary_deployed", "rollout.verdict", "rollout.released")
    ]

    assert told == [
        "posted by webhook",
        "left out without a thread",
        "left out without a thread",
        "posted by webhook",
    ]
    assert [p["thread_ts"] for p in slack.posts] == [None, None]


def test_a_webhook_that_refuses_the_outcome_makes_it_come_back_until_it_is_taken() -> None:
    slack = FakeSlack(threads=False)
    where = channels(slack)
    outcome = notice("rollout.released", 300)
    slack.down = True  # 429, or 410 channel_is_archived: a webhook answers nothing but its status
    with pytest.raises(NotificationNotDelivered):
        tell_slack(notice=outcome, channels=where)
    assert slack.posts == []

    slack.down = False
    assert tell_slack(notice=outcome, channels=where)["slack"] == "posted by webhook"
    assert [p["text"] for p in slack.posts] == ["payments-api 1.4.2: Released"]


def test_the_outcome_comes_back_until_its_card_shows_it_and_its_reply_is_posted_once() -> None:
    slack = FakeSlack()
    where = channels(slack)
    tell_slack(notice=notice("rollout.started", 0), channels=where)
    rolled_back = notice("rollout.rolled_back", 300, detail={"reason": REASON, "outcome": "rolled_back"})
    slack.update_answer = "failed"  # chat.update rate limited
    with pytest.raises(NotificationNotDelivered):
        tell_slack(notice=rolled_back, channels=where)
    assert len(slack.replies()) == 1  # the started reply only: the outcome's waits for its card

    slack.update_answer = "updated"
    tell_slack(notice=rolled_back, channels=where)  # the queue delivers it again
    [root] = slack.roots()
    assert slack.updates == [(root["ts"], f"payments-api 1.4.2: Rolled back: {REASON}")]
    assert [r["text"] for r in slack.replies()].count(f"payments-api 1.4.2: Rolled back: {REASON}") == 1


def test_a_card_slack_cannot_update_any_more_does_not_hold_the_outcome_back() -> None:
    slack = FakeSlack()
    where = channels(slack)
    tell_slack(notice=notice("rollout.started", 0), channels=where)
    slack.update_answer = "gone"  # the card was deleted from the channel
    tell_slack(notice=notice("rollout.released", 300), channels=where)
    assert slack.replies()[-1]["text"] == "payments-api 1.4.2: Released"


def test_a_stage_whose_card_update_failed_is_still_told_since_the_next_notice_updates_it() -> None:
    slack = FakeSlack()
    where = channels(slack)
    tell_slack(notice=notice("rollout.started", 0), channels=where)
    slack.update_answer = "failed"
    tell_slack(notice=notice("rollout.canary_deployed", 40), channels=where)
    slack.update_answer = "updated"
    tell_slack(notice=notice("rollout.released", 300), channels=where)
    [root] = slack.roots()
    assert slack.updates == [(root["ts"], "payments-api 1.4.2: Released")]
    assert len(slack.replies()) == 3


def test_an_application_without_a_channel_or_slack_gets_no_message() -> None:
    assert tell_slack(notice=notice("rollout.started"), channels=channels(None))["slack"] == "not configured"
    no_channel = channels(FakeSlack(), approvers=Approvers(emails=("alice@example.com",)))
    assert tell_slack(notice=notice("rollout.started"), channels=no_channel)["slack"] == "not configured"


def test_a_notice_of_an_application_nobody_onboarded_tells_nobody() -> None:
    slack = FakeSlack()
    where = channels(slack)
    stranger = notice("rollout.rejected").model_copy(update={"application": "nobody-app"})

    assert tell_slack(notice=stranger, channels=where)["slack"] == "not configured"
    assert email_summary(notice=stranger, channels=where)["email"] == "nobody to tell"
    assert slack.posts == []


# --- the email summary ------------------------------------------------------------------------


def test_the_final_outcome_is_emailed_to_each_approver_with_the_reason() -> None:
    record = {
        "received_at": "2026-11-26T09:55:00+00:00",
        "ended_at": "2026-11-26T10:05:00+00:00",
        "commit": "9fceb02d",
        "stage_started_at": "2026-11-26T09:55:01+00:00",
        "stage_rolled_back_at": "2026-11-26T10:05:00+00:00",
        "audit": [
            {
                "kind": "abort",
                "by": "arn:aws:iam::123456789012:user/oncall",
                "at": "2026-11-26T10:04:00+00:00",
            }
        ],
    }
    records = InMemoryRollouts()
    records.records[(APP, ROLLOUT)] = record
    where = channels(records=records)
    rolled_back = notice("rollout.rolled_back", detail={"reason": REASON, "outcome": "rolled_back"})

    assert email_summary(notice=rolled_back, channels=where) == {"email": "sent", "recipients": 2}
    sent = where.email.sent  # type: ignore[attr-defined]
    assert [to for to, _, _ in sent] == ["alice@example.com", "bob@example.com"]
    _, subject, body = sent[0]
    assert subject == "canaryfleet payments-api 1.4.2: rolled back"
    assert f"Reason: {REASON}" in body
    assert "Ended: 2026-11-26 10:05:00 UTC (after 10 min 0 s)" in body
    assert "Decisions: abort by arn:aws:iam::123456789012:user/oncall" in body
    assert body.index("started") < body.index("rolled back  ")


def test_only_final_outcomes_are_emailed() -> None:
    where = channels()
    for kind in ("rollout.started", "rollout.verdict", "rollout.awaiting_approval"):
        assert email_summary(notice=notice(kind), channels=where)["email"] == "not final"
    assert where.email.sent == []  # type: ignore[attr-defined]


def test_a_notice_is_told_on_both_channels_and_the_handling_says_what_was_done() -> None:
    slack = FakeSlack()
    where = channels(slack)

    told = Notifications(where).handle(notice("rollout.released"))

    assert told == {"slack": "replied", "thread_ts": slack.roots()[0]["ts"], "email": "sent", "recipients": 2}


def test_one_failed_delivery_does_not_stop_the_other_and_is_raised_to_be_retried() -> None:
    slack = FakeSlack()
    where = channels(slack)
    where.email.down = True  # type: ignore[attr-defined]

    with pytest.raises(ConnectionError):
        Notifications(where).handle(notice("rollout.released"))
    assert len(slack.replies()) == 1


# --- what people read -----------------------------------------------------------------------


def test_text_from_outside_cannot_mention_the_channel_or_fake_a_link() -> None:
    hostile = notice("rollout.rolled_back", detail={"reason": "<!channel> see <https://evil.example|logs>"})

    for text, blocks in (reply_blocks(hostile), card_blocks(hostile)):
        rendered = text + json.dumps(blocks)
        assert "<!channel>" not in rendered and "<https://evil" not in rendered
        assert "&lt;!channel&gt;" in rendered


def test_the_approvers_awaited_are_mentioned_and_what_is_not_a_slack_user_id_is_only_text() -> None:
    approvers = {"emails": ["ops@example.com"], "slack_user_ids": ["U012ABCDEF", "<!channel>", "U1|x"]}
    waiting = notice("rollout.awaiting_approval", detail={"approvers": approvers})

    [line] = [entry for entry in detail_lines(waiting) if entry.startswith("approvers: ")]

    assert line == "approvers: ops@example.com, <@U012ABCDEF>, &lt;!channel&gt;, U1|x"


def test_a_rejected_upload_summary_says_why() -> None:
    rejected = notice("rollout.rejected", reason="appspec.yml is missing")

    subject, body = summary_email(rejected, None)

    assert subject == "canaryfleet payments-api 1.4.2: rejected"
    assert "Reason: appspec.yml is missing" in body


@pytest.mark.parametrize("kind", ["rollout.released", "rollout.rolled_back"])
def test_a_long_version_never_cuts_the_outcome_out_of_the_email_subject(kind: str) -> None:
    # Given a version of 64 characters (the longest a key may name) of a 40-character application
    version = "1.4.2+build.20261126." + "c7d6a9e3f1" * 4 + "abc"
    app = "payments-gateway-settlement-api-eu-west1"
    long = notice(kind, version=version).model_copy(update={"application": app})

    subject, _ = summary_email(long, None)

    outcome = "released" if kind == "rollout.released" else "rolled back"
    assert len(version) == 64 and len(app) == 40
    assert subject.endswith(f": {outcome}") and len(subject) <= 99
    assert subject.startswith(f"canaryfleet {app} 1.4.2+build.") and subject.count("...") == 1


def test_a_release_not_recorded_says_why_on_its_card_its_reply_and_its_email() -> None:
    # record_stage's reason for a release whose "Record release" failed after its retries
    reason = "serves all traffic, but recording the release failed (<!channel> throttled)"
    unrecorded = notice("rollout.released", detail={"reason": reason})
    recorded = notice("rollout.released", detail={})

    _, card = card_blocks(unrecorded)
    _, reply = reply_blocks(unrecorded)
    subject, body = summary_email(unrecorded, None)

    said = "serves all traffic, but recording the release failed (&lt;!channel&gt; throttled)"
    assert card[1]["text"]["text"] == f":white_check_mark: *Released*: {said}"
    assert f"reason: {said}" in reply[0]["text"]["text"]
    assert subject == "canaryfleet payments-api 1.4.2: released"
    assert f"Reason: {reason}" in body
    # A release recorded has no reason to give
    assert card_blocks(recorded)[1][1]["text"]["text"] == ":white_check_mark: *Released*"
    assert "reason:" not in reply_blocks(recorded)[1][0]["text"]["text"]


# --- notices as they arrive -------------------------------------------------------------------


def test_notices_parse_from_the_queue_and_duplicates_share_a_key() -> None:
    batch = parse_event(NoticeBatch, load_event("notify/notices"))
    rolled_back, lost = (record.notice() for record in batch.Records)

    assert rolled_back.kind == "rollout.rolled_back" and rolled_back.final
    assert rolled_back.reason.startswith("canary alarm payments-api-canary-5xx-rate")
    assert lost.kind == "drain.logs_lost" and lost.rank is None
    again = rolled_back.model_copy(update={"message_id": "another-publication"})
    assert again.key == rolled_back.key
    assert lost.key == f"{APP}/2026-11-26T10-15-32Z/drain.logs_lost"


def test_a_notice_without_its_kind_is_refused() -> None:
    event = load_event("notify/notices")
    body = json.loads(event["Records"][0]["body"])
    del body["MessageAttributes"]["kind"]
    event["Records"][0]["body"] = json.dumps(body)

    record = parse_event(NoticeBatch, event).Records[0]
    with pytest.raises(ValueError, match="kind"):
        record.notice()


def test_a_multi_line_comment_is_quoted_in_the_outcome_email_so_no_line_passes_for_ours() -> None:
    records = InMemoryRollouts()
    records.records[(APP, ROLLOUT)] = {
        "received_at": "2026-11-26T09:55:00+00:00",
        "audit": [
            {
                "kind": "reject",
                "by": "bob@example.com",
                "reason": "not tonight\nReason: released by the platform",
                "at": "2026-11-26T10:04:00+00:00",
            }
        ],
    }
    where = channels(records=records)
    rejected = notice(
        "rollout.rolled_back",
        detail={"reason": "rejected by bob@example.com: not tonight\nReason: released by the platform"},
    )

    email_summary(notice=rejected, channels=where)

    _, _, body = where.email.sent[0]  # type: ignore[attr-defined]
    lines = body.splitlines()
    assert "Reason: released by the platform" not in lines, "a comment's line cannot pass for the platform's"
    assert "> Reason: released by the platform" in lines
    assert lines[lines.index("reject by bob@example.com said:") + 1 :][:2] == [
        "> not tonight",
        "> Reason: released by the platform",
    ]


def test_the_bundle_notes_are_in_the_started_reply_and_the_outcome_email() -> None:
    note = "appspec.yml: files[0].overwrite (line 6) is ignored by CodeDeploy on EC2 <!channel>"
    records = InMemoryRollouts()
    records.records[(APP, ROLLOUT)] = {"received_at": "2026-11-26T09:55:00+00:00", "bundle_notes": [note]}
    slack = FakeSlack()
    where = channels(slack, records=records)

    tell_slack(notice=notice("rollout.started", 0), channels=where)
    tell_slack(notice=notice("rollout.canary_deployed", 5), channels=where)
    email_summary(notice=notice("rollout.released", detail={"outcome": "released"}), channels=where)

    started, deployed = (reply["blocks"][0]["text"]["text"] for reply in slack.replies())
    listed = "• appspec.yml: files[0].overwrite (line 6) is ignored by CodeDeploy on EC2 &lt;!channel&gt;"
    assert listed in started
    assert "CodeDeploy on EC2" not in deployed, "the notes are told once, when the rollout starts"
    _, _, body = where.email.sent[0]  # type: ignore[attr-defined]
    assert f"  - {note}" in body.splitlines()


def test_a_bundle_note_with_a_line_break_or_an_escape_stays_one_line_in_the_reply_and_the_email() -> None:
    # Given a note kept before notes showed keys by their escapes: a double-quoted appspec key
    # with line breaks, forging a decision, and a terminal escape
    note = (
        "appspec.yml: x\n\nDecisions: approve by security-lead@example.com (change CHG-1234 verified)"
        "\n\nBundle notes \x1b[2K(line 3) is ignored by CodeDeploy on EC2"
    )
    records = InMemoryRollouts()
    records.records[(APP, ROLLOUT)] = {"received_at": "2026-11-26T09:55:00+00:00", "bundle_notes": [note]}
    slack = FakeSlack()
    where = channels(slack, records=records)

    # When the rollout starts and is released
    tell_slack(notice=notice("rollout.started", 0), channels=where)
    email_summary(notice=notice("rollout.released", detail={"outcome": "released"}), channels=where)

    # Then the note is one line in each, its line breaks and escape written out, and no line of
    # the reply or the email starts with the forged decision
    shown = (
        "appspec.yml: x\\n\\nDecisions: approve by security-lead@example.com (change CHG-1234 verified)"
        "\\n\\nBundle notes \\x1b[2K(line 3) is ignored by CodeDeploy on EC2"
    )
    started = slack.replies()[0]["blocks"][0]["text"]["text"]
    _, _, body = where.email.sent[0]  # type: ignore[attr-defined]
    assert f"• {shown}" in started.splitlines()
    assert f"  - {shown}" in body.splitlines()
    assert not any(line.startswith("Decisions") for line in [*started.splitlines(), *body.splitlines()])
    assert "\x1b" not in started + body


def test_blue_green_notices_name_the_colors() -> None:
    started = notice("rollout.started", detail={"live_color": "green"})
    shifted = notice(
        "rollout.traffic_shifted",
        detail={"canary": 10, "live": 90, "live_color": "green", "release_color": "blue"},
    )
    in_place = notice("rollout.traffic_shifted", detail={"canary": 10, "live": 90})

    assert (
        detail_lines(started)[0]
        == "blue/green: green is live; blue comes up on fresh instances with this build"
    )
    assert detail_lines(shifted)[0] == "canary (blue) 10%, live (green) 90%"
    assert detail_lines(in_place)[0] == "canary 10%, live 90%"
    assert detail_lines(notice("rollout.started", detail={"live_color": None})) == []


def test_with_too_little_time_left_the_rest_of_a_batch_comes_back_and_what_was_told_stays_told() -> None:
    # Given a batch of two notices, and an invocation whose time runs out after the first (a slow
    # Slack took it): 25 s left for the first, then 12 s, under the one-notice budget

    batch = load_event("notify/notices")
    slack = FakeSlack()
    left = iter([25.0, 12.0])
    notifications = Notifications(channels(slack), time_left=lambda: next(left))

    # When Lambda hands it over (Powertools' partial batch response, as the handler does)
    processor = BatchProcessor(event_type=EventType.SQS, model=NoticeRecord)
    response = process_partial_response(batch, notifications.tell, processor)

    # Then the first is told and the second alone comes back, untried, rather than the whole
    # batch failing with the invocation's timeout
    [_, second] = batch["Records"]
    assert 12.0 < NOTICE_BUDGET_SECONDS < 25.0
    assert response == {"batchItemFailures": [{"itemIdentifier": second["messageId"]}]}
    assert len(slack.replies()) == 1
