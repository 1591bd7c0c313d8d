"""Rules every state machine definition keeps (statemachines/*.asl.json)."""

import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from canaryfleet.logic.approval_gate import CLAIM_STALE_AFTER

from canaryfleet_local.parsing import parse_template
from tests.helpers import REPO, STATE_MACHINES

DEFINITIONS = sorted(STATE_MACHINES.glob("*.asl.json"))
TEMPLATE = parse_template((REPO / "template.yaml").read_text())


def states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, nested ones (Parallel branches, Map processors) included."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(states(branch))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.update(states(processor))
    return found


def substitutions_for(path: Path) -> set[str]:
    for resource in TEMPLATE["Resources"].values():
        props = resource.get("Properties", {})
        if props.get("DefinitionUri") == f"statemachines/{path.name}":
            return set(props.get("DefinitionSubstitutions", {}))
    raise AssertionError(f"{path.name} is not the DefinitionUri of any state machine in template.yaml")


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_every_task_has_retry_and_catch(path: Path) -> None:
    tasks = {name: s for name, s in states(json.loads(path.read_text())).items() if s["Type"] == "Task"}

    assert tasks
    assert [name for name, s in tasks.items() if not s.get("Retry")] == []
    assert [name for name, s in tasks.items() if not s.get("Catch")] == []


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_placeholders_are_exactly_the_template_substitutions(path: Path) -> None:
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", path.read_text()))

    assert placeholders == substitutions_for(path)


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_state_names_read_as_english(path: Path) -> None:
    for name in states(json.loads(path.read_text())):
        assert re.fullmatch(r"[A-Z][a-z]+( [a-z][a-z-]*)+", name), name


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_every_transition_goes_to_a_state_that_exists(path: Path) -> None:
    definition = json.loads(path.read_text())
    names = set(definition["States"])
    targets = {definition["StartAt"]}
    for state in definition["States"].values():
        targets |= {state[k] for k in ("Next", "Default") if k in state}
        targets |= {c["Next"] for c in state.get("Catch", []) + state.get("Choices", [])}

    assert targets <= names
    assert names - targets == set(), "unreachable states"


# AWS's recommended retries for a Lambda task ("Handle transient Lambda service exceptions",
# https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html): the four
# service exceptions of its example, and Lambda.Unknown for unhandled errors (out of memory, timeout).
RECOMMENDED_LAMBDA_RETRIES = {
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.Unknown",
}


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_every_lambda_task_retries_the_errors_aws_recommends(path: Path) -> None:
    # Given every Lambda task of the definition
    lambda_tasks = {
        name: s
        for name, s in states(json.loads(path.read_text())).items()
        if s["Type"] == "Task" and s["Resource"].startswith("arn:aws:states:::lambda:invoke")
    }

    # Then each one retries every error AWS recommends retrying
    assert lambda_tasks
    for name, task in lambda_tasks.items():
        retried = {error for retrier in task["Retry"] for error in retrier["ErrorEquals"]}
        assert RECOMMENDED_LAMBDA_RETRIES - retried == set(), name


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_no_result_selector_reaches_into_an_item_that_may_be_missing(path: Path) -> None:
    # Given every DynamoDB GetItem task (its result has no Item when the key is not in the table)
    reads = {
        name: s
        for name, s in states(json.loads(path.read_text())).items()
        if s.get("Resource") == "arn:aws:states:::dynamodb:getItem"
    }

    # Then none selects a path under Item: on a missing item that fails the execution with
    # States.Runtime, which no Catch catches; a Choice asks IsPresent first instead
    for name, task in reads.items():
        assert "$.Item" not in json.dumps(task.get("ResultSelector", {})), name


def _dynamodb_error_codes(operation: str) -> set[str]:
    """The error codes botocore's DynamoDB model gives ``operation`` (its error shapes)."""
    model = botocore.session.get_session().get_service_model("dynamodb")
    return {shape.error_code or shape.name for shape in model.operation_model(operation).error_shapes}


def test_every_dynamodb_read_retries_each_transient_error_getitem_returns_by_its_step_functions_name() -> (
    None
):
    # Given every DynamoDB GetItem task, and GetItem's errors as botocore's model lists them: an
    # optimized integration fails with "DynamoDB." and the error code DynamoDB returned
    reads = {
        (path.name, name): s
        for path in DEFINITIONS
        for name, s in states(json.loads(path.read_text())).items()
        if s.get("Resource") == "arn:aws:states:::dynamodb:getItem"
    }
    transient = {
        f"DynamoDB.{code}" for code in _dynamodb_error_codes("GetItem") - {"ResourceNotFoundException"}
    }

    # Then each task retries every one of them but a missing table, which no retry mends
    assert reads and "DynamoDB.InternalServerError" in transient
    for where, task in reads.items():
        retried = {error for retrier in task["Retry"] for error in retrier["ErrorEquals"]}
        assert transient - retried == set(), where


