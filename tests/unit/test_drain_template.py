"""What template.yaml promises about drains: routing, batching, the document, least privilege."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from canaryfleet.models.drain import (
    FINAL_INVOCATION_STATUSES,
    HOOK_RENEW_SECONDS,
    HOOK_TIMEOUT_SECONDS,
    LIFECYCLE_HOOK_NAME,
    MAX_CHECK_DELAY_SECONDS,
)
from canaryfleet.settings import DrainDispatchSettings
from moto.events.models import EventPattern
from moto.events.utils import EventMessageType

from canaryfleet_local.parsing import parse_template
from tests.helpers import REPO, load_event

TEMPLATE: dict[str, Any] = parse_template((REPO / "template.yaml").read_text())
FLEET: dict[str, Any] = parse_template((REPO / "fleet" / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
DOCUMENT_NAME = RESOURCES["DrainDocument"]["Properties"]["Name"]
DRAIN_FUNCTIONS = ("DrainRequestFunction", "DrainDispatchFunction", "DrainCompleteFunction")
SAMPLES = (
    "drain_request/lifecycle_terminate",
    "drain_request/spot_interruption",
    "drain_request/rebalance_recommendation",
    "drain_complete/command_invocation_success",
    "drain_complete/command_invocation_failed",
    "drain_complete/command_status_change",
)


def _resolved(value: Any) -> Any:
    """A pattern with the document's Ref resolved to its name."""
    if value == {"Ref": "DrainDocument"}:
        return DOCUMENT_NAME
    if isinstance(value, dict):
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    return value


def _rules() -> dict[str, dict[str, Any]]:
    """Every EventBridge rule of the template, as "<function>.<event>" -> pattern."""
    rules = {}
    for logical_id, resource in RESOURCES.items():
        for name, spec in resource.get("Properties", {}).get("Events", {}).items():
            if spec["Type"] == "EventBridgeRule":
                rules[f"{logical_id}.{name}"] = _resolved(spec["Properties"]["Pattern"])
    return rules


def _matching(event: dict[str, Any]) -> list[str]:
    return sorted(
        name
        for name, pattern in _rules().items()
        if EventPattern(json.dumps(pattern), pattern).matches_event(cast(EventMessageType, event))
    )


@pytest.mark.parametrize(
    ("sample", "rule"),
    [
        ("drain_request/lifecycle_terminate", "DrainRequestFunction.TerminationHook"),
        ("drain_request/spot_interruption", "DrainRequestFunction.SpotInterruption"),
        ("drain_request/rebalance_recommendation", "DrainRequestFunction.RebalanceRecommendation"),
        ("drain_complete/command_invocation_success", "DrainCompleteFunction.DrainCommandEnded"),
        ("drain_complete/command_invocation_failed", "DrainCompleteFunction.DrainCommandEnded"),
    ],
)
def test_each_sample_event_reaches_exactly_its_rule(sample: str, rule: str) -> None:
    assert _matching(load_event(sample)) == [rule]


def test_the_command_level_status_event_reaches_no_rule() -> None:
    assert _matching(load_event("drain_complete/command_status_change")) == []


def test_a_termination_hook_of_another_name_reaches_no_rule() -> None:
    event = load_event("drain_request/lifecycle_terminate")
    event["detail"]["LifecycleHookName"] = "someone-elses-hook"

    assert _matching(event) == []


def test_a_command_of_another_document_reaches_no_rule() -> None:
    event = load_event("drain_complete/command_invocation_success")
    event["detail"]["document-name"] = "AWS-RunShellScript"

    assert _matching(event) == []


def test_a_command_still_in_progress_reaches_no_rule() -> None:
    event = load_event("drain_complete/command_invocation_success")
    event["detail"]["status"] = "InProgress"

    assert _matching(event) == []


def test_the_completion_rule_takes_every_final_status_the_code_knows() -> None:
    pattern = _rules()["DrainCompleteFunction.DrainCommandEnded"]

    assert set(pattern["detail"]["status"]) == FINAL_INVOCATION_STATUSES


def test_the_hook_the_drain_serves_is_the_one_the_fleet_creates() -> None:
    hooks = {
        hook["LifecycleHookName"]
        for resource in FLEET["Resources"].values()
        if resource["Type"] == "AWS::AutoScaling::AutoScalingGroup"
        for hook in resource["Properties"]["LifecycleHookSpecificationList"]
    }
    pattern = _rules()["DrainRequestFunction.TerminationHook"]

    assert hooks == {LIFECYCLE_HOOK_NAME} == set(pattern["detail"]["LifecycleHookName"])


