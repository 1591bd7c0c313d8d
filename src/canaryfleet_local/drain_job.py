"""`canaryfleet local drain` and `canaryfleet local inject-event`: drains on a fresh local cloud.

A drain scenario (scenarios_drain/*.yaml) makes N instances of an application leave the way
the scenario says (a scale-in, a Spot storm, rebalance recommendations), with the instances'
SSM agent played by :class:`~canaryfleet_local.instances.SimulatedInstances`, and reports
what the platform did, read from the state table, the log bucket, the notification topic
and the stand-ins' records of the AWS calls made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from canaryfleet.adapters.drain_store import DynamoDrainStore
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.app_config import AppConfig, registry_parameter
from canaryfleet.models.drain import DrainOrder, DrainRecord
from canaryfleet.models.rollout_record import RolloutRecord
from moto.sns.models import sns_backends
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud, LocalCloudError
from canaryfleet_local.faults import leftovers
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.instances import DocumentRun, InstanceBehaviour, SimulatedInstances
from canaryfleet_local.scenarios import Scenario
from canaryfleet_local.simulator import FleetSimulator
from canaryfleet_local.standins.eventbridge import emit_service_event, service_event

APPLICATION = "hello-app"
DRAIN_SCENARIOS = Path(__file__).parent / "scenarios_drain"
_CANARY_MAX = 10  # fleet/template.yaml's CanaryInstanceCount


class FlushFailure(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    instances: int = Field(ge=1, description="How many of the leaving instances behave so.")
    failed_flushes: int = Field(ge=1, le=5, description="Runs of the document whose flush fails.")


class DrainScenario(BaseModel):
    """Instances leaving an application, and how they behave when the drain document runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    event: Literal["scale_in", "spot", "rebalance"]
    side: Literal["live", "canary"] = "live"
    instances: int = Field(default=10, ge=1, le=500, description="Instances that leave.")
    keep: int = Field(default=2, ge=0, description="Instances the group keeps.")
    drain_on_rebalance: bool = False
    terminate_after_drain: bool = Field(
        default=False, description="The group then terminates the drained instances (capacity rebalancing)."
    )
    flush_failures: tuple[FlushFailure, ...] = ()
    lost_status_events: int = Field(
        default=0,
        ge=0,
        description="Leaving instances (after those of flush_failures) whose first run's Run Command "
        "status event never reaches EventBridge: the platform's check of the command ends their drain.",
    )
    delayed_deliveries: int = Field(
        default=0,
        ge=0,
        description="Leaving instances (after those of flush_failures and lost_status_events) whose SSM "
        "agent takes each command delivery_delay_seconds after it was sent (Run Command: Delayed).",
    )
    delivery_delay_seconds: float = Field(default=0.0, ge=0.0, le=60.0)
    drain_check_seconds: int | None = Field(
        default=None, ge=1, le=240, description="The platform's DrainCheckSeconds; None: its default."
    )
    duplicate_events: int = Field(default=0, ge=0, le=5, description="Extra deliveries of every event.")
    unmanaged_events: int = Field(default=0, ge=0, le=50, description="Spot warnings for unknown instances.")
    rollout: Scenario | None = Field(
        default=None, description="A rollout under way; the instances leave during its first bake."
    )


def drain_scenario_names() -> list[str]:
    return sorted(p.stem for p in DRAIN_SCENARIOS.glob("*.yaml"))


def load_drain_scenario(name: str) -> DrainScenario:
    path = DRAIN_SCENARIOS / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown drain scenario {name!r}; known: {', '.join(drain_scenario_names())}")
    return DrainScenario.model_validate(yaml.safe_load(path.read_text()))


