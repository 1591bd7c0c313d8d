"""Approval emails reach only approvers who confirmed SNS's subscription email, as on AWS.

SNS emails an address nothing until its owner follows the link of the confirmation email
Subscribe sent; ListSubscriptionsByTopic shows such a subscription as ``PendingConfirmation``.
So canaryfleet subscribes approvers at the upload, long before the approval asks them, and an
approval says (a warning and the ``ApprovalEmailsUnconfirmed`` metric) when a link cannot reach
someone yet. SNS holds at most 200 filter policies a topic by default, one per approver here:
an approver it refuses is said (an error and the ``ApprovalEmailSubscriptionsRefused`` metric,
which a platform alarm counts) and the others are still emailed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from canaryfleet.adapters.approval_email import PENDING_CONFIRMATION, SnsApprovalEmail
from canaryfleet.adapters.clients import reset_clients
from canaryfleet.models.app_config import Approvers, registry_parameter
from canaryfleet.models.policy import default_policy

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.mailbox import LocalMailbox
from canaryfleet_local.standins.sqs_sns import FILTER_POLICIES_PER_TOPIC
from tests.integration.approval_gate import ALICE_SLACK, CHANNEL, approval_gate, wait_for_approval

APP = "hello-app"
ANA, BO = "ana@example.com", "bo@example.com"


@pytest.fixture
def unconfirmed(cloud: LocalCloud) -> Iterator[LocalCloud]:
    """A cloud whose approvers have not followed SNS's confirmation links (yet)."""
    cloud.stand_ins.sns_email.confirm_on_subscribe = False
    reset_clients()  # the adapter's clients, made for this cloud only
    yield cloud
    reset_clients()


def _email_subscriptions(cloud: LocalCloud) -> dict[str, str]:
    pages = cloud.client("sns").get_paginator("list_subscriptions_by_topic")
    listed = [
        s
        for page in pages.paginate(TopicArn=cloud.output("ApprovalEmailTopicArn"))
        for s in page["Subscriptions"]
    ]
    return {s["Endpoint"]: s["SubscriptionArn"] for s in listed if s["Protocol"] == "email"}


def test_an_approver_gets_approval_emails_only_once_they_confirmed_the_subscription(
    unconfirmed: LocalCloud,
) -> None:
    email = SnsApprovalEmail(unconfirmed.output("ApprovalEmailTopicArn"))
    inbox = LocalMailbox(unconfirmed)

    # Subscribed for the first time: SNS sends the confirmation, not the link
    reach = email.ensure_subscribed(("Ana@Example.com", BO))
    email.send(ANA, "Approve hello-app 2.0.0", "https://approvals.example/approvals/a1?x")

    assert reach.subscribed_now == (ANA, BO) and reach.awaiting_confirmation == (ANA, BO)
    assert _email_subscriptions(unconfirmed) == {ANA: PENDING_CONFIRMATION, BO: PENDING_CONFIRMATION}
    assert inbox.read() == []

    # Asked again before anyone confirmed: no second subscription, still nobody to email
    again = email.ensure_subscribed((ANA, BO))

    assert again.subscribed_now == () and again.awaiting_confirmation == (ANA, BO)

    # Ana follows the link; the next email reaches her, and only her
    assert inbox.confirm(ANA)
    after = email.ensure_subscribed((ANA, BO))
    email.send(ANA, "Approve hello-app 2.0.1", "https://approvals.example/approvals/a2?x")
    email.send(BO, "Approve hello-app 2.0.1", "https://approvals.example/approvals/a2?y")

    assert after.subscribed_now == () and after.awaiting_confirmation == (BO,)
    assert _email_subscriptions(unconfirmed)[ANA].startswith("arn:aws:sns:")
    assert inbox.links("a2") == {ANA: "https://approvals.example/approvals/a2?x"}


def test_an_upload_subscribes_the_approvers_before_the_approval_asks_them(unconfirmed: LocalCloud) -> None:
    app = deploy_fleet(unconfirmed, APP).model_copy(
        update={"policy": default_policy(), "approvers": Approvers(emails=(ANA, BO))}
    )
    unconfirmed.client("ssm").put_parameter(
        Name=registry_parameter(APP), Value=app.model_dump_json(), Type="String", Overwrite=True
    )

    unconfirmed.client("s3").put_object(
        Bucket=unconfirmed.output("ArtifactBucketName"), Key=f"{APP}/2.0.0.zip", Body=bundle()
    )
    unconfirmed.wait_idle()

    # SNS has sent both their confirmation emails while the canary deploys and bakes
    assert _email_subscriptions(unconfirmed) == {ANA: PENDING_CONFIRMATION, BO: PENDING_CONFIRMATION}
    assert len(unconfirmed.executions("RolloutStateMachine")) == 1


