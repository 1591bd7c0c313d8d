"""Figure 3: N instances of one application's live group scale in at once, and all must drain.

Each side gets a fresh local cloud with the same fleet (N + 2 instances, the simulated SSM agent
on each), then the group scales in by N, which puts N instances in the termination hook's wait
at once. canaryfleet drains them with its own functions; the baseline, with those switched off,
with one polling invocation per instance (bench/baselines/polling_drain.py). Counted for both:
the SendCommand calls the local cloud received, the Lambda time (the in-process runtime's
record of each invocation of canaryfleet's drain functions; each baseline invocation's
duration), the hooks completed and the manifests in S3 that match the logs they list. On both
sides each instance's drain document takes what it takes on AWS, scaled like the rest of the
bench (``AWS_DRAIN_STOP_SECONDS`` and ``AWS_DRAIN_UPLOAD_SECONDS`` over ``TIME_SCALE``), and the
instances of one command run it at the same time, as their SSM agents do: the baseline's
invocations wait (and are billed) for that run, canaryfleet's functions do not.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.drain import log_prefix

from bench.baselines.polling_drain import (
    MAX_CONCURRENCY,
    PollingDrainLambda,
    PollingDrainSettings,
    route_lifecycle_events_to_queue,
    switch_off_platform_drains,
)
from bench.histories import BenchError
from bench.profiles import (
    AWS_DRAIN_POLL_SECONDS,
    AWS_DRAIN_STOP_SECONDS,
    AWS_DRAIN_UPLOAD_SECONDS,
    DRAIN_POLL_SECONDS,
    DRAIN_STOP_SECONDS,
    DRAIN_UPLOAD_SECONDS,
    Profile,
)
from bench.quiet import QUIET_PLATFORM
from bench.results import Measure, at_most, equals, measure, ratio_at_most
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.instances import InstanceBehaviour, SimulatedInstances

APPLICATION = "hello-app"
KEEP = 2  # instances the group keeps
PLATFORM_DRAIN_FUNCTIONS = frozenset(
    {"DrainRequestFunction", "DrainDispatchFunction", "DrainCompleteFunction"}
)
BUSY_TIME_FACTOR = 20  # the goal: this many times less Lambda time than the baseline
# The drain document's run on each instance, on both sides.
DOCUMENT_RUN = InstanceBehaviour(stop_seconds=DRAIN_STOP_SECONDS, upload_seconds=DRAIN_UPLOAD_SECONDS)
DOCUMENT_DETAILS = {
    "aws_stop_seconds": AWS_DRAIN_STOP_SECONDS,
    "aws_upload_seconds": AWS_DRAIN_UPLOAD_SECONDS,
}


@dataclass(frozen=True)
class DrainRun:
    instances: int
    send_command_calls: int
    busy_seconds: float
    hooks_completed: int
    manifests_verified: int
    wall_seconds: float
    details: dict[str, Any]

    @property
    def busy_per_instance(self) -> float:
        return self.busy_seconds / self.instances


def _onboard(cloud: LocalCloud, instances: int) -> AppConfig:
    size = str(instances + KEEP)
    return deploy_fleet(cloud, APPLICATION, {"LiveMinSize": size, "LiveMaxSize": size})


def _scale_in(cloud: LocalCloud, app: AppConfig) -> list[str]:
    """Scale the live group in to KEEP instances; returns the instances put in the hook's wait."""
    cloud.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName=app.live.auto_scaling_group, MinSize=KEEP, DesiredCapacity=KEEP
    )
    return [action.instance_id for action in cloud.fleet_operations.lifecycle.actions.values()]


def _manifest_holds(s3: Any, bucket: str, key: str) -> bool:
    """The manifest lists at least one file, and each listed file is there with its size and sha256."""
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    folder = key.rsplit("/", 1)[0] + "/"
    for entry in manifest["files"]:
        body = s3.get_object(Bucket=bucket, Key=folder + entry["name"])["Body"].read()
        if len(body) != entry["size"] or hashlib.sha256(body).hexdigest() != entry["sha256"]:
            return False
    return bool(manifest["files"])


def verified_manifests(cloud: LocalCloud, app: AppConfig, instance_ids: list[str]) -> int:
    """Instances with a manifest in the log bucket whose files are all there, unchanged."""
    s3 = cloud.client("s3")
    bucket = cloud.output("LogBucketName")
    root = log_prefix(app.application, app.log_prefix)
    verified = 0
    for instance_id in instance_ids:
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{root}{instance_id}/").get("Contents", [])
        manifests = [o["Key"] for o in listing if o["Key"].endswith("/manifest.json")]
        verified += any(_manifest_holds(s3, bucket, key) for key in manifests)
    return verified


def _hooks_completed(cloud: LocalCloud, instance_ids: list[str]) -> int:
    leaving = set(instance_ids)
    return sum(1 for a in cloud.fleet_operations.lifecycle.completed if a.instance_id in leaving)


