"""A person decides a rollout on the local cloud: in a real browser on the approval page, or in Slack.

The page is the real ApprovalPageFunction behind the local HTTP API; Chromium (Debian's,
headless) opens the link from the approver's email and presses a button with the mouse.
"""

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from canaryfleet.adapters.approval_store import DynamoApprovalStore
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.app_config import registry_parameter

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.http_api import LocalHttpApi
from canaryfleet_local.mailbox import LocalMailbox
from canaryfleet_local.rollout_job import upload_build
from canaryfleet_local.scenarios import load_scenario
from canaryfleet_local.simulator import FleetSimulator
from canaryfleet_local.slack import LocalSlack
from tests.e2e.headless_chromium import Browser
from tests.integration.helpers import eventually

pytestmark = pytest.mark.e2e

APPROVER, SLACK_APPROVER, CHANNEL = "release-manager@example.com", "U0RELEASE", "C0RELEASES"
APPLICATIONS = ("page-approved", "page-rejected", "slack-rejected", "timeline-forwarded")


@dataclass
class Platform:
    cloud: LocalCloud
    api: LocalHttpApi
    slack: LocalSlack
    inbox: LocalMailbox
    rollouts: DynamoRolloutStore
    approvals: DynamoApprovalStore


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    """The local cloud with its HTTP API and Slack on localhost, three applications onboarded."""
    scenario = load_scenario("approval-page")
    with ExitStack() as stack:
        api = stack.enter_context(LocalHttpApi())
        slack = stack.enter_context(LocalSlack(users={SLACK_APPROVER: APPROVER}))
        cloud = stack.enter_context(LocalCloud(parameters={"LogLevel": "WARNING", **api.parameters}))
        api.attach(cloud)
        slack.configure(cloud)
        simulator = stack.enter_context(FleetSimulator(cloud, scenario))
        approvers = {
            "ApproverEmails": APPROVER,
            "ApproverSlackUserIds": SLACK_APPROVER,
            "SlackChannel": CHANNEL,
        }
        for application in APPLICATIONS:
            app = deploy_fleet(cloud, application, approvers).model_copy(update={"policy": scenario.policy})
            cloud.client("ssm").put_parameter(
                Name=registry_parameter(application),
                Value=app.model_dump_json(),
                Type="String",
                Overwrite=True,
            )
            simulator.add_application(app)
        table = cloud.output("StateTableName")
        yield Platform(
            cloud, api, slack, LocalMailbox(cloud), DynamoRolloutStore(table), DynamoApprovalStore(table)
        )


def awaiting_approval(platform: Platform, application: str) -> dict[str, Any]:
    """Upload build 1.0.0 and wait until its approvers were asked; the rollout record."""
    upload_build(platform.cloud, application, "1.0.0", bundle())

    def asked() -> dict[str, Any] | None:
        records = platform.rollouts.list_rollouts(application)
        approval_id = records[0].approval_id if records else None
        approval = platform.approvals.get(approval_id) if approval_id else None
        return records[0].model_dump(mode="json") if approval is not None and approval.emails_sent else None

    record: dict[str, Any] = eventually(asked, timeout=300)
    return record


def approver_link(platform: Platform, approval_id: str) -> str:
    links = platform.inbox.links(approval_id)
    assert list(links) == [APPROVER]
    return links[APPROVER]


