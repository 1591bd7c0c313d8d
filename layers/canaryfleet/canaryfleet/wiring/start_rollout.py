"""The start_rollout function's service: the bundle checks and the rollout workflow.

Apart from ``wiring.rollouts`` because only this function validates bundles (zip and YAML
parsing): the state machine's tasks do not load them at cold start.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

from canaryfleet.adapters.approval_email import SnsApprovalEmail
from canaryfleet.adapters.artifacts import S3ArtifactStore
from canaryfleet.adapters.fleet import CodeDeploy
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.workflow import StepFunctionsRolloutWorkflow
from canaryfleet.logic.start_rollout import StartRolloutResult
from canaryfleet.logic.start_rollout import start_rollout as start_rollout_once
from canaryfleet.ports.clock import SystemClock
from canaryfleet.settings import StartRolloutSettings


def start_rollout(
    settings: StartRolloutSettings,
) -> Callable[[S3EventNotificationEventBridgeModel], StartRolloutResult]:
    clock = SystemClock()
    store = DynamoRolloutStore(settings.state_table_name, clock)
    workflow = StepFunctionsRolloutWorkflow(settings.rollout_state_machine_arn)
    notifier = SnsNotifier(settings.notification_topic_arn)
    approver_emails = SnsApprovalEmail(settings.approval_email_topic_arn)

    def run(upload: S3EventNotificationEventBridgeModel) -> StartRolloutResult:
        return start_rollout_once(
            upload,
            S3ArtifactStore(),
            SsmRegistry(),
            store,
            CodeDeploy(),
            workflow,
            notifier,
            clock,
            approver_emails,
            load_balancer_metrics_period=settings.load_balancer_metrics_period,
        )

    return run
