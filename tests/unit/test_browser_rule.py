"""The one rule every browser test follows: run where Chromium is, skip saying why where it is
not, and fail under CI, which must run them all (tests/e2e/headless_chromium.py)."""

import pytest

from tests.e2e.headless_chromium import BrowserDecision, browser_decision, is_ci

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.parametrize("ci", [False, True])
def test_a_browser_that_is_there_runs_the_tests(ci: bool) -> None:
    assert browser_decision(CHROMIUM, ci=ci, root=False, apt_get=False) == BrowserDecision("run")


@pytest.mark.parametrize(
    ("root", "apt_get", "why"),
    [
        (False, True, "`make test` installs it only as root"),
        (True, False, "there is no apt-get here to install it"),
        (True, True, "`make test` tried apt-get install chromium and it failed"),
    ],
)
def test_no_browser_skips_with_one_line_saying_why(root: bool, apt_get: bool, why: str) -> None:
    decision = browser_decision(None, ci=False, root=root, apt_get=apt_get)

    assert decision.action == "skip"
    assert decision.reason.startswith("browser tests skipped: chromium is not installed")
    assert why in decision.reason and "\n" not in decision.reason


def test_no_browser_under_ci_is_a_failure() -> None:
    decision = browser_decision(None, ci=True, root=True, apt_get=True)

    assert decision.action == "fail"
    assert decision.reason.endswith("; CI runs every browser test")


@pytest.mark.parametrize(("ci", "action"), [(False, "skip"), (True, "fail")])
def test_a_browser_that_will_not_start_follows_the_same_rule(ci: bool, action: str) -> None:
    decision = browser_decision(CHROMIUM, ci=ci, root=True, apt_get=True, start_error="closed its pipe")

    assert decision.action == action
    assert f"chromium ({CHROMIUM}) would not start: closed its pipe" in decision.reason


@pytest.mark.parametrize(
    ("value", "ci"), [("true", True), ("1", True), ("TRUE", True), ("", False), ("false", False)]
)
def test_ci_is_read_from_the_ci_variable(monkeypatch: pytest.MonkeyPatch, value: str, ci: bool) -> None:
    monkeypatch.setenv("CI", value)

    assert is_ci() is ci
