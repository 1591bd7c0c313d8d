"""A drain command's real status, read when its check comes due (a delayed drain queue message).

A drain ends on Run Command's "EC2 Command Invocation Status-change Notification", which AWS
sends on a best-effort basis ("Monitoring Systems Manager events with Amazon EventBridge",
Systems Manager User Guide: Run Command's events "are emitted on a best effort basis"). Without
it the drain would stay running, unseen, until the instance's termination hook timed out and
Auto Scaling let the instance go, its logs never checked and nobody told. So every command
sent is checked once its check is due (``Drains.check_seconds`` later): a drain its event
already ended, or a retry took over (with a check of its own), is left alone; one whose
command has ended on the instance ends as the event would have ended it (the manifest
verified, a retry, or the logs lost, and the hook completed); one whose command still runs is
checked again, at most ``MAX_CHECKS`` times, then ended with its logs lost.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from canaryfleet.logic.drain import Drains, check_later, finish_drain
from canaryfleet.logic.drain_complete import complete_drain
from canaryfleet.models.drain import (
    FINAL_INVOCATION_STATUSES,
    MAX_CHECKS,
    CommandInvocationDetail,
    DrainCheck,
)
from canaryfleet.observability import logger, metrics, tracer


@tracer.capture_method
def check_command(check: DrainCheck, drains: Drains) -> dict[str, str]:
    """Each instance of the check, and what was done: see the module docstring."""
    statuses = drains.statuses
    if statuses is None:
        raise ValueError("a drain check needs Run Command's statuses")
    now = drains.clock.now()
    done: dict[str, str] = {}
    running: dict[str, str] = {}
    for instance_id in check.instance_ids:
        record = drains.store.find(instance_id)
        if record is None or record.status.final or record.current_command != check.command_id:
            done[instance_id] = "ended"  # by its event, or a retry runs another command
            continue
        status = statuses.status(check.command_id, instance_id)
        if status not in FINAL_INVOCATION_STATUSES:
            running[instance_id] = status or "no invocation"
            continue
        metrics.add_metric(name="DrainEventsLost", unit=MetricUnit.Count, value=1)
        logger.warning(
            "drain command ended without its status event",
            extra={"instance_id": instance_id, "command_id": check.command_id, "status": status},
        )
        detail = CommandInvocationDetail.model_validate(
            {
                "command-id": check.command_id,
                "document-name": drains.document,
                "instance-id": instance_id,
                "requested-date-time": (record.dispatched_at or now).isoformat(),
                "status": status,
            }
        )
        done[instance_id] = complete_drain(detail, drains).status
    if not running:
        return done
    if check.checks < MAX_CHECKS:
        again = DrainCheck(command_id=check.command_id, instance_ids=tuple(running), checks=check.checks + 1)
        if check_later(drains, again):
            return done | dict.fromkeys(running, "checked again later")
    for instance_id, status in running.items():
        record = drains.store.find(instance_id)
        if record is None or record.status.final:
            continue
        reason = (
            f"Run Command reported no end of the drain document after {check.checks} check(s), "
            f"{check.checks * drains.check_seconds} s after it was sent (still {status})"
        )
        finish_drain(drains, record, now, reason=reason)
        done[instance_id] = "logs_lost"
    return done
