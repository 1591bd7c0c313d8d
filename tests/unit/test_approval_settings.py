"""Where emailed links point: a custom domain when set, else the approval API's own endpoint."""

import pytest
from canaryfleet.errors import ConfigurationError
from canaryfleet.settings import RequestApprovalSettings, load_settings

ENVIRONMENT = {
    "STATE_TABLE_NAME": "canaryfleet-state",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:canaryfleet",
    "SIGNING_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbCdEf",
    "SLACK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:slack-AbCdEf",
    "APPROVAL_EMAIL_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:approvals",
    "APPROVAL_EXPIRY_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:expiry",
    "APPROVAL_API_ENDPOINT": "https://k3x9y1abcd.execute-api.us-east-1.amazonaws.com",
}


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("page_url", "expected"),
    [
        ("", "https://k3x9y1abcd.execute-api.us-east-1.amazonaws.com"),
        ("https://approvals.example.com/", "https://approvals.example.com"),
    ],
)
def test_links_point_at_the_custom_domain_if_any(
    monkeypatch: pytest.MonkeyPatch, page_url: str, expected: str
) -> None:
    monkeypatch.setenv("APPROVAL_PAGE_URL", page_url)

    assert load_settings(RequestApprovalSettings).page_base_url == expected


def test_a_page_url_with_a_query_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPROVAL_PAGE_URL", "https://approvals.example.com/?x=1")

    with pytest.raises(ConfigurationError, match="APPROVAL_PAGE_URL"):
        load_settings(RequestApprovalSettings)