def drain_with_canaryfleet(instances: int, timeout: float) -> DrainRun:
    with LocalCloud(parameters=QUIET_PLATFORM) as cloud, SimulatedInstances(cloud, DOCUMENT_RUN):
        app = _onboard(cloud, instances)
        first = len(cloud.runtime.invocations)
        started = time.monotonic()
        leaving = _scale_in(cloud, app)
        cloud.wait_idle(timeout)
        wall = time.monotonic() - started
        invocations = cloud.runtime.invocations[first:]
        drains = [i for i in invocations if i.logical_id in PLATFORM_DRAIN_FUNCTIONS]
        calls = cloud.fleet_operations.run_command.calls
        return DrainRun(
            instances=len(leaving),
            send_command_calls=len(calls),
            busy_seconds=sum(i.seconds for i in drains),
            hooks_completed=_hooks_completed(cloud, leaving),
            manifests_verified=verified_manifests(cloud, app, leaving),
            wall_seconds=wall,
            details={
                "invocations": dict(Counter(i.logical_id for i in invocations)),
                "busy_seconds_by_function": {
                    name: round(sum(i.seconds for i in drains if i.logical_id == name), 3)
                    for name in sorted(PLATFORM_DRAIN_FUNCTIONS)
                },
                # The same invocations' own CPU time: their busy time less the time they waited for
                # the process's other threads (the simulated instances' runs), as a record, not a goal.
                "cpu_seconds_by_function": {
                    name: round(sum(i.cpu_seconds for i in drains if i.logical_id == name), 3)
                    for name in sorted(PLATFORM_DRAIN_FUNCTIONS)
                },
                "function_errors": sum(1 for i in drains if i.error_type),
                "instances_per_command": [len(c.instance_ids) for c in calls],
                "failed_deliveries": len(cloud.queue.failed),
                "document": DOCUMENT_DETAILS,
            },
        )


def drain_with_polling_baseline(instances: int, timeout: float) -> DrainRun:
    with LocalCloud(parameters=QUIET_PLATFORM) as cloud, SimulatedInstances(cloud, DOCUMENT_RUN):
        app = _onboard(cloud, instances)
        switched_off = switch_off_platform_drains(cloud)
        queue_url = route_lifecycle_events_to_queue(cloud)
        settings = PollingDrainSettings(
            document_name=cloud.output("DrainDocumentName"),
            log_bucket=cloud.output("LogBucketName"),
            poll_seconds=DRAIN_POLL_SECONDS,
            max_polls=int(timeout / DRAIN_POLL_SECONDS),
        )
        started = time.monotonic()
        leaving = _scale_in(cloud, app)
        results = PollingDrainLambda(cloud, queue_url, settings).run(len(leaving), timeout)
        cloud.wait_idle(timeout)
        wall = time.monotonic() - started
        return DrainRun(
            instances=len(leaving),
            send_command_calls=len(cloud.fleet_operations.run_command.calls),
            busy_seconds=sum(r.busy_seconds for r in results),
            hooks_completed=_hooks_completed(cloud, leaving),
            manifests_verified=verified_manifests(cloud, app, leaving),
            wall_seconds=wall,
            details={
                "invocations": len(results),
                "command_statuses": dict(Counter(r.command_status for r in results)),
                "polls_per_instance": round(sum(r.polls for r in results) / max(1, len(results)), 2),
                "poll_seconds": round(DRAIN_POLL_SECONDS, 3),
                "aws_poll_seconds": AWS_DRAIN_POLL_SECONDS,
                "platform_rules_switched_off": len(switched_off),
                "max_concurrency": MAX_CONCURRENCY,
            },
        )


def measure_drains(profile: Profile) -> list[Measure]:
    count = profile.drain_instances
    timeout = 300.0
    platform = drain_with_canaryfleet(count, timeout)
    baseline = drain_with_polling_baseline(count, timeout)
    if platform.instances != count or baseline.instances != count:
        raise BenchError(f"{platform.instances} and {baseline.instances} instances left, not {count}")
    label = "per-instance polling drain"
    return [
        measure(
            3,
            f"SendCommand calls, {count} instances",
            "calls",
            platform.send_command_calls,
            baseline.send_command_calls,
            label,
            at_most(10),
            {**platform.details, "wall_seconds": round(platform.wall_seconds, 2)},
        ),
        measure(
            3,
            "Lambda busy time per drained instance",
            "s",
            platform.busy_per_instance,
            baseline.busy_per_instance,
            label,
            ratio_at_most(1 / BUSY_TIME_FACTOR, f"{BUSY_TIME_FACTOR}x less than the baseline"),
            {
                "busy_seconds": round(platform.busy_seconds, 3),
                "baseline_busy_seconds": round(baseline.busy_seconds, 3),
                "baseline": baseline.details,
                "baseline_wall_seconds": round(baseline.wall_seconds, 2),
            },
        ),
        measure(
            3,
            "lifecycle hooks completed",
            "hooks",
            platform.hooks_completed,
            baseline.hooks_completed,
            label,
            equals(count, " (all)"),
        ),
        measure(
            3,
            "manifests verified in S3",
            "manifests",
            platform.manifests_verified,
            baseline.manifests_verified,
            label,
            equals(count, " (all)"),
        ),
    ]
