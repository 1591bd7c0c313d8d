"""The fleet simulator: plays an application's instances, load balancer, alarms and approver.

It makes CodeDeploy deployments progress and end as the scenario says, registers the
instances of a deployed group in its target group, publishes per-target-group request,
error and latency metrics that follow the listener rule's weights and the version each
group runs, trips alarms, and answers approval requests. Everything it does to AWS goes
through the APIs, or through the stand-ins in :mod:`canaryfleet_local.standins` where moto
has no such behaviour.
"""

from __future__ import annotations

import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.policy import Bake
from moto.elbv2.models import elbv2_backends

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.scenarios import APP_NAMESPACE, Behaviour, DeploymentScript, Scenario, Upload
from canaryfleet_local.standins.cloudwatch import publish_alb_metrics
from canaryfleet_local.standins.eventbridge import emit_service_event, service_event

TICK_SECONDS = 0.1
# How far into a bake a tripped alarm fires at the earliest: past the bake function's own
# check of the alarms, which it makes just after it records the wait (see _evaluate_alarms).
ALARM_INTO_BAKE_SECONDS = 1.0
# The attributes of a running rollout's record the simulator reads (see _running_record).
RECORD_ATTRIBUTES = ("rollout_id", "version", "wait_kind", "wait_started_at")


@dataclass
class DeploymentRecord:
    deployment_id: str
    group: str
    side: str
    version: str
    status: str = "Created"
    creator: str = "user"
    created: float = field(default_factory=time.monotonic)
    ended: float | None = None


@dataclass
class AppState:
    app: AppConfig
    versions: dict[str, str]  # side -> version it runs
    alarm_since: float | None = None
    alarmed: bool = False
    alarmed_side: str = "canary"
    calm_since: float | None = None  # when the alarmed side stopped tripping (its alarms still ALARM)
    decided: set[str] = field(default_factory=set)


