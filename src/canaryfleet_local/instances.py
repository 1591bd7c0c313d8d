"""Simulated instances: the SSM agent of the local cloud's EC2 instances, running the drain document.

Run Command reaches an instance through its agent; here :class:`SimulatedInstances` is that
agent for every instance of an onboarded application (the fleet's user data installs the
SSM agent). It does what the drain document does (template.yaml, ``DrainDocument``) to the
same contract: in drain mode the application is stopped before the flush, or after it when
``FlushFirst`` is true, never before ``InFlightSeconds`` from the run's start; the flush writes
the instance's log files to ``s3://<LogBucket>/<app>/<instance id>/<RunId>/`` with their
SHA-256 checksum and then
``manifest.json`` (name, size, sha256 of each). An instance told to fail its flush uploads
part of its logs and exits non-zero, with no manifest, as the document does when an upload
fails. It also notes, for the reports, whether the instance was still registered in a
target group of its application when the document ran.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from canaryfleet.models.app_config import AppConfig, read_registry_entry, registry_parameter
from canaryfleet.models.drain import RUN_ID_FORMAT, log_prefix, run_prefix
from moto.ec2.models import ec2_backends

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.standins.ssm import CommandInvocationResult, ManagedInstanceAgent


@dataclass(frozen=True)
class InstanceBehaviour:
    """How one simulated instance behaves when the drain document runs on it."""

    log_files: tuple[str, ...] = ("app.log", "access.log")
    lines_per_file: int = 40
    failed_flushes: int = 0  # this many runs fail their flush; later ones succeed
    agent: bool = True  # the SSM agent is registered (Run Command can reach the instance)
    # How long the document's work takes on this instance: the graceful stop (cut at the
    # document's StopBudgetSeconds, as its `timeout` cuts it) and the uploads of the flush.
    stop_seconds: float = 0.0
    upload_seconds: float = 0.0
    # This many of its runs' status-change events never reach EventBridge (Run Command's events
    # are best effort): the platform learns their end from its check of the command.
    lost_status_events: int = 0
    # Seconds after SendCommand that its SSM agent can take a command (Run Command reports the
    # invocation Delayed until then, and retries).
    delivery_delay_seconds: float = 0.0


@dataclass
class DocumentRun:
    """What one run of the document did on one instance."""

    command_id: str
    instance_id: str
    application: str
    mode: str
    run_id: str
    status: str
    steps: list[str]
    registered_in: list[str]  # target groups that still had the instance when the run began
    started: float = field(default_factory=time.monotonic)
    stopped_at: datetime | None = None  # when the stop began (wall clock)
    files: int = 0
    bytes: int = 0
    at: float = field(default_factory=time.monotonic)


class SimulatedInstances(ManagedInstanceAgent):
    """The agent of the local cloud's instances; use as a context manager around a story."""

    def __init__(self, cloud: LocalCloud, default: InstanceBehaviour | None = None) -> None:
        self.cloud = cloud
        self.default = default or InstanceBehaviour()
        self.behaviours: dict[str, InstanceBehaviour] = {}
        self.runs: list[DocumentRun] = []
        self.stopped: dict[str, float] = {}
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._apps: dict[str, AppConfig] = {}
        self._instance_tags: dict[str, dict[str, str]] = {}

    def __enter__(self) -> SimulatedInstances:
        self.cloud.fleet_operations.run_command.agent = self
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cloud.fleet_operations.run_command.agent = None

    def behave(self, instance_id: str, behaviour: InstanceBehaviour) -> None:
        self.behaviours[instance_id] = behaviour

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.cloud.client(service)
            return self._clients[service]

    def _tags(self, instance_id: str) -> dict[str, str]:
        """The instance's tags, as its agent reads them once from the instance metadata.

        They are read from moto's EC2 state, not with DescribeTags: Run Command checks that an
        instance is managed while it serves SendCommand, on the caller's thread here, and an API
        call there would bill the simulated instance's work to the function that sent the command
        (on AWS neither the agent's metadata read nor Run Command's check costs the caller).
        """
        if instance_id not in self._instance_tags:
            tags = ec2_backends[self.cloud.account_id][self.cloud.region].tags.get(instance_id, {})
            self._instance_tags[instance_id] = dict(tags)
        return self._instance_tags[instance_id]

    def _app(self, application: str) -> AppConfig:
        if application not in self._apps:
            name = registry_parameter(application)
            value = self._client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
            self._apps[application] = read_registry_entry(name, value)
        return self._apps[application]

    # -- the SSM agent -------------------------------------------------------------------
    def manages(self, instance_id: str) -> bool:
        behaviour = self.behaviours.get(instance_id, self.default)
        return behaviour.agent and "application" in self._tags(instance_id)

    def delivery_delay(self, instance_id: str) -> float:
        return self.behaviours.get(instance_id, self.default).delivery_delay_seconds

    def run(
        self, command_id: str, instance_id: str, document: str, parameters: dict[str, list[str]]
    ) -> CommandInvocationResult:
        if document != self.cloud.output("DrainDocumentName"):
            return CommandInvocationResult("Failed", error=f"no simulation of document {document}")
        tags = self._tags(instance_id)
        application = tags["application"]
        app = self._app(application)
        mode = parameters["Mode"][0]
        run_id = parameters["RunId"][0] or datetime.now(UTC).strftime(RUN_ID_FORMAT)
        flush_first = parameters["FlushFirst"][0] == "true"
        behaviour = self.behaviours.get(instance_id, self.default)
        with self._lock:
            attempt = self._attempts.get(instance_id, 0) + 1
            self._attempts[instance_id] = attempt
        record = DocumentRun(
            command_id,
            instance_id,
            application,
            mode,
            run_id,
            "InProgress",
            [],
            self._registered_in(app, instance_id),
        )
        stop_seconds = min(behaviour.stop_seconds, float(parameters["StopBudgetSeconds"][0]))
        in_flight = float(parameters.get("InFlightSeconds", ["0"])[0])
        if mode == "drain" and not flush_first:
            self._stop(instance_id, record, stop_seconds, in_flight)
        destination = run_prefix(log_prefix(application, app.log_prefix), instance_id, run_id)
        fail = attempt <= behaviour.failed_flushes
        error = self._flush(parameters["LogBucket"][0], destination, behaviour, fail, record)
        if mode == "drain" and flush_first:
            self._stop(instance_id, record, stop_seconds, in_flight)
        record.status = "Failed" if error else "Success"
        with self._lock:
            self.runs.append(record)
        lost = attempt <= behaviour.lost_status_events
        if error:
            return CommandInvocationResult("Failed", error=error, event_lost=lost)
        return CommandInvocationResult(
            "Success", output=f"flushed {record.files} file(s), {record.bytes} bytes", event_lost=lost
        )

    def _registered_in(self, app: AppConfig, instance_id: str) -> list[str]:
        elbv2 = self._client("elbv2")
        found = []
        for arn in (app.canary.target_group_arn, app.live.target_group_arn):
            health = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
            # A target that is not registered reads "unused" (Target.NotRegistered).
            if any(h["TargetHealth"]["State"] != "unused" for h in health["TargetHealthDescriptions"]):
                found.append(arn)
        return found

    def _stop(self, instance_id: str, record: DocumentRun, seconds: float, in_flight: float) -> None:
        # The requests the load balancer still completes here first, counted from the run's start.
        time.sleep(max(0.0, record.started + in_flight - time.monotonic()))
        record.stopped_at = datetime.now(UTC)
        time.sleep(seconds)
        record.steps.append("stop")
        with self._lock:
            self.stopped.setdefault(instance_id, time.monotonic())

    def _flush(
        self, bucket: str, destination: str, behaviour: InstanceBehaviour, fail: bool, record: DocumentRun
    ) -> str | None:
        """Upload the logs, then the manifest; returns the error if the flush failed."""
        s3 = self._client("s3")
        time.sleep(behaviour.upload_seconds)
        files: list[dict[str, Any]] = []
        for index, name in enumerate(behaviour.log_files):
            if fail and index == 1:  # the second upload fails: part of the logs is there, no manifest
                record.steps.append("flush failed")
                return f"upload failed: s3://{bucket}/{destination}{name}: connection reset"
            body = "".join(
                f"{datetime.now(UTC).isoformat()} {record.application} {record.instance_id} {name} line {n}\n"
                for n in range(behaviour.lines_per_file)
            ).encode()
            s3.put_object(Bucket=bucket, Key=destination + name, Body=body, ChecksumAlgorithm="SHA256")
            files.append({"name": name, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()})
        if fail:  # a single file to upload: the manifest's upload fails
            record.steps.append("flush failed")
            return f"upload failed: s3://{bucket}/{destination}manifest.json: connection reset"
        manifest = {
            "instance_id": record.instance_id,
            "application": record.application,
            "run_id": record.run_id,
            "mode": record.mode,
            "created_at": datetime.now(UTC).isoformat(),
            "files": files,
        }
        s3.put_object(
            Bucket=bucket,
            Key=destination + "manifest.json",
            Body=json.dumps(manifest).encode(),
            ChecksumAlgorithm="SHA256",
        )
        record.steps.append("flush")
        record.files = len(files)
        record.bytes = sum(int(f["size"]) for f in files)
        return None
