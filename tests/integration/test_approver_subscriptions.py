"""`canaryfleet approvers`: approval emails that a mail scanner opening every link cannot switch off.

Every email SNS sends ends with an unsubscribe link that works for whoever opens it, so a mail
scanner that opens every link unsubscribes the approver. A subscription confirmed with AWS
credentials and ``AuthenticateOnUnsubscribe`` (what `approvers confirm` does with the
confirmation email's link) can only be ended with credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from canaryfleet.adapters.approval_email import PENDING_CONFIRMATION, SnsApprovalEmail
from canaryfleet.adapters.clients import reset_clients
from typer.testing import CliRunner

from canaryfleet_cli.main import app
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.mailbox import LocalMailbox

ANA, BO = "ana@example.com", "bo@example.com"
runner = CliRunner()


@pytest.fixture
def unconfirmed(cloud: LocalCloud) -> Iterator[LocalCloud]:
    """A cloud whose approvers have not followed SNS's confirmation links (yet)."""
    cloud.stand_ins.sns_email.confirm_on_subscribe = False
    reset_clients()
    yield cloud
    reset_clients()


def cli(*args: str) -> Any:
    result = runner.invoke(app, ["approvers", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def cli_error(*args: str) -> str:
    result = runner.invoke(app, ["approvers", *args])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


def link_for(cloud: LocalCloud, email: str) -> str:
    [sent] = [c for c in cloud.stand_ins.sns_email.confirmations if c.endpoint == email]
    return sent.link


def subscriptions(cloud: LocalCloud) -> dict[str, str]:
    listed = cloud.client("sns").list_subscriptions_by_topic(TopicArn=cloud.output("ApprovalEmailTopicArn"))
    return {s["Endpoint"]: s["SubscriptionArn"] for s in listed["Subscriptions"]}


def test_a_scanner_opening_the_unsubscribe_link_ends_a_link_confirmed_subscription_but_not_a_protected_one(
    unconfirmed: LocalCloud,
) -> None:
    email = SnsApprovalEmail(unconfirmed.output("ApprovalEmailTopicArn"))
    inbox = LocalMailbox(unconfirmed)
    email.ensure_subscribed((ANA, BO))

    # Bo opens his confirmation link; Ana copies hers and an operator confirms it with credentials,
    # pasting it on standard input (out of the shell's history and the process list)
    assert inbox.confirm(BO)
    pasted = runner.invoke(app, ["approvers", "confirm", "--json"], input=link_for(unconfirmed, ANA) + "\n")
    assert pasted.exit_code == 0, pasted.output
    confirmed = json.loads(pasted.stdout)
    listed = {row["email"]: (row["state"], row["protected"]) for row in cli("list")}

    assert confirmed["endpoint"] == ANA and confirmed["protected"] is True
    assert confirmed["subscription_arn"] == subscriptions(unconfirmed)[ANA]
    assert listed == {ANA: ("confirmed", True), BO: ("confirmed", False)}

    # A mail scanner opens the unsubscribe link at the foot of each approval email
    ended = {who: unconfirmed.stand_ins.sns_email.open_unsubscribe_link(who) for who in (ANA, BO)}
    email.send(ANA, "Approve hello-app 2.0.1", "https://approvals.example/approvals/a2?x")
    email.send(BO, "Approve hello-app 2.0.1", "https://approvals.example/approvals/a2?y")

    assert ended == {ANA: 0, BO: 1}
    assert inbox.links("a2") == {ANA: "https://approvals.example/approvals/a2?x"}
    assert [row["email"] for row in cli("list")] == [ANA]


def test_the_table_says_which_subscriptions_any_link_click_can_end(unconfirmed: LocalCloud) -> None:
    email = SnsApprovalEmail(unconfirmed.output("ApprovalEmailTopicArn"))
    email.ensure_subscribed((ANA, BO))
    LocalMailbox(unconfirmed).confirm(BO)

    shown = runner.invoke(app, ["approvers", "list"], terminal_width=200)

    assert shown.exit_code == 0, shown.output
    lines = {line.split()[1]: line for line in shown.output.splitlines() if "@example.com" in line}
    assert "pending" in lines[ANA]
    assert "any link click (not protected)" in lines[BO]
    assert "aws sns unsubscribe" in " ".join(shown.output.split())


def test_a_link_that_is_not_this_topics_confirmation_is_refused_and_confirms_nothing(
    unconfirmed: LocalCloud,
) -> None:
    email = SnsApprovalEmail(unconfirmed.output("ApprovalEmailTopicArn"))
    email.ensure_subscribed((ANA,))
    link = link_for(unconfirmed, ANA)
    token = link.split("Token=")[1].split("&")[0]
    topic = unconfirmed.output("ApprovalEmailTopicArn")
    notify_topic = unconfirmed.output("NotificationTopicArn")

    elsewhere = cli_error(
        "confirm", link.replace("https://sns.us-east-1.amazonaws.com", "https://sns.example.net")
    )
    other_topic = cli_error(
        "confirm", link.replace(topic.replace(":", "%3A"), notify_topic.replace(":", "%3A"))
    )
    wrong_token = cli_error("confirm", link.replace(token, "0" * len(token)))
    cut_short = cli_error("confirm", link.replace(token, token[:8]))

    assert "https://sns.<region>.amazonaws.com/" in elsewhere
    assert "not to this platform's approval email topic" in other_topic
    assert "SNS did not confirm it (InvalidParameter" in wrong_token
    assert "cut short" in cut_short
    for said in (elsewhere, other_topic, wrong_token, cut_short):
        assert token[:8] not in said  # the token confirms for whoever holds it: never repeated
    assert subscriptions(unconfirmed) == {ANA: PENDING_CONFIRMATION}

    # The right link still confirms; used again, SNS refuses it (nothing left to confirm)
    assert cli("confirm", link)["protected"] is True
    assert "SNS did not confirm it" in cli_error("confirm", link)
