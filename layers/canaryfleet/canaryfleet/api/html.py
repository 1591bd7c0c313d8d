"""Server-rendered HTML: Jinja2 with autoescaping, no script, no external asset, a strict CSP."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from canaryfleet.logic.analysis.words import metric_rows

CSS = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:42rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;border-radius:8px;
box-shadow:0 1px 3px rgba(0,0,0,.12)}
.brand{color:#6b7280;font-size:.85rem;margin:0}
h1{font-size:1.4rem;margin:.25rem 0 1rem}h2{font-size:1.1rem;margin-top:1.5rem}
h1.ok{color:#166534}h1.bad{color:#991b1b}h1.warn{color:#92400e}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{color:#6b7280}dd{margin:0}
table{border-collapse:collapse}th,td{padding:.25rem .75rem;text-align:right;border-bottom:1px solid #e5e7eb}
th:first-child{text-align:left}.verdict-pass{color:#166534}.verdict-fail{color:#991b1b}
.verdict-inconclusive{color:#92400e}label{display:block;margin-top:1rem}
textarea{width:100%;box-sizing:border-box;font:inherit}.buttons{display:flex;gap:1rem;margin-top:1rem}
button{font:inherit;padding:.5rem 1.5rem;border:0;border-radius:6px;color:#fff;cursor:pointer}
button.approve{background:#15803d}button.reject{background:#b91c1c}
""".strip()

_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()

# The page runs no script and loads nothing; the one inline style is allowed by its hash.
# The link's signature is in the URL: no-referrer keeps it from leaving with a click.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _milliseconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("canaryfleet", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
    )


def html_page(
    status_code: int, heading: str, tone: str = "", message: str = "", **context: Any
) -> Response[str]:
    """The approval template as an HTTP response with the security headers."""
    values = {"approval": None, "form": None, **context}
    body = (
        _environment()
        .get_template("approval.html")
        .render(
            heading=heading,
            tone=tone,
            message=message,
            css=CSS,
            milliseconds=_milliseconds,
            metric_rows=metric_rows,
            **values,
        )
    )
    return Response(
        status_code=status_code,
        content_type="text/html; charset=utf-8",
        body=body,
        headers=SECURITY_HEADERS,
    )
