"""The acceptance suite's pure checks: the emailed link, the page's form, the drain manifest, the builds."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from canaryfleet.api.html import html_page
from canaryfleet.logic import approval_messages
from canaryfleet.logic.bundle import validate_bundle
from canaryfleet.logic.links import link_url
from canaryfleet.models.app_config import Approvers
from canaryfleet.models.approval import Approval, ApprovalLink
from canaryfleet.models.drain import DrainManifest

from canaryfleet_local.template import zip_folder
from tests.aws.checks import (
    AcceptanceCheckFailed,
    approval_link,
    decision_form,
    failing_build,
    good_build,
    manifest_problems,
)

ENDPOINT = "https://abc123.execute-api.us-east-1.amazonaws.com"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
LINK = ApprovalLink(
    approval_id="q7Xr2LmN9pKv4TzW1bYc0A",
    approver="canaryfleet-acceptance@example.com",
    expires=1_800_000_000,
    signature="A" * 43,
)


def approval() -> Approval:
    return Approval.model_validate(
        {
            "approval_id": LINK.approval_id,
            "application": "hello-acc",
            "rollout_id": "hello-acc-1_0_0-5e0c2c7a",
            "version": "1.0.0",
            "approvers": Approvers(emails=(LINK.approver,)),
            "created_at": NOW,
            "expires_at": NOW + timedelta(hours=1),
        }
    )


def email_body() -> str:
    """What the platform sends: approval_messages.email with the link links.link_url signs."""
    _, body = approval_messages.email(approval(), link_url(ENDPOINT, LINK))
    return body


# --- the emailed link ---------------------------------------------------------------------------
def test_the_link_is_read_from_a_raw_approval_email() -> None:
    # Given the email the platform sends, delivered raw to the queue
    # When the link is read from it
    link = approval_link(email_body(), ENDPOINT)
    # Then it is the signed link, with every field
    assert link == link_url(ENDPOINT, LINK)


def test_the_link_is_read_from_inside_an_sns_envelope() -> None:
    # Given the same email in SNS's JSON envelope (a subscription without raw delivery)
    envelope = json.dumps({"Type": "Notification", "Message": email_body(), "Subject": "Approve?"})
    # When / Then the link inside the message is found
    assert approval_link(envelope, ENDPOINT) == link_url(ENDPOINT, LINK)


def test_a_link_to_another_endpoint_is_refused() -> None:
    # Given an email whose link points elsewhere than the stack's approval API
    # When / Then it is a failed check, not a link to follow
    with pytest.raises(AcceptanceCheckFailed, match="does not point to the approval API"):
        approval_link(email_body(), "https://other.execute-api.us-east-1.amazonaws.com")


def test_an_email_without_a_link_or_with_a_truncated_one_fails() -> None:
    with pytest.raises(AcceptanceCheckFailed, match="found 0"):
        approval_link("Approve hello-acc 1.0.0? (no link here)")
    truncated = email_body().replace("&signature=", "&sig=")
    with pytest.raises(AcceptanceCheckFailed, match="lacks signature"):
        approval_link(truncated)


# --- the page's form ----------------------------------------------------------------------------
def page_with_form() -> str:
    form = {"approver": LINK.approver, "expires": LINK.expires, "signature": LINK.signature}
    response = html_page(200, "Waiting for your decision", "", "", approval=approval(), form=form)
    return str(response.body)


def test_the_decision_form_is_read_from_the_page_as_a_browser_reads_it() -> None:
    # Given the approval page the platform renders for a waiting approval, opened from the link
    page_url = link_url(ENDPOINT, LINK)
    # When its form is read and Approve is pressed
    form = decision_form(page_with_form(), page_url)
    body = parse_qs(form.body("approve", "acceptance suite").decode())
    # Then the POST goes to the approval's own path with the link's signed fields and the decision
    assert form.action == f"{ENDPOINT}/approvals/{LINK.approval_id}"
    assert form.buttons == ("approve", "reject")
    assert body == {
        "approver": [LINK.approver],
        "expires": [str(LINK.expires)],
        "signature": [LINK.signature],
        "comment": ["acceptance suite"],
        "action": ["approve"],
    }


def test_a_page_without_a_decision_form_fails() -> None:
    # Given a page that shows an approval already decided (no form)
    decided = str(html_page(409, "Already decided: approved", "ok", "", approval=approval()).body)
    # When / Then reading a decision form from it fails
    with pytest.raises(AcceptanceCheckFailed, match="found 0"):
        decision_form(decided, link_url(ENDPOINT, LINK))


def test_a_decision_the_page_does_not_offer_is_refused() -> None:
    form = decision_form(page_with_form(), link_url(ENDPOINT, LINK))
    with pytest.raises(AcceptanceCheckFailed, match="not 'promote'"):
        form.body("promote")


# --- the drain's manifest -----------------------------------------------------------------------
FILES = {"app.log": b"started\nstopped\n", "nested/access.log": b"GET / 200\n"}


def manifest(files: dict[str, bytes] = FILES, **changes: object) -> DrainManifest:
    values: dict[str, object] = {
        "instance_id": "i-0abc",
        "application": "hello-acc",
        "run_id": "20261202T090000Z",
        "mode": "drain",
        "created_at": NOW,
        "files": [
            {"name": name, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
            for name, body in files.items()
        ],
    }
    return DrainManifest.model_validate({**values, **changes})


def problems(stored: dict[str, bytes], listed: DrainManifest | None = None) -> list[str]:
    return manifest_problems(listed or manifest(), stored, instance_id="i-0abc", application="hello-acc")


def test_a_manifest_that_matches_s3_has_no_problem() -> None:
    assert problems(dict(FILES)) == []


def test_a_missing_file_a_wrong_size_a_wrong_checksum_and_an_extra_file_are_each_found() -> None:
    # Given S3 holding one file short, one truncated, and one the manifest does not list
    stored = {"app.log": b"started\n", "stray.log": b"?"}
    # When it is checked against the manifest
    found = problems(stored)
    # Then every difference is named
    assert found == [
        "app.log has 8 bytes in S3, the manifest says 16",
        "nested/access.log is in the manifest but not in S3",
        "stray.log is in S3 but not in the manifest",
    ]
    same_size = {"app.log": b"STARTED\nstopped\n", "nested/access.log": FILES["nested/access.log"]}
    assert problems(same_size) == ["app.log's SHA-256 in S3 differs from the manifest's"]


def test_a_manifest_of_another_instance_or_of_a_sync_run_fails() -> None:
    other = manifest(instance_id="i-0def", mode="sync")
    assert problems(dict(FILES), other) == [
        "the manifest is for i-0def, not i-0abc",
        "the manifest was written by a sync run, not a drain",
    ]


def test_a_drain_that_shipped_no_log_fails() -> None:
    assert problems({}, manifest(files={})) == [
        "the manifest lists no file: none of the application's logs reached S3"
    ]


# --- the builds ---------------------------------------------------------------------------------
def test_both_builds_are_bundles_the_platform_accepts(tmp_path: Path) -> None:
    # Given the good build and the failing one
    good = good_build(tmp_path / "good")
    bad = failing_build(tmp_path / "bad")
    # When each is checked as `canaryfleet publish` and the platform check it
    # Then both pass: the failing build must fail on traffic, not at validation or deployment
    assert validate_bundle(zip_folder(good)).entries == validate_bundle(zip_folder(bad)).entries
    assert (good / "app" / "server.py").read_text() != (bad / "app" / "server.py").read_text()
    assert (good / "appspec.yml").read_text() == (bad / "appspec.yml").read_text()