# --- observing the local cloud -------------------------------------------------------------
class ResponseLog:
    """Every function response of the local cloud (on AWS: what the functions' logs show)."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, dict[str, Any] | None, bool]] = []

    @contextlib.contextmanager
    def recording(self, cloud: LocalCloud) -> Iterator[ResponseLog]:
        runtime = cloud.runtime
        run = runtime.run

        def recorded(
            function_name: str, payload: bytes | str | None, invocation_type: str
        ) -> tuple[bytes, bool]:
            body, failed = run(function_name, payload, invocation_type)
            parsed = json.loads(body) if body else None
            logical = runtime.functions.get(function_name.rsplit(":", 1)[-1])
            self.responses.append(
                (
                    logical.logical_id if logical else function_name,
                    parsed if isinstance(parsed, dict) else None,
                    failed,
                )
            )
            return body, failed

        runtime.run = recorded  # type: ignore[method-assign]
        try:
            yield self
        finally:
            runtime.run = run  # type: ignore[method-assign]

    def of(self, logical_id: str) -> list[dict[str, Any]]:
        return [r or {} for name, r, failed in self.responses if name == logical_id and not failed]

    def errors(self) -> list[dict[str, Any]]:
        return [
            {"function": name, "error": (r or {}).get("errorType"), "message": (r or {}).get("errorMessage")}
            for name, r, failed in self.responses
            if failed
        ]


def _group_instances(cloud: LocalCloud, group: str) -> list[str]:
    response = cloud.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return [i["InstanceId"] for g in response["AutoScalingGroups"] for i in g["Instances"]]


def _verified_manifests(cloud: LocalCloud, records: list[DrainRecord]) -> int:
    """Drained records whose manifest in S3 is the one the platform recorded, listing what it says."""
    s3 = cloud.client("s3")
    bucket = cloud.output("LogBucketName")
    verified = 0
    for record in records:
        if record.outcome != "drained" or not record.manifest_key:
            continue
        body = s3.get_object(Bucket=bucket, Key=record.manifest_key)["Body"].read()
        files = json.loads(body)["files"]
        if hashlib.sha256(body).hexdigest() == record.manifest_sha256 and len(files) == record.file_count:
            verified += 1
    return verified


def _logs_lost_alerts(cloud: LocalCloud) -> list[dict[str, Any]]:
    topic = sns_backends[cloud.account_id][cloud.region].topics[cloud.output("NotificationTopicArn")]
    alerts = []
    for notification in topic.sent_notifications:
        # (message id, message, subject, message attributes, group id)
        attributes = notification[3] or {}
        if attributes.get("kind", {}).get("Value") == "drain.logs_lost":
            alerts.append(json.loads(notification[1]))
    return alerts


def _dead_letters(cloud: LocalCloud) -> int:
    attributes = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.output("DrainDeadLetterQueueUrl"), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


# --- the story ---------------------------------------------------------------------------
def _leave(cloud: LocalCloud, scenario: DrainScenario, group: str, leaving: list[str], keep: int) -> None:
    operations = cloud.fleet_operations
    if scenario.event == "scale_in":
        cloud.client("autoscaling").update_auto_scaling_group(
            AutoScalingGroupName=group, MinSize=keep, DesiredCapacity=keep
        )
    elif scenario.event == "spot":
        operations.spot.interrupt(leaving)
    else:
        operations.spot.recommend_rebalance(leaving)


def _function_arn(cloud: LocalCloud, logical_id: str) -> str:
    return str(
        cloud.client("lambda").get_function(FunctionName=cloud.resource(logical_id))["Configuration"][
            "FunctionArn"
        ]
    )


def _deliver_again(cloud: LocalCloud, times: int) -> None:
    """Deliver every event the drain rules saw ``times`` more times (EventBridge is at-least-once)."""
    function_arn = _function_arn(cloud, "DrainRequestFunction")
    seen = {e["id"]: e for _, arn, e in list(cloud.event_targets.delivered) if arn == function_arn}
    for _ in range(times):
        for event in seen.values():
            emit_service_event(cloud.account_id, cloud.region, event)


def _unmanaged_warnings(cloud: LocalCloud, count: int) -> None:
    for n in range(count):
        event = service_event(
            cloud.account_id,
            cloud.region,
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            [],
            {"instance-id": f"i-{0xDEAD0000 + n:017x}", "instance-action": "terminate"},
        )
        emit_service_event(cloud.account_id, cloud.region, event)


def _fleet_parameters(scenario: DrainScenario, count: int) -> dict[str, str]:
    parameters = {"DrainOnRebalance": "true" if scenario.drain_on_rebalance else "false"}
    if scenario.side == "live":
        size = str(count + scenario.keep)
        parameters.update(LiveMinSize=size, LiveMaxSize=size)
    else:
        parameters["CanaryInstanceCount"] = str(count + scenario.keep)
    return parameters


def run_drain_scenario(
    scenario: DrainScenario | str,
    instances: int | None = None,
    parameters: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Play a drain scenario on a fresh local cloud; see the module docstring for the report."""
    if isinstance(scenario, str):
        scenario = load_drain_scenario(scenario)
    count = instances or scenario.instances
    if scenario.side == "canary" and count + scenario.keep > _CANARY_MAX:
        raise LocalCloudError(f"a canary group has at most {_CANARY_MAX} instances")
    started = time.monotonic()
    if scenario.drain_check_seconds is not None:
        parameters = {**(parameters or {}), "DrainCheckSeconds": str(scenario.drain_check_seconds)}
    with (
        LocalCloud(parameters=parameters) as cloud,
        ResponseLog().recording(cloud) as responses,
        SimulatedInstances(cloud) as simulated,
    ):
        app = deploy_fleet(cloud, APPLICATION, _fleet_parameters(scenario, count))
        group = app.live.auto_scaling_group if scenario.side == "live" else app.canary.auto_scaling_group
        members = _group_instances(cloud, group)
        leaving = members[:count]
        _assign_failures(simulated, scenario, leaving)
        rollout: dict[str, Any] | None = None
        if scenario.rollout is not None:
            rollout = _during_rollout(cloud, app, scenario, group, leaving, count, started + timeout)
        else:
            _leave(cloud, scenario, group, leaving, len(members) - count)
            if scenario.event == "scale_in":  # the group picked which instances go
                chosen = {a.instance_id for a in cloud.fleet_operations.lifecycle.actions.values()}
                if chosen != set(leaving):
                    raise LocalCloudError(f"the group scaled in {sorted(chosen)}, not {sorted(leaving)}")
            _deliver_again(cloud, scenario.duplicate_events)
            _unmanaged_warnings(cloud, scenario.unmanaged_events)
            cloud.wait_idle(max(1.0, started + timeout - time.monotonic()))
            # A drain whose status event was lost ends at its check, which is a delayed message,
            # not work under way: wait for the drains themselves.
            _wait_for_final_drains(cloud, leaving, started + timeout)
            if scenario.terminate_after_drain:
                autoscaling = cloud.client("autoscaling")
                for instance_id in leaving:
                    autoscaling.terminate_instance_in_auto_scaling_group(
                        InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
                    )
                cloud.wait_idle(max(1.0, started + timeout - time.monotonic()))
        report = _report(cloud, scenario, count, leaving, simulated, responses)
        report["rollout"] = rollout
        report["leftovers"] = leftovers(cloud)
        report["faults"] = cloud.faults.summary() if cloud.faults else {}
    report["seconds"] = round(time.monotonic() - started, 2)
    return report


