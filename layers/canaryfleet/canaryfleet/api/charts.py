"""The charts' assets: uPlot (vendored, pinned) and canaryfleet's drawing script, inlined.

Pages load nothing from the network: the scripts and styles are inlined and allowed by their
sha256 in the Content-Security-Policy. They are read and hashed once per process (the first
page a cold Lambda renders), never per request. The data is a JSON block
(``type="application/json"``), which browsers do not run, so it needs no hash.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from canaryfleet.models.chart import Chart

# uPlot 1.6.32 from npm (MIT, templates/charts/uPlot.LICENSE); the test suite checks these digests,
# so the vendored files cannot change unnoticed.
UPLOT_VERSION = "1.6.32"
UPLOT_JS_SHA256 = "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f"
UPLOT_CSS_SHA256 = "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04"

CHART_CSS = """
.cf-chart{margin:1rem 0;min-width:0}.cf-chart h3{font-size:1rem;margin:0 0 .25rem}
.cf-plot{width:100%;min-width:0;overflow:hidden}.cf-plot .uplot{width:100%}
.cf-mark-line{position:absolute;top:0;bottom:0;width:0;border-left:1px dashed;pointer-events:none}
.cf-mark-line.cf-alarm{border-left-style:solid;border-left-width:2px}
.cf-mark-label{position:absolute;font-size:11px;line-height:13px;white-space:nowrap;background:#ffffffd0;
padding:0 2px;pointer-events:none}
.cf-words{margin:.25rem 0 0;padding-left:1.2rem;font-size:.9rem}.cf-words li{margin:.1rem 0}
.cf-marks{font-size:.85rem;color:#495057;margin:.25rem 0 0;padding-left:1.2rem}
.u-legend{font-size:12px}
""".strip()


@dataclass(frozen=True)
class ChartAssets:
    """What a page inlines to draw charts, and the CSP sources that allow exactly that."""

    script: str
    style: str
    script_hashes: tuple[str, ...]
    style_hashes: tuple[str, ...]

    @property
    def script_src(self) -> str:
        return " ".join(f"'sha256-{h}'" for h in self.script_hashes)

    @property
    def style_src(self) -> str:
        return " ".join(f"'sha256-{h}'" for h in self.style_hashes)


def csp_hash(text: str) -> str:
    """The base64 sha256 a CSP source expression names for an inline script or style."""
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _read(name: str) -> str:
    return resources.files("canaryfleet").joinpath("templates", "charts", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def chart_assets() -> ChartAssets:
    """uPlot and the drawing script as one inline script; uPlot's and the charts' styles as one style."""
    uplot = _read("uPlot.iife.min.js")
    uplot_css = _read("uPlot.min.css")
    for text, digest, name in ((uplot, UPLOT_JS_SHA256, "js"), (uplot_css, UPLOT_CSS_SHA256, "css")):
        if hashlib.sha256(text.encode()).hexdigest() != digest:
            raise RuntimeError(f"the vendored uPlot {name} is not uPlot {UPLOT_VERSION} as pinned")
    script = uplot + "\n" + _read("charts.js")
    style = uplot_css + "\n" + CHART_CSS
    return ChartAssets(script, style, (csp_hash(script),), (csp_hash(style),))


def charts_json(charts: list[Chart]) -> list[dict[str, object]]:
    """The charts as the drawing script reads them (JSON-ready)."""
    return [chart.model_dump(mode="json", exclude={"words", "title"}) for chart in charts]
