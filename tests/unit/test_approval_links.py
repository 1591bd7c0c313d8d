"""Signed approval links: bound to one approval, one approver and one expiry; rotation-safe."""

from urllib.parse import parse_qs, urlsplit

import pytest
from canaryfleet.logic.links import LinkSigner, link_url, view_path, view_url
from canaryfleet.models.approval import ApprovalLink, new_approval_id
from canaryfleet.ports.approvals import SigningKeys

EXPIRES = 1_795_770_843


class Keys(SigningKeys):
    """A current and a previous key; ``fresh`` is what a re-read of the secret would find."""

    def __init__(
        self, current: bytes, previous: bytes | None = None, fresh: list[bytes] | None = None
    ) -> None:
        self.keys = [current] + ([previous] if previous else [])
        self.fresh = fresh
        self.refreshes = 0

    def current(self) -> bytes:
        return self.keys[0]

    def accepted(self, refresh: bool = False) -> list[bytes]:
        if refresh and self.fresh is not None:
            self.refreshes += 1
            return self.fresh
        return self.keys


@pytest.fixture
def approval_id() -> str:
    return new_approval_id()


def test_a_link_verifies_with_the_key_that_signed_it(approval_id: str) -> None:
    signer = LinkSigner(Keys(b"k" * 64))

    link = signer.sign(approval_id, "Alice@Example.com", EXPIRES)

    assert link.approver == "alice@example.com"
    assert signer.verify(link)


@pytest.mark.parametrize(
    "change",
    [{"approver": "bob@example.com"}, {"expires": EXPIRES + 1}, {"approval_id": "A" * 22}],
    ids=["approver", "expiry", "approval"],
)
def test_a_link_with_any_signed_field_changed_does_not_verify(
    approval_id: str, change: dict[str, object]
) -> None:
    signer = LinkSigner(Keys(b"k" * 64))
    link = signer.sign(approval_id, "alice@example.com", EXPIRES)

    altered = link.model_copy(update=change)

    assert not signer.verify(altered)


def test_a_link_signed_with_another_key_does_not_verify(approval_id: str) -> None:
    theirs = LinkSigner(Keys(b"x" * 64)).sign(approval_id, "alice@example.com", EXPIRES)

    assert not LinkSigner(Keys(b"k" * 64)).verify(theirs)


def test_a_link_signed_before_a_rotation_verifies_with_the_previous_key(approval_id: str) -> None:
    before = LinkSigner(Keys(b"old" * 20)).sign(approval_id, "alice@example.com", EXPIRES)

    assert LinkSigner(Keys(b"new" * 20, previous=b"old" * 20)).verify(before)


def test_a_link_signed_after_a_rotation_elsewhere_verifies_once_the_keys_are_read_again(
    approval_id: str,
) -> None:
    signed_elsewhere = LinkSigner(Keys(b"new" * 20)).sign(approval_id, "alice@example.com", EXPIRES)
    cached = Keys(b"old" * 20, fresh=[b"new" * 20, b"old" * 20])

    assert LinkSigner(cached).verify(signed_elsewhere)
    assert cached.refreshes == 1


def test_the_link_carries_the_signed_fields_and_nothing_else(approval_id: str) -> None:
    link = LinkSigner(Keys(b"k" * 64)).sign(approval_id, "alice@example.com", EXPIRES)

    url = link_url("https://approvals.example.com/", link)

    assert url == (
        f"https://approvals.example.com/approvals/{approval_id}"
        f"?approver=alice%40example.com&expires={EXPIRES}&signature={link.signature}"
    )
    assert len(link.signature) == 43


def test_a_malformed_signature_is_not_a_link() -> None:
    with pytest.raises(ValueError, match="signature"):
        ApprovalLink(approval_id="A" * 22, approver="a@example.com", expires=1, signature="short")


def test_a_timeline_view_link_and_an_approvers_link_never_stand_for_each_other(approval_id: str) -> None:
    signer = LinkSigner(Keys(b"k" * 64))
    view = signer.sign_view(approval_id, EXPIRES)
    approver = signer.sign(approval_id, "alice@example.com", EXPIRES)

    # Each verifies for its own purpose
    assert signer.verify(view) and signer.verify(approver)
    # A view signature does not make an approver's link, nor the other way round
    assert not signer.verify(approver.model_copy(update={"signature": view.signature}))
    assert not signer.verify(view.model_copy(update={"signature": approver.signature}))
    # And it is bound to its approval and its expiry
    assert not signer.verify(view.model_copy(update={"expires": EXPIRES + 1}))
    assert not signer.verify(view.model_copy(update={"approval_id": new_approval_id()}))
    assert "view=" in view_url("https://x.example", view) and "approver" not in view_url(
        "https://x.example", view
    )


def test_a_timeline_link_carries_the_view_signature_and_no_approvers_fields(approval_id: str) -> None:
    view = LinkSigner(Keys(b"k" * 64)).sign_view(approval_id, EXPIRES)

    url, path = view_url("https://approvals.example.com/", view), view_path(view)

    query = f"expires={EXPIRES}&view={view.signature}"
    assert url == f"https://approvals.example.com/approvals/{approval_id}/timeline?{query}"
    assert path == f"./{approval_id}/timeline?{query}"
    assert set(parse_qs(urlsplit(path).query)) == {"expires", "view"}
