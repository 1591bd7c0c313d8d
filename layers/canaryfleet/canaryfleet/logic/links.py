"""Signed approval links: HMAC-SHA256 over the approval, the approver and the expiry.

The signature is the capability: whoever holds an approver's link may act as that approver
on that one approval until it expires, and on nothing else. It carries no secret (neither
the task token nor the key), and a link whose fields were changed does not verify. A timeline
view link is signed over another purpose, the approval and the expiry: it shows the rollout's
timeline and can never stand for an approver's link. Every timeline link handed to a person
(the Slack card's, the email's, the approval page's) is a view link, because a timeline link
gets forwarded ("look at the canary's charts") and an approver's link would decide for them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

from canaryfleet.models.approval import ApprovalLink, TimelineViewLink
from canaryfleet.ports.approvals import SigningKeys

# A version prefix so that a later format can never be confused with this one.
_PURPOSE = "canaryfleet-approval-link/v1"
_VIEW_PURPOSE = "canaryfleet-timeline-view/v1"


def _message(approval_id: str, approver: str, expires: int) -> bytes:
    return "\n".join((_PURPOSE, approval_id, approver.lower(), str(expires))).encode()


def _sign(key: bytes, message: bytes) -> str:
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _view_message(approval_id: str, expires: int) -> bytes:
    return "\n".join((_VIEW_PURPOSE, approval_id, str(expires))).encode()


class LinkSigner:
    def __init__(self, keys: SigningKeys) -> None:
        self._keys = keys

    def sign(self, approval_id: str, approver: str, expires: int) -> ApprovalLink:
        signature = _sign(self._keys.current(), _message(approval_id, approver, expires))
        return ApprovalLink(approval_id=approval_id, approver=approver, expires=expires, signature=signature)

    def sign_view(self, approval_id: str, expires: int) -> TimelineViewLink:
        signature = _sign(self._keys.current(), _view_message(approval_id, expires))
        return TimelineViewLink(approval_id=approval_id, expires=expires, signature=signature)

    def verify(self, link: ApprovalLink | TimelineViewLink) -> bool:
        """True if the current or the previous key signed exactly these fields (for this purpose)."""
        if isinstance(link, TimelineViewLink):
            message = _view_message(link.approval_id, link.expires)
        else:
            message = _message(link.approval_id, link.approver, link.expires)
        for refresh in (False, True):  # cached keys first; after a rotation elsewhere, fresh ones
            for key in self._keys.accepted(refresh=refresh):
                if hmac.compare_digest(_sign(key, message), link.signature):
                    return True
        return False


def link_url(base_url: str, link: ApprovalLink) -> str:
    """The approver's link to the approval page (what the email carries)."""
    query = urlencode({"approver": link.approver, "expires": link.expires, "signature": link.signature})
    return f"{base_url.rstrip('/')}/approvals/{link.approval_id}?{query}"


def _view_query(link: TimelineViewLink) -> str:
    return urlencode({"expires": link.expires, "view": link.signature})


def view_url(base_url: str, link: TimelineViewLink) -> str:
    """The read-only link to the rollout's timeline (what the Slack card and the email carry)."""
    return f"{base_url.rstrip('/')}/approvals/{link.approval_id}/timeline?{_view_query(link)}"


def view_path(link: TimelineViewLink) -> str:
    """The same read-only link, relative to the approval page (what the page links to)."""
    return f"./{link.approval_id}/timeline?{_view_query(link)}"
