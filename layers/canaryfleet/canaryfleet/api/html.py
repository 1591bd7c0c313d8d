"""Server-rendered HTML: Jinja2 with autoescaping, no external asset, a strict CSP (scripts by hash only)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from canaryfleet.api.charts import chart_assets, charts_json, csp_hash
from canaryfleet.logic.analysis.words import metric_rows
from canaryfleet.logic.charts import bake_charts

CSS = """
body{font:16px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:56rem;margin:0 auto;padding:.75rem 1rem 2rem;background:#fff;box-sizing:border-box}
@media (min-width:700px){main{margin:1.5rem auto;padding:1.25rem 2rem;border-radius:8px;
box-shadow:0 1px 3px rgba(0,0,0,.12)}}
.brand{color:#6b7280;font-size:.8rem;margin:0}
h1{font-size:1.3rem;margin:.15rem 0 .4rem}h2{font-size:1.1rem;margin:1.25rem 0 .4rem}
h1.ok{color:#166534}h1.bad{color:#991b1b}h1.warn{color:#92400e}
p,dd,li,code,a{overflow-wrap:anywhere}.summary{margin:.25rem 0 .5rem}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2rem .75rem;margin:0}
dt{color:#6b7280}dd{margin:0}
.table-wrap{overflow-x:auto}table{border-collapse:collapse}
th,td{padding:.25rem .6rem;text-align:right;border-bottom:1px solid #e5e7eb}
th:first-child{text-align:left}.verdict-pass{color:#166534}.verdict-fail{color:#991b1b}
.verdict-inconclusive{color:#92400e}label{display:block;margin-top:.5rem;font-size:.9rem}
textarea{width:100%;box-sizing:border-box;font:inherit}.who{font-size:.85rem;color:#4b5563;margin:.3rem 0 0}
.buttons{display:flex;gap:.75rem;margin-top:.25rem}
button{flex:1;font:inherit;font-weight:600;padding:.7rem 1rem;border:0;border-radius:6px;color:#fff;
cursor:pointer}
button.approve{background:#15803d}button.reject{background:#b91c1c}
""".strip()

_CSS_HASH = csp_hash(CSS)

# The page loads nothing. Its inline style, and on pages with charts uPlot and the drawing
# script, are allowed by their hashes; no other script or style can run.
# The link's signature is in the URL: no-referrer keeps it from leaving with a click.
_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def content_security_policy(charts: bool) -> str:
    """No script and only the page's own style; with charts, exactly their script and style too."""
    styles, scripts = f"'sha256-{_CSS_HASH}'", "'none'"
    if charts:
        assets = chart_assets()
        styles, scripts = f"{styles} {assets.style_src}", assets.script_src
    return (
        f"default-src 'none'; script-src {scripts}; style-src {styles}; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def security_headers(charts: bool = False) -> dict[str, str]:
    return {"Content-Security-Policy": content_security_policy(charts), **_HEADERS}


SECURITY_HEADERS = security_headers()


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
    """The approval template as an HTTP response with the security headers.

    An approval with a verdict shows its bake as charts: uPlot and the drawing script inline.
    """
    values: dict[str, Any] = {"approval": None, "form": None, "timeline_url": None, **context}
    approval = values["approval"]
    verdict = approval.verdict if approval is not None else None
    # Verdicts recorded before samples were kept have their numbers, but nothing to draw.
    drawable = (
        verdict is not None
        and verdict.samples is not None
        and (verdict.samples.canary or verdict.samples.live)
    )
    charts = bake_charts(verdict) if verdict is not None and drawable else []
    chart_values: dict[str, Any] = {"charts": charts, "chart_data": [], "chart_script": "", "chart_style": ""}
    if charts:
        assets = chart_assets()
        chart_values = {
            "charts": charts,
            "chart_data": charts_json(charts),
            "chart_script": assets.script,
            "chart_style": assets.style,
        }
    body = (
        _environment()
        .get_template("approval.html")
        .render(
            heading=heading,
            tone=tone,
            message=message,
            css=CSS,
            milliseconds=_milliseconds,
            **chart_values,
            metric_rows=metric_rows,
            **values,
        )
    )
    return Response(
        status_code=status_code,
        content_type="text/html; charset=utf-8",
        body=body,
        headers=security_headers(charts=bool(charts)),
    )