def finished(platform: Platform, application: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        record = platform.rollouts.list_rollouts(application)[0]
        return record.model_dump(mode="json") if record.outcome else None

    record: dict[str, Any] = eventually(done, timeout=300)
    return record


def test_an_approver_approves_a_rollout_on_the_page_in_a_browser(
    browser: Browser, platform: Platform
) -> None:
    record = awaiting_approval(platform, "page-approved")
    page = browser.new_page()

    page.navigate(approver_link(platform, record["approval_id"]))
    shown = page.text()
    page.type_into("#comment", "canary looks as good as live")
    page.click_and_wait("#approve")

    assert page.text("#heading") == "Approved"
    assert "page-approved" in shown and "pass" in page.text("#verdict") + shown
    assert finished(platform, "page-approved")["outcome"] == "released"
    [entry] = [e for e in finished(platform, "page-approved")["audit"] if e["kind"] == "approve"]
    assert (entry["by"], entry["channel"], entry["reason"]) == (
        APPROVER,
        "page",
        "canary looks as good as live",
    )


def test_an_approver_rejects_a_rollout_on_the_page_in_a_browser(browser: Browser, platform: Platform) -> None:
    record = awaiting_approval(platform, "page-rejected")
    page = browser.new_page()

    page.navigate(approver_link(platform, record["approval_id"]))
    page.type_into("#comment", "error budget is spent")
    page.click_and_wait("#reject")

    assert page.text("#heading") == "Rejected"
    rolled_back = finished(platform, "page-rejected")
    assert rolled_back["outcome"] == "rejected"
    assert rolled_back["reason"] == f"rejected by {APPROVER}: error budget is spent"


def emailed_timeline_link(platform: Platform, approval_id: str) -> str:
    [email] = platform.inbox.for_approval(approval_id)
    [link] = [word for word in email["Message"].split() if "/timeline?" in word]
    return str(link)


def post_form(url: str, fields: dict[str, str]) -> int:
    """What the approval page's form sends, from whatever fields one has."""
    body = urlencode(fields).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # the local API
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_a_forwarded_timeline_link_from_the_email_shows_the_rollout_and_cannot_decide(
    browser: Browser, platform: Platform
) -> None:
    record = awaiting_approval(platform, "timeline-forwarded")
    approval_id = record["approval_id"]
    timeline = emailed_timeline_link(platform, approval_id)
    page_url = approver_link(platform, approval_id).split("?", 1)[0]

    # Whoever the approver forwards it to sees the timeline
    page = browser.new_page()
    page.navigate(timeline)
    assert "timeline-forwarded" in page.text() and "Stages" in page.text()
    # But posting its fields to the approval page decides nothing, as they are or as an approver's
    fields = {name: values[0] for name, values in parse_qs(urlsplit(timeline).query).items()}
    assert set(fields) == {"expires", "view"}
    assert post_form(page_url, {**fields, "action": "approve", "comment": ""}) == 400  # no approver's fields
    forged = {"approver": APPROVER, "expires": fields["expires"], "signature": fields["view"]}
    assert post_form(page_url, {**forged, "action": "approve", "comment": ""}) == 403
    approval = platform.approvals.get(approval_id)
    assert approval is not None and (approval.status.value, approval.decision) == ("pending", None)

    # And the approver's own link still decides, as them
    page.navigate(approver_link(platform, approval_id))
    page.click_and_wait("#reject")
    rolled_back = finished(platform, "timeline-forwarded")
    assert rolled_back["outcome"] == "rejected"
    assert [
        (e["kind"], e["by"], e["channel"]) for e in rolled_back["audit"] if e["kind"] in {"approve", "reject"}
    ] == [("reject", APPROVER, "page")]


def test_an_approver_rejects_a_rollout_with_a_signed_slack_request(platform: Platform) -> None:
    record = awaiting_approval(platform, "slack-rejected")
    [message] = [m for m in platform.slack.posted(CHANNEL) if record["approval_id"] in json.dumps(m.blocks)]

    status, _ = platform.slack.press(platform.api.url, message, "approval.reject", SLACK_APPROVER)

    assert status == 200
    rolled_back = finished(platform, "slack-rejected")
    assert rolled_back["outcome"] == "rejected"
    assert rolled_back["reason"] == f"rejected by release-manager (Slack {SLACK_APPROVER}): no reason given"
    assert message.text.startswith(
        f"slack-rejected 1.0.0: Rejected by release-manager (Slack {SLACK_APPROVER}) via Slack"
    )