def _assign_failures(simulated: SimulatedInstances, scenario: DrainScenario, leaving: list[str]) -> None:
    position = 0
    for failure in scenario.flush_failures:
        for instance_id in leaving[position : position + failure.instances]:
            simulated.behave(instance_id, InstanceBehaviour(failed_flushes=failure.failed_flushes))
        position += failure.instances
    for instance_id in leaving[position : position + scenario.lost_status_events]:
        simulated.behave(instance_id, InstanceBehaviour(lost_status_events=1))
    position += scenario.lost_status_events
    for instance_id in leaving[position : position + scenario.delayed_deliveries]:
        simulated.behave(
            instance_id, InstanceBehaviour(delivery_delay_seconds=scenario.delivery_delay_seconds)
        )


def _wait_for_final_drains(cloud: LocalCloud, leaving: list[str], deadline: float) -> None:
    store = DynamoDrainStore(cloud.output("StateTableName"))
    waiting = set(leaving)
    while waiting and time.monotonic() < deadline:
        waiting = {r.instance_id for r in store.list_drains(APPLICATION) if not r.status.final} & waiting
        if waiting:
            time.sleep(0.1)
    cloud.wait_idle(max(1.0, deadline - time.monotonic()))


def _is_order(body: str) -> bool:
    """Whether a drain queue message is an instance's drain order (not a command's check)."""
    try:
        DrainOrder.model_validate_json(body)
    except ValidationError:
        return False
    return True


