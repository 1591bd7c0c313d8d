"""Deployment windows and freezes, end to end on the local cloud: nothing deploys before it may."""

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from canaryfleet_cli.report import write_report
from canaryfleet_local.rollout_job import played_scenario
from tests.e2e.test_rollout_scenarios import DEADLINE, QUIET, checked, deployments


def created(report: dict[str, object]) -> list[datetime]:
    return [datetime.fromisoformat(d["created"]) for d in report["deployments"]]  # type: ignore[index, attr-defined]


def test_a_build_uploaded_outside_its_window_waits_and_is_released_when_the_window_opens(
    tmp_path: Path,
) -> None:
    with played_scenario("outside-window", parameters=QUIET, timeout=DEADLINE) as run:
        page = write_report(run.records[0], run.app, tmp_path / "timeline.html").read_text()
    report = checked(run.report)
    assert run.app.policy is not None
    [window] = run.app.policy.windows
    zone = ZoneInfo(window.timezone)
    [wait] = report["window_waits"]
    began = datetime.fromisoformat(wait["from"])
    opens = datetime.combine(began.astimezone(zone).date(), window.start, tzinfo=zone)

    assert report["outcome"] == "released"
    assert deployments(report) == [("canary", "1.0.0", "Succeeded"), ("live", "1.0.0", "Succeeded")]
    assert began < opens, "the rollout was held before its window opened"
    assert all(at >= opens for at in created(report)), "a deployment was created before the window opened"
    assert datetime.fromisoformat(wait["until"]) >= opens
    assert wait["reason"] == "outside the deployment window" and wait["guard"] == "canary"
    assert report["overrides"] == []
    assert "waited for the calendar before the canary until" in page
    # A wait costs the same transitions however long it is: one check, one hold, one check again.
    transitions = report["state_transitions"]
    assert transitions.count("Wait for the window before canary") == 1
    assert transitions.count("Check window before canary") == 2


def test_a_freeze_holds_a_build_until_it_ends_then_it_is_released() -> None:
    with played_scenario("frozen", parameters=QUIET, timeout=DEADLINE) as run:
        pass
    report = checked(run.report)
    [freeze] = report["freezes"]
    ends = datetime.fromisoformat(freeze["end"])
    [wait] = report["window_waits"]

    assert report["outcome"] == "released"
    assert deployments(report) == [("canary", "1.0.0", "Succeeded"), ("live", "1.0.0", "Succeeded")]
    assert datetime.fromisoformat(wait["from"]) < ends
    assert all(at >= ends for at in created(report)), "a deployment was created during the freeze"
    assert "sale day" in wait["reason"] and "oncall@example.com" in wait["reason"]


def test_an_operator_overrides_the_freeze_and_the_build_is_released_during_it() -> None:
    with played_scenario("freeze-override", parameters=QUIET, timeout=DEADLINE) as run:
        pass
    report = checked(run.report)
    [freeze] = report["freezes"]
    ends = datetime.fromisoformat(freeze["end"])
    [override] = report["overrides"]
    [rollout] = report["rollouts"]

    assert report["outcome"] == "released"
    assert deployments(report) == [("canary", "1.0.0", "Succeeded"), ("live", "1.0.0", "Succeeded")]
    assert all(at < ends for at in created(report)), "released during the freeze"
    assert (override["by"], override["reason"]) == ("oncall@example.com", "payment outage hotfix")
    assert datetime.fromisoformat(override["at"]) <= min(created(report))
    assert [e["kind"] for e in rollout["audit"] if e["kind"] == "window_override"] == ["window_override"]
    assert ends - datetime.fromisoformat(override["at"]) > timedelta(minutes=30)


def test_a_canary_alarm_while_a_freeze_holds_going_live_rolls_back_at_once() -> None:
    with played_scenario("alarm-while-frozen-before-live", parameters=QUIET, timeout=DEADLINE) as run:
        pass
    report = checked(run.report)
    [freeze] = report["freezes"]
    [wait] = report["window_waits"]

    assert report["outcome"] == "rolled_back"
    assert report["reason"].startswith("canary alarm hello-app-canary-"), report["reason"]
    by_event, by_check = "went to ALARM while waiting for the calendar to go live", "is in ALARM"
    assert re.search(f"({by_event}|{by_check}): ", report["reason"])
    assert report["rollouts"][0]["decision"]["kind"] == "approve", "approved before the canary turned bad"
    assert wait["guard"] == "live"
    # The freeze lasts an hour: the story ending at all (DEADLINE is 10 minutes) is the alarm's doing.
    lasts = datetime.fromisoformat(freeze["end"]) - datetime.fromisoformat(freeze["start"])
    assert lasts == timedelta(hours=1)
    assert [d["side"] for d in report["deployments"]] == ["canary"], "nothing went live"
    assert report["canary_weight_history"] == [10, 0]


def test_a_freeze_that_stands_when_the_canary_is_approved_holds_going_live_until_it_ends() -> None:
    with played_scenario("frozen-before-live", parameters=QUIET, timeout=DEADLINE) as run:
        pass
    report = checked(run.report)
    [freeze] = report["freezes"]
    ends = datetime.fromisoformat(freeze["end"])
    [wait] = report["window_waits"]
    canary, live = report["deployments"]

    assert report["outcome"] == "released"
    assert (canary["side"], live["side"]) == ("canary", "live")
    assert datetime.fromisoformat(canary["created"]) < ends, "the canary is not guarded in this policy"
    assert datetime.fromisoformat(live["created"]) >= ends, "went live during the freeze"
    assert wait["guard"] == "live" and "sale day" in wait["reason"]
    assert report["rollouts"][0]["decision"]["kind"] == "approve"
