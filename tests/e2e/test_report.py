"""The rollout timeline page, rendered by headless Chromium (Debian's chromium)."""

import html.parser
import json
import re
import subprocess
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canaryfleet_cli.main import app

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Elements(html.parser.HTMLParser):
    """Ids and classes of the elements of a DOM as Chromium serialised it."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.classes: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        self.classes += str(values.get("class") or "").split()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def rendered(chromium: str, page: Path, profile: Path) -> Elements:
    result = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    elements = Elements()
    elements.feed(result.stdout)
    return elements


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # The pages as `make demo` writes them: the CLI writes each rollout's page from the job's records.
    folder = tmp_path_factory.mktemp("reports")
    result = CliRunner().invoke(
        app, ["local", "rollout", "--scenario", "demo", "--report-dir", str(folder), "--json"]
    )
    # As `watch`: the demo's last build is rolled back (exit 1). A crash is exit 1 too: say it.
    crash = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
    assert isinstance(result.exception, SystemExit), (result.output, crash)
    assert result.exit_code == 1, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def reports(demo: dict) -> dict[str, Path]:
    return {Path(p).stem: Path(p) for p in demo["reports"]}


def test_a_released_rollout_shows_weights_metrics_stages_verdict_and_decision(
    chromium: str, reports: dict[str, Path], tmp_path: Path
) -> None:
    page = rendered(chromium, reports["hello-app-1.0.0"], tmp_path)

    assert {"weight-chart", "error-chart", "latency-chart", "verdict", "decision", "outcome"} <= page.ids
    assert page.classes.count("cf-mark-line") >= 3 * 5, "canary deployed ... live on each chart"
    assert page.classes.count("uplot") == 3
    text = " ".join(page.text)
    assert "released" in text and "approve" in text and "approver@example.com" in text
    assert "pass" in text


def test_a_rolled_back_rollout_shows_its_alarm_and_reason(
    chromium: str, demo: dict, reports: dict[str, Path], tmp_path: Path
) -> None:
    page = rendered(chromium, reports["hello-app-1.1.0"], tmp_path)

    assert "cf-alarm" in page.classes
    assert "reason" in page.ids
    text = " ".join(page.text)
    # The alarm either ends the bake ("went to ALARM") or is already in ALARM when the bake
    # starts ("is in ALARM"), as the machine's speed orders the two; the page shows the reason
    # the rollout ended with, whichever it was.
    assert demo["outcome"] == "rolled_back"
    assert demo["reason"].startswith("canary alarm hello-app-canary-5xx-rate ")
    assert demo["reason"] in text
    assert "rolled back" in text


def test_the_page_is_self_contained(reports: dict[str, Path]) -> None:
    source = reports["hello-app-1.0.0"].read_text()

    # Scripts are inline (uPlot and the drawing script, allowed by hash); nothing names a source.
    assert not re.search(r"""<(script|link|img|iframe)[^>]*\s(src|href)\s*=""", source)
    policy = html.unescape(source)
    assert "script-src 'sha256-" in policy and "default-src 'none'" in policy