def test_a_queued_rollout_waits_for_its_turn_as_long_as_the_rollout_ahead_may_hold_it() -> None:
    # The rollout ahead holds the turn through a calendar hold of up to 120 days and up to 20
    # approvals of 7 days: a timeout of the queue's wait would end the queued rollout by its
    # failure path, which records no outcome and tells nobody. Only the execution's year bounds it
    # (a TIMED_OUT execution is recovered: logic/recovery.py).
    definition = json.loads((STATE_MACHINES / "rollout.asl.json").read_text())
    wait = definition["States"]["Wait for turn"]

    assert wait["Resource"].endswith(".waitForTaskToken")
    assert "TimeoutSeconds" not in wait and "TimeoutSecondsPath" not in wait
    assert "HeartbeatSeconds" not in wait and "HeartbeatSecondsPath" not in wait


def test_an_expiry_outwaits_a_decision_that_died_holding_the_approval() -> None:
    # A click just before the expiry claims the approval; if its function dies, the claim holds
    # it until it is stale (CLAIM_STALE_AFTER). The expiry's retries must outlast that, or the
    # approval stays "being decided" until someone clicks again.
    definition = json.loads((STATE_MACHINES / "approval_expiry.asl.json").read_text())
    (retrier,) = (
        r
        for s in states(definition).values()
        for r in s.get("Retry", [])
        if r["ErrorEquals"] == ["ApprovalNotExpiredYet"]
    )
    interval, rate = retrier["IntervalSeconds"], retrier.get("BackoffRate", 2.0)
    waited = sum(interval * rate**attempt for attempt in range(retrier["MaxAttempts"]))

    assert waited > CLAIM_STALE_AFTER.total_seconds() + 30  # and a margin for the claim's clock


def _first_retrier_of(task: dict[str, Any], error: str) -> dict[str, Any] | None:
    """The retrier Step Functions applies to ``error``: the first whose ErrorEquals names it."""
    for retrier in task.get("Retry", []):
        if error in retrier["ErrorEquals"] or retrier["ErrorEquals"] == ["States.ALL"]:
            return dict(retrier)
    return None


def _longest_wait(retrier: dict[str, Any]) -> float:
    """The sum of a retrier's backoffs before FULL jitter draws below each (ASL Retry fields)."""
    interval, rate = retrier.get("IntervalSeconds", 1), retrier.get("BackoffRate", 2.0)
    cap = retrier.get("MaxDelaySeconds", float("inf"))
    return sum(min(interval * rate**attempt, cap) for attempt in range(retrier.get("MaxAttempts", 3)))


def test_every_rollout_task_waits_out_aws_throttling_for_minutes_before_it_rolls_back() -> None:
    # Given every Lambda task of the rollout (each function's entry point raises a call botocore's
    # six attempts did not get through as TransientAwsError)
    path = next(p for p in DEFINITIONS if p.name == "rollout.asl.json")
    tasks = {
        name: s
        for name, s in states(json.loads(path.read_text())).items()
        if s["Type"] == "Task" and s["Resource"].startswith("arn:aws:states:::lambda:invoke")
    }

    # Then each retries it for minutes: at fifty applications, bakes start and end together and
    # CloudWatch's alarm APIs take 3 to 9 calls a second per Region
    for name, task in tasks.items():
        retrier = _first_retrier_of(task, "TransientAwsError")
        assert retrier is not None, name
        assert _longest_wait(retrier) >= 300, (name, retrier)


def _function_timeout(logical_id: str) -> int:
    function = TEMPLATE["Resources"][logical_id]["Properties"]
    return int(function.get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"]))


def test_a_recovery_waits_out_the_stopped_rollouts_last_task_before_it_touches_the_fleet() -> None:
    # StopExecution does not end the Lambda invocation of the Task it interrupted, and the ABORTED
    # event that starts the recovery comes at the stop: the rollback must begin only once the
    # longest of the rollout's functions could have returned, or that task's weights or
    # deployment land after the traffic was put back.
    definition = json.loads((STATE_MACHINES / "rollout.asl.json").read_text())
    rollout = states(definition)
    held = next(
        c
        for c in rollout["Did the stopped rollout hold its turn"]["Choices"]
        if c["Variable"] == "$.takeover.held"
    )
    wait = rollout[held["Next"]]
    grace = TEMPLATE["Parameters"]["StoppedTaskGraceSeconds"]
    release_turn = TEMPLATE["Resources"]["ReleaseTurnFunction"]["Properties"]["Environment"]["Variables"]
    substitutions = TEMPLATE["Resources"]["RolloutStateMachine"]["Properties"]["DefinitionSubstitutions"]
    called = [value["Fn::GetAtt"][0] for value in substitutions.values() if "Fn::GetAtt" in value]

    assert wait["Type"] == "Wait" and wait["SecondsPath"] == "$.takeover.grace_seconds"
    assert wait["Next"] == "Roll back the stopped rollout"
    assert (
        rollout["Take over the stopped rollout"]["ResultSelector"]["grace_seconds.$"]
        == "$.Payload.grace_seconds"
    )
    assert release_turn["STOPPED_TASK_GRACE_SECONDS"] == {"Ref": "StoppedTaskGraceSeconds"}
    assert called and grace["Default"] > max(_function_timeout(function) for function in called)
