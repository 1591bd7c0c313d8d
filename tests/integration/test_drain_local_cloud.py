"""The drain functions as deployed on the local cloud, and the stand-ins they rely on there."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import typer
from botocore.exceptions import ClientError
from canaryfleet.adapters.drain_store import DynamoDrainStore
from canaryfleet.adapters.drains import AutoScalingLifecycleHooks, SsmCommandStatuses, SsmRunCommand
from canaryfleet.errors import InstancesNotReachable
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.drain import LIFECYCLE_BUDGET, DrainRecord, DrainStatus, LifecycleHookRef
from canaryfleet.ports.drains import InvocationRun
from typer.testing import CliRunner

from canaryfleet_cli.drains import drains_app
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.instances import InstanceBehaviour, SimulatedInstances
from tests.helpers import load_event
from tests.integration.helpers import HeldRuns, invoke, queue_attribute

DOCUMENT = "canaryfleet-drain"


@dataclass
class Fleet:
    cloud: LocalCloud
    app: AppConfig
    instances: list[str]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """One platform with a fleet of four live instances (the tests leave them running)."""
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as cloud:
        app = deploy_fleet(cloud, "hello-app", {"LiveMinSize": "4", "LiveMaxSize": "4"})
        groups = cloud.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[app.live.auto_scaling_group]
        )["AutoScalingGroups"]
        yield Fleet(cloud, app, [i["InstanceId"] for g in groups for i in g["Instances"]])


def drain_items(cloud: LocalCloud, instance_id: str) -> list[dict[str, Any]]:
    """Every item that names the instance (its drain record and owner)."""
    items = cloud.client("dynamodb").scan(TableName=cloud.output("StateTableName"))["Items"]
    return [i for i in items if instance_id in json.dumps(i)]


def test_a_launch_lifecycle_event_is_refused_with_a_typed_error_and_writes_nothing(fleet: Fleet) -> None:
    event = load_event("drain_request/lifecycle_terminate")
    event["detail"] |= {
        "EC2InstanceId": fleet.instances[0],
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
    }

    response, error = invoke(fleet.cloud, "DrainRequestFunction", event)

    assert (error, response["errorType"]) == ("Unhandled", "InvalidEvent")
    assert drain_items(fleet.cloud, fleet.instances[0]) == []


def test_the_command_level_status_event_is_refused_by_the_completion(fleet: Fleet) -> None:
    response, error = invoke(
        fleet.cloud, "DrainCompleteFunction", load_event("drain_complete/command_status_change")
    )

    assert (error, response["errorType"]) == ("Unhandled", "InvalidEvent")


def test_a_batch_that_is_not_an_sqs_event_is_refused(fleet: Fleet) -> None:
    response, error = invoke(fleet.cloud, "DrainDispatchFunction", {"Records": [{"body": "{}"}]})

    assert (error, response["errorType"]) == ("Unhandled", "InvalidEvent")


def test_the_documented_spot_warning_of_an_instance_no_one_owns_is_ignored(fleet: Fleet) -> None:
    response, error = invoke(
        fleet.cloud, "DrainRequestFunction", load_event("drain_request/spot_interruption")
    )

    assert error is None
    assert (response["status"], response["instance_id"]) == ("ignored", "i-1234567890abcdef0")
    assert drain_items(fleet.cloud, "i-1234567890abcdef0") == []


# --- Run Command ------------------------------------------------------------------------------
def _send(fleet: Fleet, parameters: dict[str, list[str]], document: str = DOCUMENT) -> Any:
    return fleet.cloud.client("ssm").send_command(
        DocumentName=document, InstanceIds=fleet.instances[:1], Parameters=parameters
    )


@pytest.mark.parametrize(
    ("document", "parameters", "code"),
    [
        ("canaryfleet-nope", {"Mode": ["drain"]}, "InvalidDocument"),
        (DOCUMENT, {"Mode": ["drain"], "Colour": ["blue"]}, "InvalidParameters"),
        (DOCUMENT, {"Mode": ["reboot"]}, "InvalidParameters"),
        (DOCUMENT, {"Mode": ["drain"], "RunId": ["yesterday"]}, "InvalidParameters"),
    ],
    ids=["unknown-document", "undeclared-parameter", "value-not-allowed", "pattern-not-matched"],
)
def test_run_command_refuses_what_the_document_does_not_accept(
    fleet: Fleet, document: str, parameters: dict[str, list[str]], code: str
) -> None:
    with SimulatedInstances(fleet.cloud), pytest.raises(ClientError) as raised:
        _send(fleet, parameters, document)

    assert raised.value.response["Error"]["Code"] == code


def test_run_command_cannot_reach_an_instance_without_an_agent(fleet: Fleet) -> None:
    before = list(fleet.cloud.fleet_operations.run_command.calls)  # the module's other tests' commands

    with pytest.raises(InstancesNotReachable):
        SsmRunCommand().send(DOCUMENT, fleet.instances[:1], {"Mode": ["sync"]}, "no agent")

    assert fleet.cloud.fleet_operations.run_command.calls == before


def test_a_command_runs_on_the_instances_it_names_and_reports_each_end(fleet: Fleet) -> None:
    with SimulatedInstances(fleet.cloud) as instances:
        command_id = SsmRunCommand().send(DOCUMENT, fleet.instances[:2], {"Mode": ["sync"]}, "hourly sync")
        fleet.cloud.wait_idle()

    ssm = fleet.cloud.client("ssm")
    assert sorted(r.instance_id for r in instances.runs) == sorted(fleet.instances[:2])
    for instance_id in fleet.instances[:2]:
        invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        assert invocation["Status"] == "Success"
    assert all(r.steps == ["flush"] for r in instances.runs), "a sync never stops the application"


def test_a_command_expires_after_its_delivery_timeout_and_the_documents_execution_timeout(
    fleet: Fleet,
) -> None:
    # Given a drain command sent as the dispatcher sends it (TimeoutSeconds 30), the document's
    # ExecutionTimeout 240 s
    with SimulatedInstances(fleet.cloud):
        command_id = SsmRunCommand().send(
            DOCUMENT, fleet.instances[:1], {"Mode": ["sync"], "ExecutionTimeout": ["240"]}, "hourly sync"
        )
        fleet.cloud.wait_idle()

    # When Run Command is asked about it
    command = fleet.cloud.client("ssm").list_commands(CommandId=command_id)["Commands"][0]

    # Then it expires once both have passed: until then an instance that could not take it may
    # still be sent it (Systems Manager User Guide, Understanding command statuses)
    assert (command["ExpiresAfter"] - command["RequestedDateTime"]).total_seconds() == 30 + 240


def test_a_command_that_expires_while_its_run_goes_on_is_delivery_timed_out_and_the_run_ends_all_the_same(
    fleet: Fleet,
) -> None:
    # Given a sync whose run has started on its instance
    with HeldRuns(fleet.cloud) as instances:
        command_id = SsmRunCommand().send(DOCUMENT, fleet.instances[:1], {"Mode": ["sync"]}, "hourly sync")

        # When its command expires during the run (a run delivered late, near its command's
        # expiry), and the local cloud waits for the instance's work
        instance = instances.expire(command_id)
        fleet.cloud.wait_idle()

    # Then Run Command marks the invocation "Delivery Timed Out" at the expiry, as botocore's
    # model says of ExpiresAfter, though the run had started (its start time says so); the
    # instance's agent ran the document to its end all the same, which changed nothing more
    invocation = fleet.cloud.client("ssm").get_command_invocation(CommandId=command_id, InstanceId=instance)
    assert (invocation["Status"], invocation["StatusDetails"]) == ("TimedOut", "DeliveryTimedOut")
    started = datetime.fromisoformat(invocation["ExecutionStartDateTime"])
    assert started <= datetime.now(UTC) and invocation["ExecutionEndDateTime"] == ""
    assert SsmCommandStatuses().run(command_id, instance) == InvocationRun(
        "TimedOut", "DeliveryTimedOut", started
    )
    [run] = instances.runs
    assert (run.instance_id, run.status, run.steps) == (fleet.instances[0], "Success", ["flush"])


def test_an_invocation_whose_turn_comes_after_its_command_expired_never_starts(fleet: Fleet) -> None:
    # Given a sync of two instances one at a time (MaxConcurrency 1), the first one's run started
    with HeldRuns(fleet.cloud) as instances:
        command_id = fleet.cloud.client("ssm").send_command(
            DocumentName=DOCUMENT,
            InstanceIds=fleet.instances[:2],
            Parameters={"Mode": ["sync"]},
            MaxConcurrency="1",
        )["Command"]["CommandId"]

        # When the command expires during that run
        instances.expire(command_id)
        fleet.cloud.wait_idle()

    # Then both are Delivery Timed Out, but only the first started: the second, still waiting
    # for its turn at the expiry, never runs (ExpiresAfter: Pending invocations too)
    ssm = fleet.cloud.client("ssm")
    invocations = [
        ssm.get_command_invocation(CommandId=command_id, InstanceId=i) for i in fleet.instances[:2]
    ]
    assert {i["StatusDetails"] for i in invocations} == {"DeliveryTimedOut"}
    assert sorted(bool(i["ExecutionStartDateTime"]) for i in invocations) == [False, True]
    assert len(instances.runs) == 1


class CountingInstances(SimulatedInstances):
    """The simulated agents, counting how many instances run a document at once."""

    def __init__(self, cloud: LocalCloud, seconds: float) -> None:
        super().__init__(cloud, InstanceBehaviour(upload_seconds=seconds))
        self.running = self.most = 0
        self._count = threading.Lock()

    def run(self, command_id: str, instance_id: str, document: str, parameters: dict[str, list[str]]) -> Any:
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return super().run(command_id, instance_id, document, parameters)
        finally:
            with self._count:
                self.running -= 1


@pytest.mark.parametrize(
    ("max_concurrency", "at_once"), [("100%", 4), ("2", 2), ("50%", 2), ("10%", 1), (None, 4)]
)
def test_the_instances_of_one_command_run_it_at_the_same_time_up_to_max_concurrency(
    fleet: Fleet, max_concurrency: str | None, at_once: int
) -> None:
    concurrency = {} if max_concurrency is None else {"MaxConcurrency": max_concurrency}
    with CountingInstances(fleet.cloud, seconds=0.5) as instances:
        command_id = fleet.cloud.client("ssm").send_command(
            DocumentName=DOCUMENT, InstanceIds=fleet.instances, Parameters={"Mode": ["sync"]}, **concurrency
        )["Command"]["CommandId"]
        fleet.cloud.wait_idle()

    # Each instance's agent runs its own invocation: four at once, or as many as MaxConcurrency
    assert instances.most == at_once
    ssm = fleet.cloud.client("ssm")
    assert ssm.list_commands(CommandId=command_id)["Commands"][0]["Status"] == "Success"
    for instance_id in fleet.instances:
        assert ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)["Status"] == "Success"


# --- termination hooks -------------------------------------------------------------------------
def test_completing_a_lifecycle_action_that_is_not_active_says_so(fleet: Fleet) -> None:
    hook = LifecycleHookRef(
        name="canaryfleet-drain",
        auto_scaling_group=fleet.app.live.auto_scaling_group,
        token="00000000-0000-4000-8000-000000000000",
    )
    hooks = AutoScalingLifecycleHooks()

    assert hooks.complete(hook, fleet.instances[0]) is False
    assert hooks.heartbeat(hook, fleet.instances[0]) is False


def test_a_lifecycle_action_result_other_than_continue_or_abandon_is_refused(fleet: Fleet) -> None:
    autoscaling = fleet.cloud.client("autoscaling")
    request = {
        "LifecycleHookName": "canaryfleet-drain",
        "AutoScalingGroupName": fleet.app.live.auto_scaling_group,
        "LifecycleActionToken": "00000000-0000-4000-8000-000000000000",
    }

    with pytest.raises(ClientError) as invalid:
        autoscaling.complete_lifecycle_action(**request, LifecycleActionResult="continue")
    with pytest.raises(ClientError) as valid_but_not_active:
        autoscaling.complete_lifecycle_action(**request, LifecycleActionResult="ABANDON")

    assert invalid.value.response["Error"]["Code"] == "ValidationError"
    assert "specify CONTINUE or ABANDON" in invalid.value.response["Error"]["Message"]
    assert "No active Lifecycle Action" in valid_but_not_active.value.response["Error"]["Message"]


# --- the drain queue ---------------------------------------------------------------------------
def test_orders_reach_the_dispatcher_in_batches_of_at_most_50(fleet: Fleet) -> None:
    sqs = fleet.cloud.client("sqs")
    url = fleet.cloud.resource("DrainQueue")
    order = json.loads(load_event("drain_dispatch/orders")["Records"][0]["body"])
    before = len(fleet.cloud.fleet_operations.sqs.deliveries)

    for start in range(0, 120, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "MessageBody": json.dumps(order | {"instance_id": f"i-{start + n:017x}"})}
                for n in range(10)
            ],
        )
    fleet.cloud.wait_idle()

    sizes = [d.size for d in fleet.cloud.fleet_operations.sqs.deliveries[before:]]
    assert sum(sizes) == 120 and max(sizes) == 50
    assert queue_attribute(fleet.cloud, url, "ApproximateNumberOfMessages") == 0


def test_an_order_that_keeps_failing_ends_in_the_dead_letter_queue(fleet: Fleet) -> None:
    url = fleet.cloud.resource("DrainQueue")
    dead_letters = fleet.cloud.output("DrainDeadLetterQueueUrl")
    before = queue_attribute(fleet.cloud, dead_letters, "ApproximateNumberOfMessages")

    fleet.cloud.client("sqs").send_message(QueueUrl=url, MessageBody='{"instance_id": "garbage"}')
    fleet.cloud.wait_idle()

    assert queue_attribute(fleet.cloud, dead_letters, "ApproximateNumberOfMessages") == before + 1
    assert queue_attribute(fleet.cloud, url, "ApproximateNumberOfMessages") == 0


# --- the operator's view -----------------------------------------------------------------------
def test_drains_list_shows_an_applications_drains_without_their_tokens(fleet: Fleet) -> None:
    store = DynamoDrainStore(fleet.cloud.output("StateTableName"))
    instance = fleet.instances[-1]
    store.begin(
        DrainRecord(
            instance_id=instance,
            application="hello-app",
            trigger="lifecycle",
            status=DrainStatus.REQUESTED,
            log_prefix="hello-app/",
            started_at=datetime.now(UTC),
            budget=LIFECYCLE_BUDGET,
            hook_name="canaryfleet-drain",
            hook_auto_scaling_group=fleet.app.live.auto_scaling_group,
            hook_token="0f5b7d1e-0000-4000-8000-1234567890ab",
        )
    )
    store.finish("hello-app", instance, status="drained", outcome="drained", bytes=1234)
    app = typer.Typer()
    app.add_typer(drains_app, name="drains")  # as main.py registers it

    listed = CliRunner().invoke(app, ["drains", "list", "hello-app", "--stack", "canaryfleet", "--json"])

    assert listed.exit_code == 0, listed.output
    (drain,) = json.loads(listed.stdout)
    assert (drain["instance_id"], drain["outcome"], drain["bytes"]) == (instance, "drained", 1234)
    assert "0f5b7d1e" not in listed.stdout
