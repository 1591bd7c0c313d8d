"""Entry point: S3 "Object Created" on the artifact bucket (EventBridge) -> one rollout, or a rejection."""

from typing import Any

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.adapters.artifacts import S3ArtifactStore
from canaryfleet.adapters.fleet import CodeDeploy
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.adapters.workflow import StepFunctionsRolloutWorkflow
from canaryfleet.logic.start_rollout import start_rollout
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.settings import StartRolloutSettings, load_settings


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(StartRolloutSettings)
    upload = parse_event(S3EventNotificationEventBridgeModel, event)
    result = start_rollout(
        upload,
        artifacts=S3ArtifactStore(),
        registry=SsmRegistry(),
        store=DynamoRolloutStore(settings.state_table_name),
        codedeploy=CodeDeploy(),
        workflow=StepFunctionsRolloutWorkflow(settings.rollout_state_machine_arn),
        notifier=SnsNotifier(settings.notification_topic_arn),
    )
    return result.model_dump(exclude_none=True)
