"""The approval page's HTML: autoescaped, nothing external; its CSP names exactly its script and styles."""

import base64
import hashlib
import re

from canaryfleet.api.html import SECURITY_HEADERS, html_page
from canaryfleet.models.chart import BakeSamples, MetricSample

from tests.unit.test_approval_messages import approval


def respond(**context: object) -> tuple[str, str]:
    response = html_page(200, "Waiting for your decision", "", "until tomorrow", **context)
    assert isinstance(response.body, str)
    return response.body, response.headers["Content-Security-Policy"]


def render(**context: object) -> str:
    return respond(**context)[0]


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def with_samples() -> object:
    verdict = approval().verdict
    assert verdict is not None
    start = verdict.window_start
    samples = [MetricSample(at=start, seconds=60, requests=100, errors=1, latency=0.08)]
    return approval(verdict=verdict.model_copy(update={"samples": BakeSamples(canary=samples, live=samples)}))


def test_the_inline_style_is_the_one_the_content_security_policy_allows() -> None:
    html = render()

    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in SECURITY_HEADERS["Content-Security-Policy"]


def test_a_page_without_charts_runs_no_script() -> None:
    html, csp = respond(approval=approval(verdict=None))

    assert "<script" not in html
    assert "script-src 'none'" in csp


def test_a_page_with_a_bake_runs_exactly_the_scripts_its_policy_names_and_loads_nothing() -> None:
    html, csp = respond(
        approval=with_samples(), form={"approver": "a@example.com", "expires": 1, "signature": "s" * 43}
    )

    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    script_src = re.search(r"script-src ([^;]*);", csp)
    style_src = re.search(r"style-src ([^;]*);", csp)
    assert script_src and style_src
    assert len(scripts) == 1 and script_src.group(1).split() == [sha256(scripts[0])]
    assert sorted(style_src.group(1).split()) == sorted(sha256(s) for s in styles)
    assert not re.search(r"""\s(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert '<script type="application/json" id="chart-data">' in html
    assert "default-src 'none'" in csp
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

    assert '<form method="post" action="./q7Xr2LmN9pKv4TzW1bYc0A" id="decide">' in html
    for name, value in (("approver", "a@example.com"), ("expires", "7"), ("signature", "s" * 43)):
        assert f'<input type="hidden" name="{name}" value="{value}">' in html


def test_a_page_without_a_form_has_no_buttons() -> None:
    html = render(approval=approval())

    assert "<form" not in html and "<button" not in html
