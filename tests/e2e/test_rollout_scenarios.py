"""Every scenario, end to end on the local cloud: outcome, deployments, weights and reason."""

import re
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest

from canaryfleet_local.cloud import LocalCloudError
from canaryfleet_local.rollout_job import played_scenario, run_scenario
from canaryfleet_local.scenarios import Upload, load_scenario

QUIET = {"LogLevel": "WARNING"}
# A hang detector, not a schedule: a scenario ends when its events arrive, and on a busy
# machine starting the local cloud alone can take a minute (src/canaryfleet_local/scenarios/README.md).
DEADLINE = 600


def play(name: str, **kwargs: Any) -> dict[str, Any]:
    return checked(run_scenario(name, parameters=QUIET, timeout=DEADLINE, **kwargs))


def checked(report: dict[str, Any]) -> dict[str, Any]:
    """What every scenario must leave, whatever its outcome."""
    assert report["lock_held"] is False, "a finished rollout must release its lock"
    assert report["failed_deliveries"] == []
    assert report["simulator_errors"] == []
    assert_one_deployment_at_a_time_per_group(report)
    assert {d["creator"] for d in report["deployments"]} <= {"user"}, "CodeDeploy never rolls back on its own"
    return report


def assert_one_deployment_at_a_time_per_group(report: dict[str, Any]) -> None:
    """Every deployment ended, and none of a group was created before the previous one completed."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in report["deployments"]:
        assert entry["completed"] is not None, f"deployment {entry['id']} never ended"
        groups.setdefault(entry["group"], []).append(entry)
    for group, entries in groups.items():
        spans = sorted(
            (datetime.fromisoformat(e["created"]), datetime.fromisoformat(e["completed"])) for e in entries
        )
        for (_, previous_end), (next_start, _) in pairwise(spans):
            assert next_start >= previous_end, f"two deployments of {group} were active at once: {entries}"


def deployments(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(d["side"], d["revision"], d["status"]) for d in report["deployments"]]


def test_healthy_build_is_released() -> None:
    report = play("healthy")

    assert (report["outcome"], report["reason"], report["strategy"]) == ("released", "", "in_place")
    assert deployments(report) == [("canary", "1.0.0", "Succeeded"), ("live", "1.0.0", "Succeeded")]
    assert report["canary_weight_history"] == [10, 0]
    assert (report["live_revision"], report["canary_revision"]) == ("1.0.0", "1.0.0")
    [rollout] = report["rollouts"]
    assert rollout["verdict"]["result"] == "pass"
    assert rollout["decision"]["kind"] == "approve"
    assert report["state_transitions"][:2] == ["Is it a recovery", "Wait for turn"]
    assert report["state_transitions"][-1] == "Rollout released"
    assert report["faults"] == {}  # no fault injection unless it is switched on
    assert not any(report["leftovers"].values()), report["leftovers"]


def test_failing_canary_is_rolled_back_by_its_alarm_to_the_last_good_revision() -> None:
    report = play("failing-canary")

    assert report["outcome"] == "rolled_back"
    assert report["reason"].startswith("canary alarm hello-app-canary-")
    # Its event ends the bake; or, on a machine slow enough that it fired before the bake stored
    # its wait (or its event came after the bake), the bake's own check of the alarm states.
    assert re.search(r"(went to ALARM|is in ALARM): ", report["reason"]), report["reason"]
    assert deployments(report)[2:] == [("canary", "1.1.0", "Succeeded"), ("canary", "1.0.0", "Succeeded")]
    assert report["canary_weight_history"] == [10, 0]
    assert (report["live_revision"], report["canary_revision"]) == ("1.0.0", "1.0.0")
    assert "Analyse canary against live" not in report["state_transitions"], "the alarm ends the bake at once"
    assert "Redeploy last good revision to canary" in report["state_transitions"]


def test_an_alarm_whose_event_is_lost_still_rolls_the_canary_back_when_the_bake_ends() -> None:
    report = play("lost-alarm-event")

    assert report["outcome"] == "rolled_back"
    assert report["reason"].startswith("canary alarm hello-app-canary-"), report["reason"]
    assert "is in ALARM" in report["reason"], "read from the alarm's state, not from an event"
    transitions = report["state_transitions"]
    assert "Check canary alarms after the bake" in transitions
    assert "Analyse canary against live" not in transitions, "the alarm ends the step before the analysis"
    [good, bad] = report["rollouts"]
    assert good["verdict"]["result"] == "pass", "1.0.0's bake, which nothing ended either, was analysed"
    assert bad["verdict"] is None
    assert bad["decision"] is None, "nobody is asked to approve a canary in ALARM"
    assert deployments(report)[2:] == [("canary", "1.1.0", "Succeeded"), ("canary", "1.0.0", "Succeeded")]
    assert (report["live_revision"], report["canary_revision"]) == ("1.0.0", "1.0.0")


def test_a_canary_alarm_while_awaiting_approval_rolls_back_without_waiting_for_anyone() -> None:
    report = play("alarm-during-approval")

    assert report["outcome"] == "rolled_back"
    assert report["reason"].startswith("canary alarm hello-app-canary-"), report["reason"]
    # Its event ends the wait; or, if it fired before the wait was stored, request_approval's check.
    assert re.search(r"(went to ALARM while awaiting approval|is in ALARM): ", report["reason"])
    [_, bad] = report["rollouts"]
    assert bad["verdict"]["result"] == "pass", "the bake passed: the alarm came after it"
    assert bad["decision"] is None
    if "while awaiting approval" in report["reason"]:
        # The event ended the wait: the approval is settled at once, not at its expiry two
        # minutes on, and its Slack message says why
        assert bad["approval"]["status"] == "closed", bad["approval"]
        assert re.fullmatch(
            r"canary alarm hello-app-canary-\S+ went to ALARM; the rollout rolls back",
            bad["approval"]["closed_reason"],
        ), bad["approval"]
    assert report["executions"][-1]["error"] == "RolledBack"
    assert deployments(report)[2:] == [("canary", "1.1.0", "Succeeded"), ("canary", "1.0.0", "Succeeded")]
    assert (report["live_revision"], report["canary_revision"]) == ("1.0.0", "1.0.0")
    assert report["canary_weight_history"] == [10, 0]


def test_slow_canary_fails_its_analysis() -> None:
    report = play("slow-canary")

    assert report["outcome"] == "rolled_back"
    # 320 ms against 80 ms per interval, judged on ranks: the latency metric fails, the 5xx rate does not.
    found = re.match(
        r"analysis failed: latency: canary ([\d.]+) against live 0.08 "
        r"\(\+(\d+)\.\d%.*is worse \(adjusted p = ",
        report["reason"],
    )
    assert found is not None, report["reason"]
    assert float(found[1]) == 0.32 and int(found[2]) == 300
    verdict = report["rollouts"][-1]["verdict"]
    assert verdict["result"] == "fail"
    assert {m["name"]: m["result"] for m in verdict["metrics"]} == {"5xx rate": "pass", "latency": "fail"}
    assert report["live_revision"] == "1.0.0"


def test_failed_canary_deployment_takes_no_traffic_and_rolls_back() -> None:
    report = play("canary-deployment-fails")

    assert report["outcome"] == "rolled_back"
    assert report["reason"].startswith("deployment failed: deployment ")
    assert deployments(report)[2:] == [("canary", "1.1.0", "Failed"), ("canary", "1.0.0", "Succeeded")]
    assert report["canary_weight_history"] == [0], "only the rollback's own reset"
    assert "Shift canary traffic" not in report["state_transitions"]
    assert (report["live_revision"], report["canary_revision"]) == ("1.0.0", "1.0.0")


def test_rejected_by_the_approver() -> None:
    report = play("rejected")

    assert report["outcome"] == "rejected"
    assert report["reason"] == "rejected by approver@example.com: error budget is spent this week"
    assert [d[0] for d in deployments(report)] == ["canary"]
    assert report["executions"][-1]["error"] == "Rejected"
    assert report["rollouts"][-1]["audit"][0]["kind"] == "reject"


def test_unanswered_approval_times_out_and_rolls_back() -> None:
    report = play("approval-timeout")

    assert report["outcome"] == "rolled_back"
    assert report["reason"] == "nobody approved before the approval timeout"
    assert report["decisions"] == []


def test_too_little_traffic_extends_the_bake_once_then_asks_a_person() -> None:
    report = play("too-little-traffic")

    assert report["outcome"] == "released"
    transitions = report["state_transitions"]
    assert transitions.count("Bake canary") == 2 and "Extend the bake" in transitions
    verdict = report["rollouts"][-1]["verdict"]
    assert verdict["result"] == "inconclusive"
    # The extension's analysis judged the whole bake, its 2 s and the extension's 2 s, not the
    # extension alone (which would be as short as the window that had too little traffic).
    window = datetime.fromisoformat(verdict["window_end"]) - datetime.fromisoformat(verdict["window_start"])
    assert window.total_seconds() >= 3.5, verdict


def test_two_uploads_within_a_second_run_one_after_the_other_in_arrival_order() -> None:
    report = play("two-uploads")

    assert [r["outcome"] for r in report["rollouts"]] == ["released", "released"]
    assert [d[:2] for d in deployments(report)] == [
        ("canary", "1.0.0"),
        ("live", "1.0.0"),
        ("canary", "1.0.1"),
        ("live", "1.0.1"),
    ]
    assert report["live_revision"] == "1.0.1"


def test_rollouts_still_running_at_the_deadline_are_named_with_the_state_and_the_queue_they_wait_in() -> None:
    # Given two uploads, the first waiting ten minutes for a person nobody in the story is
    waiting = load_scenario("awaiting-decision")
    two = waiting.model_copy(update={"uploads": (*waiting.uploads, Upload(version="1.0.1"))})

    # When the story's deadline comes first
    with pytest.raises(LocalCloudError) as stopped:
        run_scenario(two, parameters=QUIET, timeout=15)

    # Then the error says where each waits (the first wherever the deadline found it, holding
    # the lock; the second for its turn) and the application's lock and queue
    said = str(stopped.value)
    assert said.startswith("2 of 2 rollouts still running at the deadline: ")
    assert re.search(r"hello-app-1_0_0-\w+ in '[A-Z][a-z ]+'", said), said
    assert re.search(r"hello-app-1_0_1-\w+ in 'Wait for turn'", said), said
    assert re.search(
        r"hello-app's lock: hello-app-1_0_0-\w+; its queue: hello-app-1_0_1-\w+ \(waiting\)", said
    ), said


def test_a_lost_deployment_event_does_not_hang_the_rollout() -> None:
    report = play("lost-deployment-event")

    assert report["outcome"] == "released"
    assert "Check canary deployment" in report["state_transitions"]
    assert "Check live deployment" in report["state_transitions"]


# Both ways, and neither waits for a timeout: an unanswered approval is approval-timeout's story.
@pytest.mark.parametrize(
    ("scenario", "decision", "outcome"),
    [("healthy", "reject", "rejected"), ("rejected", "approve", "released")],
)
def test_the_decision_can_be_set_from_outside_the_scenario(
    scenario: str, decision: str, outcome: str
) -> None:
    report = play(scenario, decision=decision)

    assert report["outcome"] == outcome


def test_on_call_aborts_during_the_bake_and_the_rollout_rolls_back_saying_who_and_why() -> None:
    report = play("aborted-during-bake")

    assert report["outcome"] == "rolled_back"
    assert report["reason"] == "aborted by oncall@example.com: payments incident in progress"
    assert report["executions"][-1]["error"] == "RolledBack"
    assert [d["result"]["outcome"] for d in report["decisions"]] == ["applied"]


def test_on_call_promotes_during_the_bake_and_the_remaining_bakes_and_approvals_are_skipped() -> None:
    report = play("promoted-during-bake")

    assert report["outcome"] == "released"
    transitions = report["state_transitions"]
    assert "Analyse canary against live" not in transitions
    assert transitions.count("Bake canary") == 2, "the second bake ends at once"
    assert report["rollouts"][-1]["audit"][0]["kind"] == "promote"
    assert report["canary_weight_history"] == [10, 50, 0]


def test_a_failed_live_deployment_rolls_back_and_restores_live_then_the_canary() -> None:
    report = play("live-deployment-fails")

    assert report["outcome"] == "rolled_back"
    assert report["reason"].startswith("deployment failed: deployment ")
    assert deployments(report)[2:] == [
        ("canary", "1.1.0", "Succeeded"),
        ("live", "1.1.0", "Failed"),
        ("live", "1.0.0", "Succeeded"),
        ("canary", "1.0.0", "Succeeded"),
    ]
    assert (report["live_revision"], report["canary_revision"]) == ("1.0.0", "1.0.0")
    transitions = report["state_transitions"]
    assert transitions.index("Redeploy last good revision to live") < transitions.index(
        "Redeploy last good revision to canary"
    )


def test_an_abort_during_the_canary_deployment_waits_for_the_stopped_deployment_then_restores() -> None:
    with played_scenario("aborted-during-deployment", parameters=QUIET) as run:
        report = checked(run.report)

    assert report["outcome"] == "rolled_back"
    assert report["reason"] == "aborted by oncall@example.com: wrong build tagged"
    assert deployments(report)[2:] == [("canary", "1.1.0", "Stopped"), ("canary", "1.0.0", "Succeeded")]
    assert (report["live_revision"], report["canary_revision"]) == ("1.0.0", "1.0.0")
    busy = [i for i in run.invocations if i.logical_id == "DeployFunction" and i.error_type]
    assert busy and {i.error_type for i in busy} == {"DeploymentGroupBusy"}, "the restore met the busy group"


def test_an_unanswered_approval_promotes_where_the_policy_says_so() -> None:
    report = play("approval-timeout-promotes")

    assert report["outcome"] == "released"
    assert "What an unanswered approval means" in report["state_transitions"]
    assert "Check canary alarms before going live" in report["state_transitions"], "none in ALARM: on it goes"
    assert report["decisions"] == []


def test_inconclusive_with_no_approval_step_does_not_pass_silently() -> None:
    report = play("inconclusive-without-approval")

    assert report["outcome"] == "rolled_back"
    assert report["reason"].startswith("analysis inconclusive")
    assert "Inconclusive with nobody to ask" in report["state_transitions"]
    assert report["state_transitions"].count("Bake canary") == 2


def test_a_critical_application_metric_ends_the_bake_at_once_through_its_fail_fast_alarm() -> None:
    report = play("payments-drop")

    assert report["outcome"] == "rolled_back"
    assert report["reason"].startswith(
        "critical metric payment success failed during the bake: canaryfleet-hello-app.payment-success: "
        "Threshold Crossed"
    ), report["reason"]
    # The bake (120 s) did not reach its end: a bake that times out is analysed.
    transitions = report["state_transitions"]
    assert transitions.count("Bake canary") == 1
    assert "Should the bake be analysed" not in transitions
    assert "Analyse canary against live" not in transitions
    assert report["rollouts"][-1]["verdict"] is None
    assert report["canary_weight_history"] == [10, 0]
    assert report["live_revision"] == "1.0.0"
    assert report["canary_revision"] == "1.0.0"