def _report(
    cloud: LocalCloud,
    scenario: DrainScenario,
    count: int,
    leaving: list[str],
    simulated: SimulatedInstances,
    responses: ResponseLog,
) -> dict[str, Any]:
    store = DynamoDrainStore(cloud.output("StateTableName"))
    records = store.list_drains(APPLICATION)
    operations = cloud.fleet_operations
    runs = [r for r in simulated.runs if r.instance_id in set(leaving)]
    requests = Counter(str(r.get("status")) for r in responses.of("DrainRequestFunction"))
    lifecycle = [a for a in operations.lifecycle.actions.values() if a.instance_id in set(leaving)]
    dispatcher = _function_arn(cloud, "DrainDispatchFunction")
    return {
        "scenario": scenario.name,
        "event": scenario.event,
        "side": scenario.side,
        "instances": count,
        "instance_ids": leaving,
        "drained": sum(r.outcome == "drained" for r in records),
        "logs_lost": sum(r.outcome == "logs_lost" for r in records),
        "manifests_verified": _verified_manifests(cloud, records),
        "deregistered": len({r.instance_id for r in runs} - {r.instance_id for r in runs if r.registered_in}),
        "lifecycle_actions": len(lifecycle),
        "lifecycle_completed": sum(a.ended_by == "CompleteLifecycleAction" for a in lifecycle),
        "lifecycle_pending": sum(a.ended is None for a in lifecycle),
        "lifecycle_heartbeats": sum(a.heartbeats for a in lifecycle),
        "send_command_calls": len(operations.run_command.calls),
        "status_events_lost": len(operations.run_command.lost_events),
        "instances_per_command": [len(c.instance_ids) for c in operations.run_command.calls],
        "sqs_batches": [d.size for d in operations.sqs.deliveries],
        "drain_order_batches": [
            sum(_is_order(body) for body in d.bodies)
            for d in operations.sqs.deliveries
            if d.function == dispatcher
        ],
        "ignored": requests.get("ignored", 0),
        "requests": dict(sorted(requests.items())),
        "retries": sum(r.attempts > 1 for r in records),
        "document_runs": len(runs),
        "step_orders": dict(Counter(",".join(r.steps) for r in runs)),
        "started_by": dict(Counter(r.trigger.value for r in records)),
        "in_flight_waits": sum(r.in_flight_until is not None for r in records),
        "stopped_with_requests_in_flight": _stopped_too_soon(records, runs),
        "lost": [
            {"instance_id": r.instance_id, "reason": r.reason} for r in records if r.outcome == "logs_lost"
        ],
        "alerts": _logs_lost_alerts(cloud),
        "drains_not_final": [r.instance_id for r in records if not r.status.final],
        "dead_letters": _dead_letters(cloud),
        "function_errors": responses.errors(),
        "failed_deliveries": [f.target for f in cloud.queue.failed],
    }


def _stopped_too_soon(records: list[DrainRecord], runs: list[DocumentRun]) -> list[str]:
    """Instances whose application was stopped while the load balancer could still be completing
    requests on them (before their drain's ``in_flight_until``)."""
    until = {r.instance_id: r.in_flight_until for r in records if r.in_flight_until is not None}
    return sorted(
        {
            run.instance_id
            for run in runs
            if run.stopped_at is not None
            and run.instance_id in until
            and run.stopped_at < until[run.instance_id]
        }
    )


# --- a drain during a rollout (the canary's Spot interruption) ----------------------------
def _rollout_record(cloud: LocalCloud, application: str) -> RolloutRecord | None:
    records = DynamoRolloutStore(cloud.output("StateTableName")).list_rollouts(application)
    return max(records, key=lambda r: r.received_at) if records else None


def _wait(condition: Callable[[], bool], deadline: float, what: str) -> None:
    while not condition():
        if time.monotonic() > deadline:
            raise LocalCloudError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _during_rollout(
    cloud: LocalCloud,
    app: AppConfig,
    scenario: DrainScenario,
    group: str,
    leaving: list[str],
    count: int,
    deadline: float,
) -> dict[str, Any]:
    """Roll out the scenario's build; make the instances leave as its first bake starts."""
    assert scenario.rollout is not None
    story = scenario.rollout
    app = app.model_copy(update={"policy": story.policy})
    cloud.client("ssm").put_parameter(
        Name=registry_parameter(app.application), Value=app.model_dump_json(), Type="String", Overwrite=True
    )
    sfn = cloud.client("stepfunctions")
    with FleetSimulator(cloud, story) as fleet:
        fleet.add_application(app)
        for upload in story.uploads:
            cloud.client("s3").put_object(
                Bucket=cloud.output("ArtifactBucketName"),
                Key=f"{app.application}/{upload.version}.zip",
                Body=bundle(),
            )
        _wait(
            lambda: (r := _rollout_record(cloud, app.application)) is not None and r.wait_kind == "bake",
            deadline,
            "the canary's bake",
        )
        _leave(cloud, scenario, group, leaving, len(_group_instances(cloud, group)) - count)

        def ended() -> bool:
            arns = cloud.executions("RolloutStateMachine")
            statuses = [sfn.describe_execution(executionArn=a)["status"] for a in arns]
            return bool(arns) and all(s != "RUNNING" for s in statuses)

        _wait(ended, deadline, "the rollout's end")
        cloud.wait_idle(max(1.0, deadline - time.monotonic()))
    record = _rollout_record(cloud, app.application)
    verdict = record.verdict if record else None
    return {
        "version": record.version if record else None,
        "outcome": (record.outcome or record.status) if record else None,
        "reason": record.reason if record else None,
        "verdict": verdict.model_dump(mode="json") if verdict else None,
        "canary_interruptions": [i.model_dump(mode="json") for i in record.canary_interruptions]
        if record
        else [],
    }