def test_an_approval_says_when_its_link_cannot_reach_an_approver_who_has_not_confirmed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with approval_gate() as gate:
        gate.cloud.stand_ins.sns_email.confirm_on_subscribe = False
        gate.inbox.confirm(ANA)  # nothing to confirm yet: she is asked for the first time below
        approvers = Approvers(emails=(ANA,), slack_user_ids=(ALICE_SLACK,), slack_channel=CHANNEL)

        waiting = wait_for_approval(gate, approvers=approvers)

        # Slack still asks; the email link could not reach Ana, and the approval said so
        assert waiting.links == {} and waiting.message is not None
        warned = [
            r for r in caplog.records if r.getMessage().startswith("approval link cannot reach approvers")
        ]
        assert [(r.__dict__["approval_id"], r.__dict__["count"]) for r in warned] == [
            (waiting.approval_id, 1)
        ]

        # Once she confirms, the next approval reaches her
        assert gate.inbox.confirm(ANA)
        later = wait_for_approval(gate, approvers=approvers)

        assert list(later.links) == [ANA]


def _fill_the_topics_filter_policies(cloud: LocalCloud, held: int) -> None:
    """Approvers of other applications, each subscription holding its filter policy."""
    sns = cloud.client("sns")
    for n in range(held):
        sns.subscribe(
            TopicArn=cloud.output("ApprovalEmailTopicArn"),
            Protocol="email",
            Endpoint=f"approver-{n}@example.com",
            Attributes={"FilterPolicy": json.dumps({"approver": [f"approver-{n}@example.com"]})},
        )


def test_past_snss_filter_policy_quota_a_subscribe_is_refused_and_subscribes_nobody(
    cloud: LocalCloud,
) -> None:
    # Given an approval email topic whose subscriptions hold 199 filter policies
    topic = cloud.output("ApprovalEmailTopicArn")
    _fill_the_topics_filter_policies(cloud, FILTER_POLICIES_PER_TOPIC - 1)
    sns = cloud.client("sns")

    def subscribe(endpoint: str) -> dict[str, Any]:
        policy = json.dumps({"approver": [endpoint]})
        return sns.subscribe(
            TopicArn=topic, Protocol="email", Endpoint=endpoint, Attributes={"FilterPolicy": policy}
        )

    # When the 200th and the 201st are subscribed, and the 200th again
    subscribe(ANA)
    with pytest.raises(ClientError) as refused:
        subscribe(BO)
    subscribe(ANA)

    # Then SNS refuses the 201st, as its quota says, and subscribes nobody for it
    assert refused.value.response["Error"]["Code"] == "FilterPolicyLimitExceeded"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert BO not in _email_subscriptions(cloud) and ANA in _email_subscriptions(cloud)
    assert cloud.stand_ins.sns_filter_policies.refused == [BO]


def test_approvers_snss_quota_leaves_unsubscribed_are_said_and_the_others_still_emailed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with approval_gate() as gate:
        # Given a topic one filter policy short of SNS's quota, and an approval asking two new
        # approvers by email, and one in Slack
        _fill_the_topics_filter_policies(gate.cloud, FILTER_POLICIES_PER_TOPIC - 1)
        approvers = Approvers(emails=(ANA, BO), slack_user_ids=(ALICE_SLACK,), slack_channel=CHANNEL)

        # When the rollout asks for its approval
        waiting = wait_for_approval(gate, approvers=approvers)

        # Then it waits as ever: Ana gets her link, Bo (refused by SNS) none, Slack still asks, and
        # the approval says so for on-call (an error and the metric the platform alarm counts)
        assert list(waiting.links) == [ANA] and waiting.message is not None
        refused = [
            r for r in caplog.records if r.getMessage().startswith("SNS refused to subscribe approvers")
        ]
        assert [(r.levelname, r.__dict__["approval_id"], r.__dict__["count"]) for r in refused] == [
            ("ERROR", waiting.approval_id, 1)
        ]
        assert BO not in _email_subscriptions(gate.cloud)
        # and Bo, refused, is not counted again among those yet to confirm (Ana, new, is)
        unconfirmed = [
            r for r in caplog.records if r.getMessage().startswith("approval link cannot reach approvers")
        ]
        assert [r.__dict__["count"] for r in unconfirmed] == [1]


def test_a_message_reaches_an_approver_past_the_first_hundred_subscriptions(cloud: LocalCloud) -> None:
    # Given an approval email topic with 150 approvers' subscriptions (ListSubscriptionsByTopic
    # pages them by 100)
    _fill_the_topics_filter_policies(cloud, 150)
    inbox = LocalMailbox(cloud)
    email = SnsApprovalEmail(cloud.output("ApprovalEmailTopicArn"))

    # When the approval emails the last of them
    email.send(
        "approver-149@example.com", "Approve hello-app 2.0.0", "https://approvals.example/approvals/a1?z"
    )

    # Then it reaches them, and only them
    assert inbox.links("a1") == {"approver-149@example.com": "https://approvals.example/approvals/a1?z"}
