"""The pages people decide from, looked at in headless Chromium on a desktop and on a phone.

For the demo's released and rolled-back timelines and for an approval page waiting for a
decision: no sideways scrolling, the decision buttons on the first screen, every chart drawn
with time labels on its axis, every phase mark inside its plot, and no request leaving the page.
"""

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.headless_chromium import Browser
from tests.e2e.pages import VIEWPORTS, Shot, demo_timelines, look, timeline_link, waiting_approval

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def timelines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        name: path.resolve().as_uri() for name, path in demo_timelines(tmp_path_factory.mktemp("t")).items()
    }


@pytest.fixture(scope="module")
def approval_link(timelines: dict[str, str]) -> Iterator[str]:
    # The demo's cloud first: this module-scoped cloud stays open to the module's end, and a
    # demo started while it is open finds its stack already there (one moto backend a process).
    with waiting_approval() as link:
        yield link


def assert_readable(shot: Shot, url: str, charts: int) -> None:
    measured: dict[str, Any] = shot.measured
    assert measured["scrollWidth"] <= measured["clientWidth"], "the page scrolls sideways"
    assert len(measured["charts"]) == charts
    for chart in measured["charts"]:
        assert chart["drawn"] and chart["canvas"], f"{chart['id']} was not drawn"
        assert len(chart["xLabels"]) >= 1, f"{chart['id']} has no time labels"
        assert all(label.count(":") >= 1 for label in chart["xLabels"]), chart["xLabels"]
        assert chart["marks"] == chart["expectedMarks"] > 0, f"{chart['id']} lost marks"
        assert chart["marksOutside"] == [], f"{chart['id']}: marks outside the plot"
    assert shot.requests == [url], f"the page requested more than itself: {shot.requests}"


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("name", ["hello-app-1.0.0", "hello-app-1.1.0"])
def test_a_timeline_is_readable_and_self_contained(
    browser: Browser, timelines: dict[str, str], name: str, viewport: str
) -> None:
    shot = look(browser, timelines[name], viewport)

    assert_readable(shot, timelines[name], charts=3)


def test_a_rolled_back_timeline_names_its_marks_and_states_the_canary_rate(
    browser: Browser, timelines: dict[str, str]
) -> None:
    page = browser.new_page()
    page.navigate(timelines["hello-app-1.1.0"])

    marks = page.text("#chart-marks")
    words = page.text("#error-chart")
    assert "alarm" in marks and "rolled back" in marks and "canary deployed" in marks
    # The demo's 1.1.0 answers 20% 5xx on the canary: its rate and its worst period are in words.
    # How many of the canary's periods came before 1.1.0 served depends on the machine's speed, so
    # the rate is held to its periods' range and to live's, not to a figure.
    canary = re.search(
        r"Canary 5xx rate (\d+\.\d\d)% \([\d,]+ of [\d,]+ requests\); "
        r"per period from (\d+\.\d\d)% to 20\.00%",
        words,
    )
    live = re.search(r"Live 5xx rate (\d+\.\d\d)% \(", words)
    assert canary is not None and live is not None, words
    rate, lowest = float(canary.group(1)), float(canary.group(2))
    assert lowest <= rate <= 20.0 and rate > float(live.group(1)), words


def test_a_released_timeline_lists_the_decision_with_its_time_and_comment(
    browser: Browser, timelines: dict[str, str]
) -> None:
    page = browser.new_page()
    page.navigate(timelines["hello-app-1.0.0"])

    stages = page.text("#stages")
    assert "approved by approver@example.com via local: “looks good”" in " ".join(stages.split())
    assert "+0:00" in stages and "analysis" in stages and "live: released" in stages


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_approval_page_shows_the_bake_and_the_buttons_on_the_first_screen(
    browser: Browser, approval_link: str, viewport: str
) -> None:
    shot = look(browser, approval_link, viewport)

    assert_readable(shot, approval_link, charts=2)
    height = shot.measured["innerHeight"]
    for button in ("approve", "reject"):
        place = shot.measured[button]
        assert place is not None and place["top"] >= 0 and place["bottom"] <= height, (
            f"{button} below the fold"
        )


def test_the_approval_page_names_the_build_and_what_live_runs(browser: Browser, approval_link: str) -> None:
    page = browser.new_page()
    page.navigate(approval_link)

    assert page.text("#live") == "nothing released yet"
    assert page.evaluate("document.querySelector('#build a').href").startswith("https://ci.example.com/")
    assert len(page.text("#commit")) == 40


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_approval_page_links_to_the_timeline_behind_a_read_only_view_link(
    browser: Browser, approval_link: str, viewport: str
) -> None:
    timeline = timeline_link(browser, approval_link)

    shot = look(browser, timeline, viewport)

    assert timeline.split("?", maxsplit=1)[0] == approval_link.split("?", maxsplit=1)[0] + "/timeline"
    assert set(parse_qs(urlsplit(timeline).query)) == {"expires", "view"}, "no approver's fields"
    assert_readable(shot, timeline, charts=3)


def _refused(url: str) -> int:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=30)  # the local API
    return refused.value.code


def test_the_timeline_refuses_a_changed_view_link_and_an_approvers_link(
    browser: Browser, approval_link: str
) -> None:
    base, query = timeline_link(browser, approval_link).split("?")
    tampered = query.replace("view=", "view=A", 1)[:-1]

    assert _refused(f"{base}?{tampered}") == 403
    # The approver's own link decides: it is no credential for the timeline
    assert _refused(f"{base}?{approval_link.split('?')[1]}") == 403
