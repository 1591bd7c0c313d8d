"""Which stand-ins are installed, and in what order: for the platform's stack, for fleet stacks
and for fleet operations (drains)."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from canaryfleet_local.botocore_data import one_botocore_data_loader
from canaryfleet_local.botocore_events import event_names_aliased_once
from canaryfleet_local.compiled import compiled_once
from canaryfleet_local.parsing import parsed_once
from canaryfleet_local.serializing import member_names_once
from canaryfleet_local.standins.apigateway import CloudFormationHttpApi, CloudFormationHttpApiStage
from canaryfleet_local.standins.autoscaling import (
    AutoScalingDesiredCapacityRange,
    AutoScalingTerminationLifecycle,
    CloudFormationAutoScalingGroupProperties,
)
from canaryfleet_local.standins.autoscaling_launches import (
    AutoScalingLaunches,
    auto_scaling_group_size_bounds,
)
from canaryfleet_local.standins.cloudformation import (
    CloudFormationNoValueInLists,
    register_cloudformation_resource_types,
)
from canaryfleet_local.standins.cloudwatch import (
    CloudFormationCloudWatchAlarm,
    get_metric_data_reads_the_queried_metrics,
)
from canaryfleet_local.standins.cloudwatch_actions import CloudWatchAlarmSnsActions
from canaryfleet_local.standins.cloudwatch_metric_math import CloudWatchMetricMathAlarms
from canaryfleet_local.standins.codedeploy import (
    CloudFormationCodeDeployApplication,
    CloudFormationCodeDeployDeploymentGroup,
    CodeDeployLifecycle,
)
from canaryfleet_local.standins.dynamodb import DynamoDBConcurrentRequests, DynamoDBNumberRange
from canaryfleet_local.standins.ec2 import Ec2SpotInterruptions
from canaryfleet_local.standins.elbv2 import (
    CloudFormationListenerRuleTags,
    CloudFormationTargetGroupProperties,
    listener_rule_condition_quotas,
    load_balancer_target_group_quota,
)
from canaryfleet_local.standins.eventbridge import (
    EventBridgeLambdaAndStateMachineTargets,
    EventBridgePutEventsSize,
)
from canaryfleet_local.standins.key_pairs import key_pairs_made_when_used, one_sns_signing_key
from canaryfleet_local.standins.kms import key_policy_from_template_is_a_document
from canaryfleet_local.standins.lambda_ import LAYER_PACKAGE, LambdaInvokeInProcess
from canaryfleet_local.standins.lambda_async import AsyncInvocationQueue
from canaryfleet_local.standins.s3 import (
    CloudFormationBucketPolicy,
    S3EventBridgeNotifications,
    S3UploadEncryptionDenies,
    S3UserMetadataLimit,
)
from canaryfleet_local.standins.secretsmanager import (
    CloudFormationSecretsManagerRotationSchedule,
    CloudFormationSecretsManagerSecret,
    SecretsManagerPutSecretValueIdempotency,
)
from canaryfleet_local.standins.sqs_sns import (
    CloudFormationSnsSubscription,
    CloudFormationSqsQueuePolicy,
    LambdaSqsEventSourceMappingRules,
    SnsEmailSubscriptions,
    SnsFilterPolicyQuota,
    SnsPublishRules,
    SqsEventSourceMappingBatches,
    publish_reaches_every_subscription,
)
from canaryfleet_local.standins.ssm import (
    CloudFormationSsmAssociation,
    SsmParameterValueLimits,
    SsmRunCommandOnManagedInstances,
)
from canaryfleet_local.standins.stepfunctions import (
    StepFunctionsExecutionStatusEvents,
    StepFunctionsRequestLimits,
    one_client_per_service,
    runtime_errors_end_the_execution,
    send_task_failure_with_cause,
    start_execution_names_unnamed_executions,
    stop_execution_aborts_at_once,
)
from canaryfleet_local.state_size import costs_independent_of_state_size
from canaryfleet_local.template import REPO_ROOT

# The resource types moto's CloudFormation lacks. moto finds them among CloudFormationModel's
# subclasses, so each must be imported before register_cloudformation_resource_types runs.
CLOUDFORMATION_RESOURCE_TYPES = (
    CloudFormationBucketPolicy,
    CloudFormationSnsSubscription,
    CloudFormationSqsQueuePolicy,
    CloudFormationCodeDeployApplication,
    CloudFormationCodeDeployDeploymentGroup,
    CloudFormationCloudWatchAlarm,
    CloudFormationSsmAssociation,
    CloudFormationSecretsManagerSecret,
    CloudFormationSecretsManagerRotationSchedule,
    CloudFormationHttpApi,
    CloudFormationHttpApiStage,
)


class PlatformStandIns:
    """The stand-ins one local cloud runs the platform with, made together and installed in order."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self.runtime = LambdaInvokeInProcess(account_id, region)
        self.queue = AsyncInvocationQueue(self.runtime)
        self.runtime.queue = self.queue
        self.event_targets = EventBridgeLambdaAndStateMachineTargets(self.queue, region)
        self.s3_events = S3EventBridgeNotifications()
        self.codedeploy = CodeDeployLifecycle()
        self.sns_rules = SnsPublishRules()
        self.sns_email = SnsEmailSubscriptions(account_id, region)
        self.sns_filter_policies = SnsFilterPolicyQuota(account_id, region)
        self.step_functions_limits = StepFunctionsRequestLimits()
        self.step_functions_events = StepFunctionsExecutionStatusEvents()
        self.metric_math_alarms = CloudWatchMetricMathAlarms(account_id, region)
        self.alarm_actions = CloudWatchAlarmSnsActions(account_id, region)
        self.dynamodb = DynamoDBConcurrentRequests(account_id, region)

    @contextlib.contextmanager
    def installed(self) -> Iterator[FleetOperations]:
        """Install every stand-in (moto must be mocked already); yields the drains' stand-ins."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.runtime.installed())
            stack.enter_context(self.event_targets.installed())
            stack.enter_context(self.s3_events.installed())
            stack.enter_context(self.codedeploy.installed())
            stack.enter_context(send_task_failure_with_cause())
            stack.enter_context(stop_execution_aborts_at_once())
            stack.enter_context(runtime_errors_end_the_execution())
            stack.enter_context(start_execution_names_unnamed_executions())
            stack.enter_context(self.step_functions_events.installed())
            # AWS's request limits, checked before moto (and the stand-ins above) see a request.
            stack.enter_context(self.step_functions_limits.installed())
            stack.enter_context(self.sns_rules.installed())
            stack.enter_context(self.sns_email.installed())
            stack.enter_context(self.sns_filter_policies.installed())
            stack.enter_context(publish_reaches_every_subscription())
            stack.enter_context(SsmParameterValueLimits().installed())
            stack.enter_context(S3UserMetadataLimit().installed())
            stack.enter_context(S3UploadEncryptionDenies().installed())
            stack.enter_context(SecretsManagerPutSecretValueIdempotency().installed())
            stack.enter_context(EventBridgePutEventsSize().installed())
            stack.enter_context(LambdaSqsEventSourceMappingRules().installed())
            stack.enter_context(DynamoDBNumberRange().installed())
            stack.enter_context(AutoScalingDesiredCapacityRange().installed())
            stack.enter_context(listener_rule_condition_quotas())
            stack.enter_context(load_balancer_target_group_quota())
            stack.enter_context(self.metric_math_alarms.installed())
            stack.enter_context(self.alarm_actions.installed())
            stack.enter_context(key_policy_from_template_is_a_document())
            stack.enter_context(self.dynamodb.installed())
            stack.enter_context(parsed_once())
            stack.enter_context(member_names_once())
            stack.enter_context(costs_independent_of_state_size())
            stack.enter_context(one_client_per_service())
            stack.enter_context(get_metric_data_reads_the_queried_metrics())
            stack.enter_context(one_botocore_data_loader())
            stack.enter_context(event_names_aliased_once())
            stack.enter_context(key_pairs_made_when_used())
            stack.enter_context(one_sns_signing_key())
            stack.enter_context(compiled_once(_handler_and_layer_sources()))
            operations = stack.enter_context(
                fleet_operations(self.runtime, self.queue, self.account_id, self.region)
            )
            register_cloudformation_resource_types()
            yield operations


def _handler_and_layer_sources() -> list[Path]:
    """The folders of the code the functions import again in each execution environment."""
    spec = importlib.util.find_spec(LAYER_PACKAGE)
    layer = [Path(folder) for folder in (spec.submodule_search_locations or [])] if spec else []
    return [*layer, REPO_ROOT / "functions"]


@contextlib.contextmanager
def fleet_stack_stand_ins() -> Iterator[None]:
    """The stand-ins a fleet stack needs while moto's CloudFormation creates it."""
    register_cloudformation_resource_types()
    with (
        CloudFormationNoValueInLists().installed(),
        CloudFormationTargetGroupProperties().installed(),
        CloudFormationListenerRuleTags().installed(),
        CloudFormationAutoScalingGroupProperties().installed(),
        auto_scaling_group_size_bounds(),
        listener_rule_condition_quotas(),
        load_balancer_target_group_quota(),
    ):
        yield


@dataclass
class FleetOperations:
    """The stand-ins drains need, installed together for the life of a local cloud."""

    sqs: SqsEventSourceMappingBatches
    run_command: SsmRunCommandOnManagedInstances
    lifecycle: AutoScalingTerminationLifecycle
    spot: Ec2SpotInterruptions
    launches: AutoScalingLaunches


@contextlib.contextmanager
def fleet_operations(
    runtime: LambdaInvokeInProcess, queue: AsyncInvocationQueue, account_id: str, region: str
) -> Iterator[FleetOperations]:
    lifecycle = AutoScalingTerminationLifecycle(account_id, region)
    operations = FleetOperations(
        sqs=SqsEventSourceMappingBatches(runtime, queue, region),
        run_command=SsmRunCommandOnManagedInstances(queue, account_id, region),
        lifecycle=lifecycle,
        spot=Ec2SpotInterruptions(lifecycle, account_id, region),
        launches=AutoScalingLaunches(),
    )
    with (
        operations.sqs.installed(),
        operations.run_command.installed(),
        # Before the lifecycle stand-in: its scale-out path calls this one's.
        operations.launches.installed(),
        operations.lifecycle.installed(),
        operations.spot.installed(),
    ):
        yield operations
