"""Rollout functions' services, built from their settings: a factory per function.

Each factory builds the AWS adapters its function needs and returns the one call the
handler makes, so neither handlers nor logic construct adapters. Starting a rollout has its
own module (``wiring.start_rollout``), and so has the alarm handler (``wiring.alarm_event``:
Powertools idempotency): the bundle checks it loads (zip, YAML) are needed by no
other function, and every function imports the whole of its wiring module at cold start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from canaryfleet.adapters.approval_expiry import StepFunctionsApprovalExpiry
from canaryfleet.adapters.fleet import AutoScaling, CodeDeploy, Metrics, Traffic
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.tokens import StepFunctionsCallbacks
from canaryfleet.adapters.workflow import StepFunctionsExecutions, StepFunctionsRolloutWorkflow
from canaryfleet.logic import canary, colors, deployments, outcome, queue, recovery
from canaryfleet.logic.record_stage import record_stage as record_stage_once
from canaryfleet.models.rollout import RecordStageRequest, RecordStageResult, Verdict
from canaryfleet.models.rollout_record import queue_sk
from canaryfleet.models.tasks import (
    AlarmCheckTask,
    AnalyseTask,
    BakeTask,
    CheckDeploymentTask,
    ColorTask,
    DeploymentStateChange,
    DeployRequest,
    ExecutionStatusChange,
    FinalizeTask,
    QueueTask,
    ReleaseTask,
    RollbackTask,
    ShiftTask,
    TakeOverTask,
    VerifyTask,
)
from canaryfleet.ports.clock import Clock, SystemClock
from canaryfleet.settings import (
    BaseSettings,
    RecordStageSettings,
    ReleaseTurnSettings,
    RolloutWorkflowSettings,
)


def _store(settings: BaseSettings, clock: Clock) -> DynamoRolloutStore:
    return DynamoRolloutStore(settings.state_table_name, clock)


def queue_rollout(settings: BaseSettings) -> Callable[[QueueTask], int]:
    clock = SystemClock()
    store = _store(settings, clock)

    def run(task: QueueTask) -> int:
        return queue.queue_rollout(task, store, StepFunctionsCallbacks(), StepFunctionsExecutions(), clock)

    return run


def release_turn(settings: BaseSettings) -> Callable[[ReleaseTask], str | None]:
    clock = SystemClock()
    store = _store(settings, clock)

    def run(task: ReleaseTask) -> str | None:
        return queue.release_turn(
            task.ref.application,
            task.execution_arn,
            store,
            StepFunctionsCallbacks(),
            StepFunctionsExecutions(),
            clock,
            own_place=queue_sk(task.arrival, task.ref.rollout_id) if task.arrival else None,
        )

    return run


def take_over(settings: ReleaseTurnSettings) -> Callable[[TakeOverTask], dict[str, Any]]:
    clock = SystemClock()
    store = _store(settings, clock)
    ended_approvals = StepFunctionsApprovalExpiry(settings.approval_expiry_state_machine_arn)

    def run(task: TakeOverTask) -> dict[str, Any]:
        callbacks, executions = StepFunctionsCallbacks(), StepFunctionsExecutions()
        taken = recovery.take_over_stopped(
            task, store, callbacks, executions, clock, Traffic(), ended_approvals
        )
        # How long "Let the stopped task end first" waits (template.yaml's
        # StoppedTaskGraceSeconds says why).
        return {**taken, "grace_seconds": settings.stopped_task_grace_seconds}

    return run


def execution_ended(settings: RolloutWorkflowSettings) -> Callable[[ExecutionStatusChange], str]:
    workflow = StepFunctionsRolloutWorkflow(settings.rollout_state_machine_arn)

    def run(ended: ExecutionStatusChange) -> str:
        return recovery.recover(ended, workflow)

    return run


def deploy(settings: BaseSettings) -> Callable[[DeployRequest], str]:
    clock = SystemClock()
    store = _store(settings, clock)

    def run(request: DeployRequest) -> str:
        return deployments.start_deployment(
            request, store, CodeDeploy(), StepFunctionsCallbacks(), clock, alarms=Metrics()
        )

    return run


def deployment_event(settings: BaseSettings) -> Callable[[DeploymentStateChange], str]:
    store = _store(settings, SystemClock())

    def run(detail: DeploymentStateChange) -> str:
        return deployments.on_deployment_event(detail, store, CodeDeploy(), StepFunctionsCallbacks())

    return run


def check_deployment(settings: BaseSettings) -> Callable[[CheckDeploymentTask], dict[str, Any]]:
    store = _store(settings, SystemClock())

    def run(task: CheckDeploymentTask) -> dict[str, Any]:
        return deployments.check_after_timeout(task.ref, task.purpose, store, CodeDeploy())

    return run


def verify_canary(settings: BaseSettings) -> Callable[[VerifyTask], dict[str, int]]:
    def run(task: VerifyTask) -> dict[str, int]:
        return canary.verify_canary(task.app, Traffic())

    return run


def shift_traffic(settings: RecordStageSettings) -> Callable[[ShiftTask], dict[str, int]]:
    clock = SystemClock()
    store = _store(settings, clock)

    def run(task: ShiftTask) -> dict[str, int]:
        notifier = SnsNotifier(settings.notification_topic_arn) if task.notify else None
        return canary.shift_traffic(task, Traffic(), store, notifier, clock)

    return run


def bake(settings: BaseSettings) -> Callable[[BakeTask], str]:
    clock = SystemClock()
    store = _store(settings, clock)

    def run(task: BakeTask) -> str:
        return canary.begin_bake(task, store, Metrics(), StepFunctionsCallbacks(), clock)

    return run


def check_alarms(settings: BaseSettings) -> Callable[[AlarmCheckTask], dict[str, str]]:
    def run(task: AlarmCheckTask) -> dict[str, str]:
        return canary.check_alarms(task, Metrics())

    return run


def analyse(settings: RecordStageSettings) -> Callable[[AnalyseTask], Verdict]:
    clock = SystemClock()
    store = _store(settings, clock)
    notifier = SnsNotifier(settings.notification_topic_arn)

    def run(task: AnalyseTask) -> Verdict:
        return canary.analyse(task, store, Metrics(), notifier, clock)

    return run


def record_stage(settings: RecordStageSettings) -> Callable[[RecordStageRequest], RecordStageResult]:
    store = _store(settings, SystemClock())
    notifier = SnsNotifier(settings.notification_topic_arn)

    def run(request: RecordStageRequest) -> RecordStageResult:
        return record_stage_once(request, store, notifier)

    return run


def finalize(settings: BaseSettings) -> Callable[[FinalizeTask], dict[str, str]]:
    clock = SystemClock()
    store = _store(settings, clock)

    def run(task: FinalizeTask) -> dict[str, str]:
        color = task.app.release_color if task.app is not None else None
        return outcome.finalize(task.ref, task.revision, store, clock, alarms=Metrics(), live_color=color)

    return run


def record_rollback(settings: BaseSettings) -> Callable[[RollbackTask], dict[str, Any]]:
    clock = SystemClock()
    store = _store(settings, clock)

    def run(task: RollbackTask) -> dict[str, Any]:
        return outcome.roll_back(task, store, CodeDeploy(), clock, alarms=Metrics())

    return run


def color(settings: BaseSettings) -> Callable[[ColorTask], dict[str, Any]]:
    clock = SystemClock()
    store = _store(settings, clock)

    def run(task: ColorTask) -> dict[str, Any]:
        return colors.run_color_task(task, store, AutoScaling(), Traffic(), clock)

    return run
