"""Drains end to end on the local cloud: instances leave, the platform drains them, every hook ends.

The reports are read back from the state table, the log bucket, the notification topic and
the stand-ins' records of the AWS calls the functions made (see canaryfleet_local.drain_job).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from canaryfleet_cli.drains import drains_app
from canaryfleet_cli.local_drain import drain_commands
from canaryfleet_local.drain_job import run_drain_scenario
from tests.helpers import EVENTS

QUIET = {"LogLevel": "WARNING"}
DEADLINE = 600  # a hang detector: on a busy machine starting the local cloud alone takes a minute

# The commands registered as main.py registers them.
app = typer.Typer()
local_app = typer.Typer()
app.add_typer(local_app, name="local")
local_app.add_typer(drain_commands)
app.add_typer(drains_app, name="drains")
runner = CliRunner()


def cli_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def done_cleanly(report: dict[str, Any]) -> None:
    assert report["function_errors"] == [] and report["failed_deliveries"] == []
    assert report["drains_not_final"] == [] and report["lifecycle_pending"] == 0
    assert report["dead_letters"] == 0


def test_200_simultaneous_terminations_drain_in_commands_of_50() -> None:
    report = run_drain_scenario("scale-in", instances=200, parameters=QUIET, timeout=DEADLINE)

    done_cleanly(report)
    assert report["instances"] == 200
    assert report["deregistered"] == 200, "out of every target group before the document ran"
    assert report["drained"] == report["manifests_verified"] == 200
    assert report["lifecycle_completed"] == report["lifecycle_actions"] == 200
    # One SendCommand per batch of orders the drain queue delivered, for all of its orders: up to
    # 50 (SendCommand's InstanceIds limit, the mapping's BatchSize). How the orders fall into
    # batches is the event source's: orders that reach the queue more than the 2 s batching
    # window apart go in separate batches (a busy machine spreads them), so only a bound that
    # batching alone meets is asserted on the count (one command per instance would be 200).
    # (No run was tried again, which would add a command of its own.)
    assert report["retries"] == 0
    order_batches = [n for n in report["drain_order_batches"] if n]
    assert report["instances_per_command"] == order_batches
    assert sum(order_batches) == 200 and max(order_batches) <= 50
    assert report["send_command_calls"] <= 10
    assert report["step_orders"] == {"stop,flush": 200}
    assert report["in_flight_waits"] == 0, "Auto Scaling drained them before their hook"


def test_a_failed_flush_is_recorded_as_lost_alerted_and_its_hook_still_completed() -> None:
    report = cli_json("local", "drain", "--scenario", "failed-flush")

    done_cleanly(report)
    assert (report["drained"], report["logs_lost"], report["retries"]) == (2, 1, 2)
    assert report["lifecycle_completed"] == 3
    ((lost),) = report["lost"]
    assert lost["reason"] == "the drain document ended Failed (attempt 2 of 2)"
    ((alert),) = report["alerts"]
    assert (alert["instance_id"], alert["termination_hook"]) == (lost["instance_id"], "completed")


def test_drains_whose_status_events_never_came_are_ended_by_their_check() -> None:
    report = run_drain_scenario("lost-status-events", parameters=QUIET, timeout=DEADLINE)

    done_cleanly(report)
    assert report["status_events_lost"] == 2, "two of the three ends were never told"
    assert report["drained"] == report["manifests_verified"] == 3
    assert report["lifecycle_completed"] == 3 and report["logs_lost"] == 0
    assert (report["send_command_calls"], report["retries"]) == (1, 0)


def test_a_drain_document_delivered_late_keeps_its_instance_in_its_hook_until_it_has_run() -> None:
    report = run_drain_scenario("late-delivery", parameters=QUIET, timeout=DEADLINE)

    done_cleanly(report)
    assert report["drained"] == report["manifests_verified"] == report["lifecycle_completed"] == 2
    assert report["logs_lost"] == 0 and report["retries"] == 0
    # Each check that found the command Delayed renewed both hooks (8 s of delay, checks every
    # second after the drain queue's 2 s batching window)
    assert report["lifecycle_heartbeats"] >= 2


def test_duplicate_events_cause_one_drain_and_unknown_instances_are_ignored() -> None:
    report = run_drain_scenario("duplicate-events", parameters=QUIET, timeout=DEADLINE)

    done_cleanly(report)
    assert report["requests"] == {"duplicate": 10, "ignored": 3, "queued": 5}
    assert report["ignored"] == 3
    assert (report["document_runs"], report["send_command_calls"], report["drained"]) == (5, 1, 5)


def test_a_spot_storm_drains_each_instance_once_logs_first() -> None:
    report = run_drain_scenario("spot-storm", instances=30, parameters=QUIET, timeout=DEADLINE)

    done_cleanly(report)
    assert report["requests"] == {"joined": 30, "queued": 30}, "the group's termination hook joins"
    assert report["drained"] == report["manifests_verified"] == report["lifecycle_completed"] == 30
    assert report["send_command_calls"] == 1
    assert report["step_orders"] == {"flush,stop": 30}
    # A drain its Spot warning started deregistered the instance while it served, and waits out
    # the delay. One its hook started (the local cloud begins the hook with the warning) counts
    # on Auto Scaling's own deregistration before the hook, which the local cloud does not play.
    assert 0 < report["in_flight_waits"] == report["started_by"].get("spot", 0)
    assert report["stopped_with_requests_in_flight"] == [], "stopped within the deregistration delay"


def test_a_rebalance_drains_early_and_the_later_termination_completes_at_once() -> None:
    report = run_drain_scenario("rebalance", parameters=QUIET, timeout=DEADLINE)

    done_cleanly(report)
    assert report["requests"] == {"joined": 4, "queued": 4}
    assert (report["document_runs"], report["drained"], report["lifecycle_completed"]) == (4, 4, 4)
    assert report["in_flight_waits"] == 4, "each deregistered by its drain, while it served"
    assert report["stopped_with_requests_in_flight"] == [], "stopped within the deregistration delay"


def test_a_canary_spot_interruption_during_a_bake_leaves_the_verdict_inconclusive() -> None:
    report = run_drain_scenario("canary-spot-during-bake", parameters=QUIET, timeout=DEADLINE)

    done_cleanly(report)
    rollout = report["rollout"]
    assert rollout["verdict"]["result"] == "inconclusive"
    assert rollout["verdict"]["reasons"][0] == "1 canary instance(s) were interrupted during the bake"
    assert [i["instance"] for i in rollout["canary_interruptions"]] == report["instance_ids"]
    assert rollout["outcome"] == "rejected", "a person decided, not the analysis"
    assert report["drained"] == 1


def test_inject_event_delivers_an_event_to_its_rule_and_shows_the_answer() -> None:
    report = cli_json("local", "inject-event", str(EVENTS / "drain_request" / "spot_interruption.json"))

    assert [r.split("-")[1] for r in report["rules_matched"]] == ["DrainRequestFunctionSpotInterruption"]
    ((invocation),) = report["invocations"]
    assert invocation["function"] == "DrainRequestFunction"
    assert (invocation["failed"], invocation["response"]["status"]) == (False, "ignored")
    assert report["send_command_calls"] == 0


def test_inject_event_refuses_a_file_that_is_not_an_event(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text('{"hello": "world"}')

    result = runner.invoke(app, ["local", "inject-event", str(path)])

    assert result.exit_code == 2
    message = " ".join(result.output.replace("│", " ").split())
    assert "not an EventBridge event: no source, detail-type, detail" in message
