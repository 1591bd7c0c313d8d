"""The link of SNS's confirmation email, read for `canaryfleet approvers confirm`."""

from urllib.parse import quote

import pytest
from canaryfleet.errors import InvalidConfirmationLink
from canaryfleet.models.sns_confirmation import confirmation_link

TOPIC = "arn:aws:sns:eu-west-1:123456789012:canaryfleet-ApprovalEmailTopic-1AB2C3D4E5F6"
TOKEN = "2336412f37fb687f5d51e6e2425ba1f2" * 8
LINK = (
    "https://sns.eu-west-1.amazonaws.com/confirmation.html"
    f"?TopicArn={TOPIC.replace(':', '%3A')}&Token={TOKEN}&Endpoint=ana%40example.com"
)


def test_the_confirmation_emails_link_gives_topic_token_and_address() -> None:
    link = confirmation_link(f"  {LINK}\n")

    assert (link.topic_arn, link.token, link.endpoint) == (TOPIC, TOKEN, "ana@example.com")
    assert TOKEN[:8] not in repr(link) and TOKEN[:8] not in str(link)


def test_a_link_copied_from_outlook_with_safe_links_is_unwrapped_once() -> None:
    wrapped = (
        "https://eur02.safelinks.protection.outlook.com/?url="
        + quote(LINK, safe="")
        + "&data=05%7C02%7Cana%40example.com%7C&sdata=abc%3D&reserved=0"
    )
    twice = "https://eur02.safelinks.protection.outlook.com/?url=" + quote(wrapped, safe="")
    elsewhere = "https://eur02.safelinks.protection.outlook.com.evil.example/?url=" + quote(LINK, safe="")

    assert confirmation_link(wrapped).topic_arn == TOPIC
    for refused in (twice, elsewhere):
        with pytest.raises(InvalidConfirmationLink, match="https://sns"):
            confirmation_link(refused)


def test_china_and_govcloud_links_are_read() -> None:
    china = confirmation_link(
        "https://sns.cn-north-1.amazonaws.com.cn/confirmation.html"
        f"?TopicArn=arn:aws-cn:sns:cn-north-1:123456789012:t&Token={TOKEN}"
    )
    gov = confirmation_link(
        "https://sns.us-gov-west-1.amazonaws.com/confirmation.html"
        f"?TopicArn=arn:aws-us-gov:sns:us-gov-west-1:123456789012:t&Token={TOKEN}"
    )

    assert china.topic_arn.startswith("arn:aws-cn:") and china.endpoint is None
    assert gov.topic_arn.startswith("arn:aws-us-gov:")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (LINK.replace("https://", "http://"), "https://sns.<region>.amazonaws.com/"),
        (
            LINK.replace("sns.eu-west-1.amazonaws.com", "sns.eu-west-1.amazonaws.com.evil.example"),
            "https://sns.",
        ),
        (LINK.replace("sns.eu-west-1.amazonaws.com", "user@evil.example"), "https://sns."),
        ("https://[sns.eu-west-1.amazonaws.com/x", "https://sns."),
        (TOKEN, "https://sns."),
        (LINK.replace(f"&Token={TOKEN}", ""), "exactly one Token"),
        (LINK + f"&Token={TOKEN}", "exactly one Token"),
        (LINK.replace(f"Token={TOKEN}", "Token="), "exactly one Token"),
        (LINK.replace("TopicArn=", "Topic="), "exactly one TopicArn"),
        (LINK.replace("arn%3Aaws%3Asns", "arn%3Aaws%3Aiam"), "is not an SNS topic ARN"),
        (LINK.replace("sns%3Aeu-west-1", "sns%3Aus-east-1"), "its topic is in us-east-1"),
        (LINK.replace(TOKEN, TOKEN[:10]), "cut short"),
        (LINK.replace(TOKEN, TOKEN + "%0A"), "cut short"),  # Python's $ matched before a last newline
        (LINK.replace(TOKEN, TOKEN[:40] + "%22%3E%3Cscript%3E"), "cut short"),
        (LINK + "&x=" + "a" * 5000, "characters long"),
    ],
)
def test_anything_else_is_refused_saying_why_and_never_repeating_the_token(text: str, said: str) -> None:
    with pytest.raises(InvalidConfirmationLink) as refused:
        confirmation_link(text)

    assert said in str(refused.value)
    assert TOKEN[:16] not in str(refused.value)
