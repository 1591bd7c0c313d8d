"""The link in SNS's subscription confirmation email, read for an authenticated confirmation.

Every email SNS sends an email subscription ends with an unsubscribe link, and by default
anyone who follows it unsubscribes the address: so does an email security scanner that opens
every link of every message (Microsoft Defender's Safe Links, among others). An approver would
then silently stop getting approval emails. ConfirmSubscription's ``AuthenticateOnUnsubscribe``
"disallows unauthenticated unsubscribes of the subscription. If the value of this parameter is
true and the request has an AWS signature, then only the topic owner and the subscription
owner can unsubscribe the endpoint" (https://docs.aws.amazon.com/sns/latest/api/API_ConfirmSubscription.html).
That takes the ``Token`` and ``TopicArn`` of the confirmation email's link, called with AWS
credentials instead of opening the link in a browser: :func:`confirmation_link` reads them.

A link copied from Outlook with Microsoft Defender's Safe Links is the Safe Links address with
the original in its ``url`` field (``https://<region>.safelinks.protection.outlook.com/?url=…``);
that wrapper is taken off, once, and what it wraps is checked as any link is.

The token confirms a subscription for whoever holds it, so no message here repeats it.
"""

from __future__ import annotations

import re
from urllib import parse

from pydantic import BaseModel, ConfigDict

from canaryfleet.errors import InvalidConfirmationLink

# SNS's regional endpoints: sns.<region>.amazonaws.com, and .amazonaws.com.cn in China.
_HOST = re.compile(r"^sns\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?$")
_TOPIC_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:sns:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):\d{12}:[A-Za-z0-9_-]{1,256}$"
)
# A token as SNS mails it: a long string of hex digits. Accepted more widely (letters, digits),
# never with spaces, quotes or markup; its length is bounded so a pasted page is not taken for one.
_TOKEN = re.compile(r"^[A-Za-z0-9]{16,2048}$")
_MAX_LINK = 4096
_SAFE_LINKS = re.compile(r"^[a-z0-9-]+\.safelinks\.protection\.outlook\.com$")


class ConfirmationLink(BaseModel):
    """The two fields ConfirmSubscription needs, from the confirmation email's link."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    topic_arn: str
    token: str
    endpoint: str | None = None  # the address the email went to, when the link names it

    def __repr__(self) -> str:  # never the token
        return f"ConfirmationLink(topic_arn={self.topic_arn!r}, endpoint={self.endpoint!r})"

    __str__ = __repr__


def _one(query: dict[str, list[str]], field: str) -> str:
    values = query.get(field, [])
    if len(values) != 1 or not values[0]:
        raise InvalidConfirmationLink(
            f"the link must carry exactly one {field} (the confirmation email's link carries "
            "TopicArn and Token)"
        )
    return values[0]


def _split(link: str) -> parse.SplitResult:
    try:
        return parse.urlsplit(link)
    except ValueError:  # e.g. an unclosed "[" where a host should be
        return parse.urlsplit("")


def _unwrapped(link: str) -> str:
    """What a Safe Links address wraps (its one ``url`` field); any other link as it is."""
    parts = _split(link)
    if parts.scheme == "https" and _SAFE_LINKS.fullmatch((parts.hostname or "").lower()):
        wrapped = parse.parse_qs(parts.query).get("url", [])
        if len(wrapped) == 1:
            return wrapped[0].strip()
    return link


def confirmation_link(text: str) -> ConfirmationLink:
    """Read SNS's confirmation link; InvalidConfirmationLink, saying why, for anything else."""
    link = text.strip()
    if len(link) > _MAX_LINK:
        raise InvalidConfirmationLink(f"the link is {len(link)} characters long; SNS's are far shorter")
    link = _unwrapped(link)
    parts = _split(link)
    host = (parts.hostname or "").lower()
    match = _HOST.fullmatch(host)
    if parts.scheme != "https" or match is None:
        raise InvalidConfirmationLink(
            "not a link of SNS's confirmation email: it starts with https://sns.<region>.amazonaws.com/"
        )
    query = parse.parse_qs(parts.query, keep_blank_values=True)
    topic_arn, token = _one(query, "TopicArn"), _one(query, "Token")
    topic = _TOPIC_ARN.fullmatch(topic_arn)
    if topic is None:
        raise InvalidConfirmationLink(f"TopicArn {topic_arn[:300]!r} is not an SNS topic ARN")
    if topic["region"] != match["region"]:
        raise InvalidConfirmationLink(
            f"the link is SNS's in {match['region']} but its topic is in {topic['region']}"
        )
    if not _TOKEN.fullmatch(token):
        raise InvalidConfirmationLink(
            f"its Token is not one SNS sends (16 to 2048 letters and digits; this one has {len(token)} "
            "characters): was the link cut short or changed?"
        )
    endpoints = query.get("Endpoint", [])
    return ConfirmationLink(
        topic_arn=topic_arn, token=token, endpoint=endpoints[0] if len(endpoints) == 1 else None
    )
