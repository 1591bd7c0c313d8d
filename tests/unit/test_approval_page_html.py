"""The approval page's HTML: autoescaped, no script, nothing external, a CSP its style passes."""

import base64
import hashlib
import re

from canaryfleet.api.html import SECURITY_HEADERS, html_page

from tests.unit.test_approval_messages import approval


def render(**context: object) -> str:
    response = html_page(200, "Waiting for your decision", "", "until tomorrow", **context)
    assert isinstance(response.body, str)
    return response.body


def test_the_inline_style_is_the_one_the_content_security_policy_allows() -> None:
    html = render()

    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in SECURITY_HEADERS["Content-Security-Policy"]


def test_the_page_loads_nothing_and_runs_nothing() -> None:
    html = render(
        approval=approval(), form={"approver": "a@example.com", "expires": 1, "signature": "s" * 43}
    )

    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=""", html)
    assert "default-src 'none'" in SECURITY_HEADERS["Content-Security-Policy"]
    assert SECURITY_HEADERS["Referrer-Policy"] == "no-referrer"


def test_what_people_wrote_is_escaped() -> None:
    sneaky = approval().verdict.model_copy(update={"reasons": ['<script>alert("x")</script>']})  # type: ignore[union-attr]

    html = render(approval=approval(verdict=sneaky))

    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_the_form_posts_the_signed_fields_back_to_the_same_approval() -> None:
    html = render(
        approval=approval(), form={"approver": "a@example.com", "expires": 7, "signature": "s" * 43}
    )

    assert '<form method="post" action="./q7Xr2LmN9pKv4TzW1bYc0A">' in html
    for name, value in (("approver", "a@example.com"), ("expires", "7"), ("signature", "s" * 43)):
        assert f'<input type="hidden" name="{name}" value="{value}">' in html


def test_a_page_without_a_form_has_no_buttons() -> None:
    html = render(approval=approval())

    assert "<form" not in html and "<button" not in html
