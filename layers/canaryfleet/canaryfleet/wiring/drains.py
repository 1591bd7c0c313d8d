"""The drain functions' services, built from their settings on AWS.

One factory a function: ``drain_request_service`` (an instance is leaving),
``drain_dispatch_service`` (a batch of the drain queue) and ``drain_complete_service`` (Run
Command says the document ended). The logic they serve depends only on the ports in
``canaryfleet.ports.drains``; this is the one place that picks the AWS adapters.
"""

from __future__ import annotations

from canaryfleet.adapters.drain_store import DynamoDrainStore
from canaryfleet.adapters.drains import (
    AutoScalingLifecycleHooks,
    Ec2InstanceDirectory,
    ElbTargetGroups,
    S3LogObjects,
    SqsDrainQueue,
    SsmCommandStatuses,
    SsmRunCommand,
)
from canaryfleet.adapters.notifier import SnsNotifier
from canaryfleet.adapters.registry import SsmRegistry
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.logic.drain import Drains
from canaryfleet.logic.drain_request import DrainRequests
from canaryfleet.ports.clock import SystemClock
from canaryfleet.settings import DrainDispatchSettings, DrainQueueDispatchSettings, DrainRequestSettings


def drain_request_service(settings: DrainRequestSettings) -> DrainRequests:
    """What the request function touches: tags, registry, drain records, the lock, groups, queue, hooks."""
    return DrainRequests(
        directory=Ec2InstanceDirectory(),
        registry=SsmRegistry(),
        store=DynamoDrainStore(settings.state_table_name),
        rollouts=DynamoRolloutStore(settings.state_table_name),
        targets=ElbTargetGroups(),
        queue=SqsDrainQueue(settings.drain_queue_url),
        hooks=AutoScalingLifecycleHooks(),
        clock=SystemClock(),
    )


def _drains(settings: DrainDispatchSettings) -> Drains:
    return Drains(
        store=DynamoDrainStore(settings.state_table_name),
        hooks=AutoScalingLifecycleHooks(),
        run_command=SsmRunCommand(),
        logs=S3LogObjects(),
        notifier=SnsNotifier(settings.notification_topic_arn),
        document=settings.drain_document_name,
        log_bucket=settings.log_bucket_name,
        clock=SystemClock(),
        checks=SqsDrainQueue(settings.drain_queue_url),
        statuses=SsmCommandStatuses(),
        check_seconds=settings.drain_check_seconds,
    )


def drain_dispatch_service(settings: DrainQueueDispatchSettings) -> tuple[Drains, SqsDrainQueue]:
    """What the dispatcher touches: drain records, Run Command, (for an unreachable instance)
    its hook and the alert topic, its queue (a failed order's visibility, each command's check),
    and, when a check comes due, the command's status and what the completion touches."""
    return _drains(settings), SqsDrainQueue(settings.drain_queue_url)


def drain_complete_service(settings: DrainDispatchSettings) -> Drains:
    """What the completion touches: drain records, the log bucket, hooks, Run Command (a retry,
    and its check on the drain queue), alerts."""
    return _drains(settings)