class FleetSimulator:
    """Runs on its own thread while a scenario plays on the local cloud."""

    def __init__(self, cloud: LocalCloud, scenario: Scenario) -> None:
        self.cloud = cloud
        self.scenario = scenario
        self.apps: dict[str, AppState] = {}
        self.deployments: list[DeploymentRecord] = []
        self.decisions: list[dict[str, Any]] = []
        self.alarms_fired: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.pass_seconds: list[float] = []  # how long each pass over all applications took
        self._uploads: dict[str, Upload] = {u.version: u for u in scenario.uploads}
        self._timers: list[threading.Timer] = []
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread = threading.Thread(target=self._run, name="fleet-simulator", daemon=True)
        # People decide on threads of their own: a decision waiting for its Lambda invocation
        # must not stop the traffic, the metrics and the alarms of every application.
        self._people = ThreadPoolExecutor(max_workers=2, thread_name_prefix="simulated-people")
        self._last_tick = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------
    def add_application(self, app: AppConfig, live_version: str = "baseline") -> None:
        with self._lock:
            self.apps[app.application] = AppState(
                app=app, versions={"canary": live_version, "live": live_version}
            )
        for side in ("canary", "live"):
            self._register_targets(app, side)

    def __enter__(self) -> FleetSimulator:
        self.cloud.codedeploy.on_created = self._deployment_created
        self.cloud.codedeploy.on_stop_requested = self._deployment_stop_requested
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._people.shutdown(wait=True, cancel_futures=True)
        for timer in self._timers:
            timer.cancel()
        self.cloud.codedeploy.on_created = None
        self.cloud.codedeploy.on_stop_requested = None

    # -- behaviour of versions ---------------------------------------------------------
    def behaviour(self, version: str) -> Behaviour:
        upload = self._uploads.get(version)
        return upload.behaviour if upload else self.scenario.baseline

    # -- CodeDeploy --------------------------------------------------------------------
    def _app_of_group(self, group: str) -> tuple[AppState, str] | None:
        for state in self.apps.values():
            if group == state.app.canary.deployment_group:
                return state, "canary"
            if group == state.app.live.deployment_group:
                return state, "live"
        return None

    def _deployment_created(self, deployment: Any) -> None:
        owner = self._app_of_group(deployment.deployment_group_name)
        if owner is None:
            return
        state, side = owner
        key = str(deployment.revision.get("s3Location", {}).get("key", ""))
        version = key.rsplit("/", 1)[-1].removesuffix(".zip")
        group = deployment.deployment_group_name
        record = DeploymentRecord(deployment.deployment_id, group, side, version, creator=deployment.creator)
        with self._lock:
            self.deployments.append(record)
        if deployment.status == "Stopped":
            # CodeDeploy stopped it as it started (one of the group's alarms in ALARM): no
            # instance was touched.
            with self._lock:
                record.status = "Stopped"
                record.ended = time.monotonic()
            self._emit_deployment_event(deployment, "STOP")
            return
        script = self._script(version, self._role(state, side))
        deployment.status = "InProgress"
        deployment.start_time = datetime.now(UTC)
        self._later(script.seconds, self._deployment_ends, deployment, record, state, script)

    @staticmethod
    def _role(state: AppState, side: str) -> str:
        """Which of an upload's deployment scripts a deployment to ``side`` plays: under blue/green
        every deployment canaryfleet makes carries the release to its color (the scenario's
        ``canary_deployment``), whichever of the stack's two groups that color is."""
        return "canary" if state.app.strategy == "blue_green" else side

    def _script(self, version: str, side: str) -> DeploymentScript:
        upload = self._uploads.get(version)
        if upload is None:
            return DeploymentScript()
        return upload.canary_deployment if side == "canary" else upload.live_deployment

    def _later(self, seconds: float, action: Any, *args: Any) -> None:
        timer = threading.Timer(seconds, action, args)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _deployment_ends(
        self, deployment: Any, record: DeploymentRecord, state: AppState, script: DeploymentScript
    ) -> None:
        if self._stop.is_set():
            return
        succeeded = script.outcome == "succeed"
        if not self.cloud.codedeploy.finish(deployment.deployment_id, succeeded):
            return  # stopped meanwhile: the stop's end decides
        with self._lock:
            record.status = deployment.status
            record.ended = time.monotonic()
            # A failed deployment (or one an alarm stopped) leaves the instances it reached on
            # the new build; the simulator plays the worst case, every instance of the group.
            state.versions[record.side] = record.version
        self._register_targets(state.app, record.side)
        if not script.lose_event:
            outcome = {"Succeeded": "SUCCESS", "Failed": "FAILURE"}.get(deployment.status, "STOP")
            self._emit_deployment_event(deployment, outcome)

    def _deployment_stop_requested(self, deployment: Any) -> None:
        """StopDeployment answered Pending: the instances finish their lifecycle event first."""
        for record in list(self.deployments):
            if record.deployment_id == deployment.deployment_id:
                owner = self._app_of_group(record.group)
                if owner is not None:
                    seconds = self._script(record.version, self._role(owner[0], record.side)).stop_seconds
                    self._later(seconds, self._deployment_stop_ends, deployment, record, owner[0])

    def _deployment_stop_ends(self, deployment: Any, record: DeploymentRecord, state: AppState) -> None:
        if self._stop.is_set() or not self.cloud.codedeploy.complete_stop(deployment.deployment_id):
            return
        with self._lock:
            record.status = "Stopped"
            record.ended = time.monotonic()
            # Like a failure: the instances it reached run the new build (worst case: all of them).
            state.versions[record.side] = record.version
        self._emit_deployment_event(deployment, "STOP")

    def _emit_deployment_event(self, deployment: Any, state: str) -> None:
        cloud = self.cloud
        application = deployment.application_name
        group = deployment.deployment_group_name
        prefix = f"arn:aws:codedeploy:{cloud.region}:{cloud.account_id}"
        event = service_event(
            cloud.account_id,
            cloud.region,
            "aws.codedeploy",
            "CodeDeploy Deployment State-change Notification",
            [f"{prefix}:application:{application}", f"{prefix}:deploymentgroup:{application}/{group}"],
            {
                "region": cloud.region,
                "deploymentId": deployment.deployment_id,
                "instanceGroupId": deployment.deployment_id,
                "deploymentGroup": group,
                "state": state,
                "application": application,
            },
        )
        emit_service_event(cloud.account_id, cloud.region, event)

    def _register_targets(self, app: AppConfig, side: str) -> None:
        """The group's instances, registered in its target group (healthy once deployed)."""
        group = app.canary if side == "canary" else app.live
        instances = self._instances_of(group.auto_scaling_group)
        if instances:
            self.cloud.client("elbv2").register_targets(
                TargetGroupArn=group.target_group_arn, Targets=[{"Id": i} for i in instances]
            )

    def _instances_of(self, asg: str) -> list[str]:
        response = self.cloud.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg])
        groups = response.get("AutoScalingGroups", [])
        return [i["InstanceId"] for g in groups for i in g.get("Instances", [])]

    # -- traffic, metrics, alarms, approvals -------------------------------------------
    def _run(self) -> None:
        pause = TICK_SECONDS
        while not self._stop.wait(pause):
            now = time.monotonic()
            elapsed, self._last_tick = now - self._last_tick, now
            for state in list(self.apps.values()):
                try:
                    self._tick(state, elapsed)
                except Exception as exc:  # a tick must never kill the simulator; tests read these
                    if len(self.errors) < 20:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
            try:
                # CloudWatch evaluates the metric-math alarms over the metrics just published.
                self.cloud.metric_math_alarms.evaluate()
            except Exception as exc:
                if len(self.errors) < 20:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            took = time.monotonic() - now
            self.pass_seconds.append(took)
            # The platform it plays against runs in the same interpreter: a pass over many
            # applications is followed by a pause as long, so the simulator never takes more
            # than half of it (a pass over a few applications takes milliseconds: TICK_SECONDS).
            pause = max(TICK_SECONDS, took)

    def _weights(self, app: AppConfig) -> dict[str, int]:
        """The weights the load balancer routes by now, as DescribeRules (or DescribeListeners) says.

        The simulator plays the load balancer, which knows its own rules: it reads moto's model
        of them, the actions as the API returns them, without a DescribeRules call per
        application per pass (parsing its XML answers took 3% of the suite's CPU). It finds the
        rule or listener by its ARN, as moto's tagging does, not by DescribeRules' walk over every
        rule of every load balancer (one walk per application per pass: a cost that grew with the
        square of the applications on the cloud).
        """
        elbv2 = elbv2_backends[self.cloud.account_id][self.cloud.region]
        resource = elbv2._get_resource_by_arn(app.listener_rule_arn)
        found = resource.actions if ":listener-rule/" in app.listener_rule_arn else resource.default_actions
        actions: list[dict[str, Any]] = [action.data for action in found]
        for action in actions:
            if action["Type"] == "forward":
                groups = action.get("ForwardConfig", {}).get("TargetGroups", [])
                weights = {g["TargetGroupArn"]: int(g.get("Weight", 0)) for g in groups}
                return {
                    "canary": weights.get(app.canary.target_group_arn, 0),
                    "live": weights.get(app.live.target_group_arn, 0),
                }
        return {"canary": 0, "live": 100}

    def current_weights(self, app: AppConfig) -> dict[str, int]:
        """The listener rule's weights now, by side (canary, live) of the registry entry."""
        return self._weights(app)

    def _tick(self, state: AppState, elapsed: float) -> None:
        app = state.app
        weights = self._weights(app)
        record = self._running_record(state)
        if weights["canary"] == 0 and record is None and not state.alarmed:
            return  # no canary traffic and no rollout: nothing compares or alarms on this app now
        total = sum(weights.values()) or 1
        stamp = datetime.now(UTC)
        lb = "/".join(app.listener_rule_arn.split(":", 5)[5].split("/")[1:4])
        data: list[dict[str, Any]] = []
        for side, group in (("canary", app.canary), ("live", app.live)):
            share = weights[side] / total
            if share <= 0:
                continue
            behaviour = self.behaviour(state.versions[side])
            requests = self.scenario.requests_per_second * elapsed * share
            dims = [
                {"Name": "LoadBalancer", "Value": lb},
                {"Name": "TargetGroup", "Value": group.target_group_arn.split(":", 5)[5]},
            ]
            data += [
                {"MetricName": "RequestCount", "Dimensions": dims, "Value": requests, "Timestamp": stamp},
                {
                    "MetricName": "HTTPCode_Target_5XX_Count",
                    "Dimensions": dims,
                    "Value": requests * behaviour.error_rate,
                    "Timestamp": stamp,
                },
                # Every other request answered by the targets: none left for the load balancer to
                # answer itself (logic/analysis/collect.py, ANSWERED).
                {
                    "MetricName": "HTTPCode_Target_2XX_Count",
                    "Dimensions": dims,
                    "Value": requests * (1 - behaviour.error_rate),
                    "Timestamp": stamp,
                },
                {
                    "MetricName": "TargetResponseTime",
                    "Dimensions": dims,
                    "Value": behaviour.latency_seconds,
                    "Timestamp": stamp,
                },
            ]
        if data:
            publish_alb_metrics(self.cloud.account_id, self.cloud.region, data)
        self._publish_app_metrics(state, weights, elapsed, stamp)
        waited: tuple[str | None, float] | None = None
        if record is None:
            # No platform rollout holds the application (the bench's polling baseline runs its
            # own): there is no bake to wait for, so a tripping canary trips its alarm as before.
            waited = (None, math.inf)
        elif (kind := record.get("wait_kind", {}).get("S")) in ("bake", "approval", "window"):
            waited = (kind, time.monotonic() - _since(record.get("wait_started_at", {}).get("S")))
        self._evaluate_alarms(state, weights, waited)
        if record is not None:
            self._operator_actions(state, record)
            self._answer_approvals(state, record)

    def _publish_app_metrics(
        self, state: AppState, weights: dict[str, int], elapsed: float, stamp: datetime
    ) -> None:
        """The application's own metrics (its behaviour's ``app_metrics``), through PutMetricData."""
        total = sum(weights.values()) or 1
        data: list[dict[str, Any]] = []
        for side, group in (("canary", state.app.canary), ("live", state.app.live)):
            share = weights[side] / total
            counts = self.behaviour(state.versions[side]).app_metrics
            if share <= 0 or not counts:
                continue
            requests = self.scenario.requests_per_second * elapsed * share
            dims = [{"Name": "AutoScalingGroupName", "Value": group.auto_scaling_group}]
            for name, per_request in {"Requests": 1.0, **counts}.items():
                data.append(
                    {
                        "MetricName": name,
                        "Dimensions": dims,
                        "Value": requests * per_request,
                        "Timestamp": stamp,
                    }
                )
        if data:
            self.cloud.client("cloudwatch").put_metric_data(Namespace=APP_NAMESPACE, MetricData=data)

    @property
    def _alarm_into_bake(self) -> float:
        """How far into the bake an alarm may fire: past the bake's own check, inside the bake.

        At most a quarter of the policy's shortest bake, so a bake of a second (the bench's)
        still sees its alarm fire before it ends.
        """
        bakes = [s.duration_seconds for s in self.scenario.policy.steps if isinstance(s, Bake)]
        return min([ALARM_INTO_BAKE_SECONDS, *(b / 4 for b in bakes)])

    def _evaluate_alarms(
        self, state: AppState, weights: dict[str, int], waited: tuple[str | None, float] | None
    ) -> None:
        """The canary's alarms go to ALARM once a tripping version has had traffic long enough.

        They go during the bake (``waited``: the rollout's wait and how long it has run; a
        version may trip them during the approval or the calendar wait instead, its
        ``trips_alarms_in``), as the scenarios tell it. On a
        busy machine the bake can start well after the traffic shift, and an alarm already in
        ALARM when it starts ends it by another path, with another reason, than one that fires.
        Blue/green: the side that trips is the color carrying the build, whichever it is.
        """
        sides = ("canary", "live") if state.app.strategy == "blue_green" else ("canary",)
        tripping = next(
            (
                side
                for side in sides
                if weights[side] > 0 and self.behaviour(state.versions[side]).trips_alarms
            ),
            None,
        )
        now = time.monotonic()
        if tripping is None:
            state.alarm_since = None
            if state.alarmed:
                # Its alarms stay in ALARM until their evaluation periods hold fewer breaching
                # datapoints than DatapointsToAlarm (minutes on AWS; the scenario's seconds here).
                state.calm_since = now if state.calm_since is None else state.calm_since
                if now - state.calm_since >= self.scenario.alarm_clears_after_seconds:
                    self._set_alarms(state, "OK", "Threshold no longer crossed", state.alarmed_side)
                    state.alarmed = False
                    state.calm_since = None
            return
        state.calm_since = None
        if state.alarm_since is None:
            state.alarm_since = now
        trips_in = self.behaviour(state.versions[tripping]).trips_alarms_in
        in_its_wait = (
            waited is not None and waited[0] in (None, trips_in) and waited[1] >= self._alarm_into_bake
        )
        if not state.alarmed and in_its_wait and now - state.alarm_since >= self.scenario.alarm_after_seconds:
            self._set_alarms(
                state,
                "ALARM",
                "Threshold Crossed: canary 5xx rate above 5% for 1 datapoint",
                tripping,
                emit=not self.behaviour(state.versions[tripping]).lose_alarm_event,
            )
            state.alarmed = True
            state.alarmed_side = tripping

    def _set_alarms(
        self, state: AppState, value: str, reason: str, side: str = "canary", emit: bool = True
    ) -> None:
        """Errors trip the side's 5xx alarms (all its alarms if none is named for 5xx).

        ``emit``: each state change is also its EventBridge event (not when the scenario loses them).
        """
        cloudwatch = self.cloud.client("cloudwatch")
        group = state.app.canary if side == "canary" else state.app.live
        alarms = [a for a in group.alarms if "5xx" in a.lower()] or list(group.alarms)
        for name in alarms:
            previous = "OK" if value == "ALARM" else "ALARM"
            cloudwatch.set_alarm_state(AlarmName=name, StateValue=value, StateReason=reason)
            with self._lock:
                self.alarms_fired.append({"alarm": name, "state": value, "at": time.monotonic()})
            if not emit:
                continue
            event = service_event(
                self.cloud.account_id,
                self.cloud.region,
                "aws.cloudwatch",
                "CloudWatch Alarm State Change",
                [f"arn:aws:cloudwatch:{self.cloud.region}:{self.cloud.account_id}:alarm:{name}"],
                {
                    "alarmName": name,
                    "previousState": {
                        "value": previous,
                        "reason": "",
                        "timestamp": datetime.now(UTC).isoformat(),
                    },
                    "state": {"value": value, "reason": reason, "timestamp": datetime.now(UTC).isoformat()},
                    "configuration": {"description": f"canaryfleet {state.app.application} canary alarm"},
                },
            )
            emit_service_event(self.cloud.account_id, self.cloud.region, event)

    def _running_record(self, state: AppState) -> dict[str, Any] | None:
        """The record of the application's running rollout (raw DynamoDB item), if any.

        Only the attributes in ``RECORD_ATTRIBUTES``, read as GetItem would return them but
        without its serialization of the whole item (see ``DynamoDBConcurrentRequests.read``):
        the simulator looks at every application several times a second.
        """
        table = self.cloud.output("StateTableName")
        store = self.cloud.stand_ins.dynamodb
        pk = f"APP#{state.app.application}"
        lock = store.read(table, pk, "LOCK", ("rollout_id",))
        if not lock:
            return None
        return store.read(table, pk, f"ROLLOUT#{lock['rollout_id']['S']}", RECORD_ATTRIBUTES)

    def _decide(self, state: AppState, key: str, payload: dict[str, Any]) -> None:
        """Decide through DecideFunction, on a person's thread (see ``__init__``)."""
        self._people.submit(self._call_decide, state, key, payload)

    def _call_decide(self, state: AppState, key: str, payload: dict[str, Any]) -> None:
        """A failed call is tried again on a later pass, as a person would."""
        try:
            response = self.cloud.client("lambda").invoke(
                FunctionName=self.cloud.resource("DecideFunction"), Payload=json.dumps(payload).encode()
            )
            result = json.loads(response["Payload"].read())
        except Exception as exc:
            result = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            response = {"FunctionError": "Unhandled"}
        with self._lock:
            self.decisions.append({**payload, "result": result})
            if "FunctionError" in response:
                state.decided.discard(key)

    def _operator_actions(self, state: AppState, record: dict[str, Any]) -> None:
        rollout_id = record["rollout_id"]["S"]
        version = record.get("version", {}).get("S")
        waiting = record.get("wait_kind", {}).get("S")
        for index, action in enumerate(self.scenario.actions):
            key = f"{rollout_id}#action{index}"
            if key in state.decided or action.during != waiting or action.version not in (None, version):
                continue
            state.decided.add(key)
            self._decide(
                state,
                key,
                {
                    "application": state.app.application,
                    "action": action.action,
                    "by": action.by,
                    "reason": action.reason,
                    "channel": "local",
                    "rollout_id": rollout_id,
                    **({"override_window": True} if action.override_window else {}),
                },
            )

    def _answer_approvals(self, state: AppState, record: dict[str, Any]) -> None:
        rollout_id = record["rollout_id"]["S"]
        if record.get("wait_kind", {}).get("S") != "approval" or rollout_id in state.decided:
            return
        waited = time.monotonic() - _since(record.get("wait_started_at", {}).get("S"))
        upload = self._uploads.get(record.get("version", {}).get("S", ""))
        decision = upload.decision if upload else self.scenario.unlisted_decision
        if decision == "none" or waited < self.scenario.decide_after_seconds:
            return
        state.decided.add(rollout_id)
        payload = {
            "application": state.app.application,
            "action": decision,
            "by": self.scenario.approver,
            "reason": "looks good" if decision == "approve" else "error budget is spent this week",
            "channel": "local",
            "rollout_id": rollout_id,
        }
        self._decide(state, rollout_id, payload)


def _since(iso: str | None) -> float:
    """Monotonic time of an ISO timestamp in the past (wall clock to monotonic)."""
    if not iso:
        return time.monotonic()
    age = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    return time.monotonic() - max(0.0, age)
