"""`canaryfleet demo --interactive`: the printed link decides the demo's rollout."""

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from canaryfleet_cli.demo_interactive import AskedApproval, run_interactive_demo
from tests.integration.approval_gate import http

pytestmark = pytest.mark.e2e


def test_the_demo_waits_for_the_printed_link_and_releases_when_approved_there() -> None:
    asked: list[AskedApproval] = []

    def approve_on_the_page(approval: AskedApproval) -> None:
        asked.append(approval)
        [link] = approval.links.values()
        fields = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
        form = urlencode({**fields, "action": "approve", "comment": "from the demo"}).encode()
        http("GET", link)  # opened in a browser first
        http("POST", link.split("?")[0], form, {"Content-Type": "application/x-www-form-urlencoded"})

    result = run_interactive_demo(
        approve_on_the_page, approver="demo@example.com", port=0, timeout_seconds=120
    )

    [approval] = asked
    assert list(approval.links) == ["demo@example.com"]
    assert approval.links["demo@example.com"].startswith("http://127.0.0.1:")
    assert "hello-app 1.0.0 is waiting for approval" in approval.slack_text
    assert (result["outcome"], result["approval"]) == ("released", "approved")
    assert [(e["kind"], e["by"], e["channel"]) for e in result["audit"]] == [
        ("approve", "demo@example.com", "page")
    ]
    assert result["slack"].startswith("hello-app 1.0.0: Approved by demo@example.com via the approval page")
    assert [s.split(" ", 1)[0] for s in result["served"]] == ["GET", "POST"]