# --- inject-event --------------------------------------------------------------------------
# EventBridge refuses an entry larger than 256 KiB (PutEvents). It documents no nesting limit,
# but AWS's events are a few levels deep, and a deeper one would end in a RecursionError
# somewhere in the functions' JSON handling rather than in a reason anyone can act on.
MAX_EVENT_BYTES = 256 * 1024
MAX_EVENT_DEPTH = 32


class InvalidEvent(ValueError):
    """The input is not an event EventBridge would deliver: too large, too deep, or malformed."""


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest in a parsed JSON value (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            level += 1
            deepest = max(deepest, level)
            stack.extend((child, level) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def read_event(text: str | bytes) -> dict[str, Any]:
    """An EventBridge event from a file's text; InvalidEvent saying what is wrong if it is not one."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent(f"{size} bytes; EventBridge accepts events of at most {MAX_EVENT_BYTES} bytes")
    try:
        event = json.loads(text)
    except RecursionError:  # the parser recurses once per level: this is nesting, not syntax
        raise InvalidEvent(f"nested deeper than {MAX_EVENT_DEPTH} levels") from None
    except ValueError as exc:
        raise InvalidEvent(f"not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise InvalidEvent(f"an EventBridge event is a JSON object, not {type(event).__name__}")
    if _depth(event) > MAX_EVENT_DEPTH:
        raise InvalidEvent(f"nested deeper than {MAX_EVENT_DEPTH} levels")
    _check_envelope(event)
    return event


def _check_envelope(event: dict[str, Any]) -> None:
    missing = [key for key in ("source", "detail-type", "detail") if key not in event]
    if missing:
        raise InvalidEvent(f"not an EventBridge event: no {', '.join(missing)}")
    for key in ("source", "detail-type"):
        if not isinstance(event[key], str) or not event[key]:
            raise InvalidEvent(f"not an EventBridge event: {key} is not a non-empty string")
    if not isinstance(event["detail"], dict):
        raise InvalidEvent("not an EventBridge event: detail is not a JSON object")


def _without_stack(response: dict[str, Any] | None) -> dict[str, Any] | None:
    """A function's answer as the report shows it: an error's type and message, not its frames."""
    if response is None or "errorType" not in response:
        return response
    return {key: response[key] for key in ("errorType", "errorMessage") if key in response}


def _failure_reason(function: str, invocations: list[dict[str, Any]]) -> str:
    """One line for a delivery that failed every attempt: the function, the attempts, the last error."""
    failures = [i for i in invocations if i["failed"] and i["function"] == function]
    last = (failures[-1]["response"] or {}) if failures else {}
    lines = str(last.get("errorMessage") or "").strip().splitlines()
    error = str(last.get("errorType") or "no answer") + (f": {lines[0]}" if lines else "")
    return f"{function} failed {len(failures)} time(s): {error}"


def inject_event(event: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """Deliver one EventBridge event to a fresh local platform; report what it did.

    InvalidEvent (before any local cloud starts) if ``event`` is not one EventBridge would deliver.
    """
    if _depth(event) > MAX_EVENT_DEPTH:
        raise InvalidEvent(f"nested deeper than {MAX_EVENT_DEPTH} levels")
    _check_envelope(event)
    with LocalCloud(parameters=parameters) as cloud, ResponseLog().recording(cloud) as responses:
        event = {
            "version": "0",
            "id": event.get("id") or f"local-{time.time_ns()}",
            "account": cloud.account_id,
            "region": cloud.region,
            "time": event.get("time") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "resources": [],
            **event,
        }
        emit_service_event(cloud.account_id, cloud.region, event)
        cloud.wait_idle()
        operations = cloud.fleet_operations
        rules = sorted({rule for rule, _, delivered in cloud.event_targets.delivered if delivered is event})
        invocations = [
            {"function": name, "response": _without_stack(response), "failed": failed}
            for name, response, failed in responses.responses
        ]
        failed = [_logical_id(cloud, f.target) for f in cloud.queue.failed]
        return {
            "event": {"source": event["source"], "detail-type": event["detail-type"], "id": event["id"]},
            "rules_matched": rules,
            "invocations": invocations,
            "send_command_calls": len(operations.run_command.calls),
            "lifecycle_actions_completed": len(operations.lifecycle.completed),
            "failed_deliveries": [f.target for f in cloud.queue.failed],
            "delivery_failures": [_failure_reason(function, invocations) for function in failed],
        }


def _logical_id(cloud: LocalCloud, target: str) -> str:
    """The template's name of a delivery's target function (its ARN or name otherwise)."""
    code = cloud.runtime.functions.get(target.rsplit(":", 1)[-1])
    return code.logical_id if code else target
