"""The pages approvers read, made on the local cloud and measured in headless Chromium.

Shared by the browser tests (tests/e2e/test_pictures.py) and `make screenshots`
(``python -m tests.e2e.pages OUT``): the demo's released and rolled-back timelines, and an
approval page waiting for a decision, each at a desktop width and on a 390x844 phone.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canaryfleet.adapters.approval_store import DynamoApprovalStore
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.app_config import registry_parameter
from canaryfleet.models.policy import AnalysisSpec, Approval, Bake, RolloutPolicy, SetWeight
from typer.testing import CliRunner

from canaryfleet_cli.main import app
from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.http_api import LocalHttpApi
from canaryfleet_local.mailbox import LocalMailbox
from canaryfleet_local.rollout_job import upload_build
from canaryfleet_local.scenarios import load_scenario
from canaryfleet_local.simulator import FleetSimulator
from tests.e2e.headless_chromium import Browser, headless_chromium
from tests.integration.helpers import eventually

VIEWPORTS = {"desktop": (1400, 900, False), "phone": (390, 844, True)}

# What a person would check by eye, measured: sideways scrolling, the buttons on the first
# screen, each chart drawn with time labels, each mark's line and label inside its plot.
MEASURE = """(() => {
  const root = document.documentElement;
  const box = (e) => { const r = e.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const inside = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1 && a.top >= b.top - 1
    && a.bottom <= b.bottom + 1;
  const charts = [...document.querySelectorAll('.cf-chart')].map((chart) => {
    const plot = chart.querySelector('.cf-plot');
    const over = chart.querySelector('.u-over');
    const marks = [...chart.querySelectorAll('.cf-mark')];
    return {
      id: chart.id,
      drawn: plot.dataset.drawn === 'true',
      xLabels: (plot.dataset.xLabels || '').split('|').filter(Boolean),
      canvas: !!chart.querySelector('canvas'),
      marks: marks.filter((m) => m.classList.contains('cf-mark-label')).length,
      expectedMarks: Number(plot.dataset.marks || 0),
      marksOutside: over ? marks.filter((m) => !inside(box(m), box(over))).map((m) => m.textContent || 'line')
        : ['no plot'],
    };
  });
  const button = (id) => { const e = document.getElementById(id); return e ? box(e) : null; };
  return {
    scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, innerHeight: window.innerHeight,
    approve: button('approve'), reject: button('reject'), charts,
  };
})()"""


@dataclass
class Shot:
    """One page at one size: what was measured, and what it requested."""

    measured: dict[str, Any]
    requests: list[str]
    png: bytes


def look(browser: Any, url: str, viewport: str) -> Shot:
    """Open ``url`` at a viewport, let the charts draw, measure it and take a full-page PNG."""
    width, height, mobile = VIEWPORTS[viewport]
    page = browser.new_page()
    page.set_viewport(width, height, mobile)
    page.watch_requests()
    page.navigate(url)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        measured = page.evaluate(MEASURE)
        if all(c["drawn"] for c in measured["charts"]):
            break
        time.sleep(0.1)
    return Shot(measured, page.requests(), page.screenshot())


def demo_timelines(folder: Path) -> dict[str, Path]:
    """The demo's timeline pages as `make demo` writes them (the released and the rolled-back)."""

    result = CliRunner().invoke(
        app, ["local", "rollout", "--scenario", "demo", "--report-dir", str(folder), "--json"]
    )
    # The demo's story ends in a rollback, so `local rollout` exits 1 (as `watch` would).
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise RuntimeError(f"the demo raised: {result.output}") from result.exception
    if result.exit_code != 1 or json.loads(result.stdout)["outcome"] != "rolled_back":
        raise RuntimeError(result.output)
    return {Path(p).stem: Path(p) for p in json.loads(result.stdout)["reports"]}


@contextmanager
def waiting_approval() -> Iterator[str]:
    """The local cloud with its HTTP API, one build baked and waiting: the approver's link."""

    approver, application = "release-manager@example.com", "hello-app"
    # A bake of some seconds, so its chart has a few samples; nobody answers for ten minutes.
    policy = RolloutPolicy(
        steps=(
            SetWeight(weight=10),
            Bake(duration_seconds=6, analysis=AnalysisSpec(min_requests=100, metrics_delay_seconds=0)),
            Approval(timeout_seconds=600),
        ),
        deployment_timeout_seconds=120,
    )
    with ExitStack() as stack:
        api = stack.enter_context(LocalHttpApi())
        cloud = stack.enter_context(LocalCloud(parameters={"LogLevel": "WARNING", **api.parameters}))
        api.attach(cloud)
        simulator = stack.enter_context(FleetSimulator(cloud, load_scenario("approval-page")))
        app = deploy_fleet(cloud, application, {"ApproverEmails": approver}).model_copy(
            update={"policy": policy}
        )
        cloud.client("ssm").put_parameter(
            Name=registry_parameter(application), Value=app.model_dump_json(), Type="String", Overwrite=True
        )
        simulator.add_application(app)
        table = cloud.output("StateTableName")
        rollouts, approvals = DynamoRolloutStore(table), DynamoApprovalStore(table)
        inbox = LocalMailbox(cloud)  # subscribed before anything is sent
        upload_build(cloud, application, "1.0.0", bundle())

        def asked() -> str | None:
            records = rollouts.list_rollouts(application)
            approval_id = records[0].approval_id if records else None
            approval = approvals.get(approval_id) if approval_id else None
            return approval_id if approval is not None and approval.emails_sent else None

        approval_id: str = eventually(asked, timeout=300)
        links = inbox.links(approval_id)
        if approver not in links:
            raise RuntimeError(f"no link for {approver}: {sorted(links)}; {app.approvers}")
        yield links[approver]


def timeline_link(browser: Browser, approval_link: str) -> str:
    """The approval page's link to the rollout's timeline (a read-only view link), as followed."""
    page = browser.new_page()
    page.navigate(approval_link)
    return str(page.evaluate("document.getElementById('timeline-link').href"))


def main(out: Path) -> None:
    """`make screenshots`: PNGs of both pages at both sizes, into ``out`` (and the timeline as
    the approval API serves it)."""

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, headless_chromium() as browser:
        pages = {name: path.resolve().as_uri() for name, path in demo_timelines(Path(folder)).items()}
        with waiting_approval() as link:
            pages["approval"] = link
            pages["approval-timeline"] = timeline_link(browser, link)
            for name, url in pages.items():
                for viewport in VIEWPORTS:
                    shot = look(browser, url, viewport)
                    target = out / f"{name}-{viewport}.png"
                    target.write_bytes(shot.png)
                    print(f"{target}  (requests: {len(shot.requests)})")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/screenshots"))