def test_the_drain_queue_hands_batches_of_50_with_partial_failures_and_a_dead_letter_queue() -> None:
    mapping = RESOURCES["DrainDispatchEventSource"]["Properties"]
    queue = RESOURCES["DrainQueue"]["Properties"]
    timeout = TEMPLATE["Globals"]["Function"]["Timeout"]

    assert (mapping["BatchSize"], mapping["FunctionResponseTypes"]) == (50, ["ReportBatchItemFailures"])
    assert 0 < mapping["MaximumBatchingWindowInSeconds"] < 10
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DrainDeadLetterQueue", "Arn"]}
    assert queue["VisibilityTimeout"] >= 6 * timeout


def test_the_dispatcher_polls_only_its_own_queue() -> None:
    dispatcher = RESOURCES["DrainDispatchFunction"]["Properties"]

    assert "Events" not in dispatcher, "a SAM SQS event would attach the managed policy for every queue"
    assert {"SQSPollerPolicy": {"QueueName": {"Fn::GetAtt": ["DrainQueue", "QueueName"]}}} in dispatcher[
        "Policies"
    ]


def _statements(logical_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in RESOURCES[logical_id]["Properties"]["Policies"]
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
    ]


@pytest.mark.parametrize("logical_id", ["DrainDispatchFunction", "DrainCompleteFunction"])
def test_send_command_is_limited_to_the_drain_document_and_instances(logical_id: str) -> None:
    document, instances = [s for s in _statements(logical_id) if "ssm:SendCommand" in s["Action"]]

    # The document by its ARN; instances only under the fleet's tag (the document carries none).
    assert document["Action"] == instances["Action"] == ["ssm:SendCommand"]
    assert document["Resource"]["Fn::Sub"].rsplit(":", 1)[-1] == "document/${DrainDocument}"
    assert "Condition" not in document
    assert instances["Resource"]["Fn::Sub"].rsplit(":", 1)[-1] == "instance/*"
    assert instances["Condition"] == {"StringLike": {"ssm:resourceTag/canaryfleet:application": "?*"}}


def test_only_the_completion_and_the_checks_read_logs_and_only_from_the_log_bucket() -> None:
    # The dispatcher reads them when a command's check ends a drain whose status event was lost.
    readers = {
        logical_id
        for logical_id in DRAIN_FUNCTIONS
        for statement in _statements(logical_id)
        if any(a.startswith("s3:") for a in statement["Action"])
    }

    assert readers == {"DrainCompleteFunction", "DrainDispatchFunction"}
    for reader in readers:
        resources = [
            s["Resource"] for s in _statements(reader) if any(a.startswith("s3:") for a in s["Action"])
        ]
        assert resources == [{"Fn::Sub": "${LogBucket.Arn}/*"}, {"Fn::GetAtt": ["LogBucket", "Arn"]}], reader
        actions = [s["Action"] for s in _statements(reader) if any(a.startswith("s3:") for a in s["Action"])]
        assert actions == [["s3:GetObject"], ["s3:ListBucket"]], reader


def test_the_drain_document_is_the_one_the_fleets_log_sync_runs() -> None:
    assert FLEET["Parameters"]["LogSyncDocumentName"]["Default"] == DOCUMENT_NAME
    assert RESOURCES["DrainDocument"]["Properties"]["DocumentType"] == "Command"
    assert TEMPLATE["Outputs"]["DrainDocumentName"]["Value"] == {"Ref": "DrainDocument"}


def test_checks_come_often_enough_to_renew_a_termination_hook_whatever_the_parameter_says() -> None:
    # Given the fleet's shortest termination hook timeout, and the platform's DrainCheckSeconds as
    # CloudFormation and each drain function take it
    hook_timeout = FLEET["Parameters"]["TerminationHookHeartbeatTimeout"]["MinValue"]
    parameter = TEMPLATE["Parameters"]["DrainCheckSeconds"]
    setting = DrainDispatchSettings.model_fields["drain_check_seconds"]

    # Then the longest delay any of them allows is the one that renews the hook in time (a check
    # that finds its command not ended heartbeats the hook: a run Run Command delivers late
    # would otherwise outlast it), a minute inside the hook's timeout
    assert hook_timeout == HOOK_TIMEOUT_SECONDS == HOOK_RENEW_SECONDS + 60
    assert parameter["MaxValue"] == HOOK_RENEW_SECONDS == MAX_CHECK_DELAY_SECONDS
    assert [m.le for m in setting.metadata if hasattr(m, "le")] == [HOOK_RENEW_SECONDS]
