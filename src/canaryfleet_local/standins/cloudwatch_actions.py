"""CloudWatch: an alarm's SNS actions, run when its state changes, and refused by a topic's key."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import botocore.loaders
from moto.cloudwatch.models import Alarm, CloudWatchBackend
from moto.core.utils import utcnow
from moto.kms.models import kms_backends
from moto.sns.models import sns_backends

logger = logging.getLogger(__name__)

#: What moto's own PutMetricAlarm and the metric-math stand-in give a new alarm: its first state
#: is where it starts, not a change of state, so it runs no action.
_CREATION_REASON = "Unchecked: Initial alarm creation"
_CLOUDWATCH = "cloudwatch.amazonaws.com"
#: The calls SNS makes with the topic's key for a publisher that is an AWS service (SNS
#: Developer Guide, "Key management": the key policy must allow the service
#: ``kms:GenerateDataKey*`` and ``kms:Decrypt``).
_NEEDED = ("kms:GenerateDataKey", "kms:Decrypt")


@dataclass(frozen=True)
class FailedAlarmAction:
    """An action CloudWatch could not run; on AWS the alarm's history says "Failed to execute action"."""

    alarm_name: str
    action: str
    reason: str


@functools.cache
def _region_descriptions() -> dict[str, str]:
    """Each region's name as botocore's endpoint data gives it ("US East (N. Virginia)")."""
    endpoints = botocore.loaders.Loader().load_data("endpoints")
    return {
        region: str(about.get("description", region))
        for partition in endpoints["partitions"]
        for region, about in partition["regions"].items()
    }


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _names_cloudwatch(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal")
    return isinstance(principal, dict) and _CLOUDWATCH in _as_list(principal.get("Service"))


def _covers(statement: dict[str, Any], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(statement.get("Action")))


def cloudwatch_may_use_key(policy: dict[str, Any]) -> bool:
    """Whether a key policy lets CloudWatch's service principal publish to a topic encrypted with it.

    Allowed when statements naming ``cloudwatch.amazonaws.com`` allow both calls SNS makes with
    the key (``kms:GenerateDataKey*`` and ``kms:Decrypt``) and none denies them. A statement with a
    ``Condition`` is not counted as a grant: which condition keys a service's request to KMS
    carries is not documented here, and guessing yes would hide the silent failure this stands in
    for.
    """
    statements = [s for s in _as_list_of_dicts(policy.get("Statement")) if _names_cloudwatch(s)]
    if any(s.get("Effect") == "Deny" and any(_covers(s, a) for a in _NEEDED) for s in statements):
        return False
    allowing = [s for s in statements if s.get("Effect") == "Allow" and "Condition" not in s]
    return all(any(_covers(s, a) for s in allowing) for a in _NEEDED)


def _as_list_of_dicts(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    return [v for v in value or [] if isinstance(v, dict)]


class CloudWatchAlarmSnsActions:
    """Stands in for CloudWatch publishing to an alarm's SNS topics when the alarm changes state.

    AWS: "Alarms invoke actions for sustained state changes only. CloudWatch alarms don't invoke
    actions simply because they are in a particular state" (CloudWatch User Guide, "Using Amazon
    CloudWatch alarms"): when an alarm's state changes, the actions of the new state
    (``AlarmActions``, ``OKActions``, ``InsufficientDataActions``) run if ``ActionsEnabled``; an
    SNS action publishes the alarm's notification to the topic. moto runs no alarm action,
    whether the state is set by SetAlarmState or by an evaluation.

    Refused as AWS refuses it: a topic encrypted with a KMS key whose policy does not let
    CloudWatch use the key. The SNS Developer Guide's "Key management" ("Enable compatibility
    between event sources from AWS services and encrypted topics") asks for a customer managed
    key whose policy allows the service ``kms:GenerateDataKey*`` and ``kms:Decrypt``; the AWS
    managed key ``alias/aws/sns`` does not allow CloudWatch and its policy cannot be edited, so
    the alarm cannot run the action (AWS re:Post Knowledge Center,
    https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns). The alarm's history then
    says "Failed to execute action" with the error
    (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger). Such an
    action publishes nothing and is recorded in ``failed`` (moto keeps no alarm history to write
    it to). The topic's own access policy is not played (CloudFormation's topics keep the default
    policy, which lets the account's alarms publish).

    The notification is the JSON real alarm notifications carry (AlarmName, AlarmDescription,
    AWSAccountId, NewStateValue, NewStateReason, StateChangeTime, Region, AlarmArn,
    OldStateValue, the three action lists) and the subject ``ALARM: "<name>" in <region>``; the
    ``Trigger`` block is not played (nothing in canaryfleet reads it).
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self.failed: list[FailedAlarmAction] = []
        self._lock = threading.Lock()

    # -- the rule ------------------------------------------------------------------------
    def refusal(self, topic_arn: str) -> str | None:
        """Why CloudWatch cannot publish to ``topic_arn``, or None when it can."""
        topic = sns_backends[self.account_id][self.region].topics.get(topic_arn)
        if topic is None:
            return f"topic {topic_arn} does not exist"
        key_id = str(getattr(topic, "kms_master_key_id", "") or "")
        return self._key_refusal(key_id) if key_id else None

    def _key_refusal(self, key_id: str) -> str | None:
        kms = kms_backends[self.account_id][self.region]
        managed = "an AWS managed key does not let CloudWatch use it (its policy cannot be changed)"
        # An AWS managed key's alias is alias/aws/<service> (KMS Developer Guide, "AWS managed
        # keys"); moto does not know alias/aws/sns, so it is told by its name.
        if kms.get_alias_name(key_id).startswith("alias/aws/"):
            return managed
        try:
            key = kms.describe_key(key_id)
        except Exception:  # moto answers an unknown key with KeyError or AttributeError
            return f"the topic's key {key_id} does not exist"
        if key.key_manager == "AWS":
            return managed
        policy = key.policy if isinstance(key.policy, dict) else json.loads(key.policy or "{}")
        if not cloudwatch_may_use_key(policy):
            return "the topic's key policy does not let cloudwatch.amazonaws.com use the key"
        return None

    def notification(self, alarm: Alarm, old_state: str) -> tuple[str, str]:
        """The subject and message of ``alarm``'s notification for its new state."""
        region = _region_descriptions().get(self.region, self.region)
        changed = alarm.state_updated_timestamp or utcnow()
        millis = f"{changed.microsecond // 1000:03d}"
        message = {
            "AlarmName": alarm.name,
            "AlarmDescription": alarm.description,
            "AWSAccountId": self.account_id,
            "NewStateValue": alarm.state_value,
            "NewStateReason": alarm.state_reason,
            "StateChangeTime": changed.strftime("%Y-%m-%dT%H:%M:%S.") + millis + "+0000",
            "Region": region,
            "AlarmArn": alarm.alarm_arn,
            "OldStateValue": old_state,
            "OKActions": list(alarm.ok_actions or []),
            "AlarmActions": list(alarm.alarm_actions or []),
            "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
        }
        return f'{alarm.state_value}: "{alarm.name}" in {region}', json.dumps(message)

    def run_actions(self, alarm: Alarm, old_state: str) -> None:
        """Run the SNS actions of ``alarm``'s new state (other kinds of action are not played)."""
        if not alarm.actions_enabled:
            return
        actions = {
            "ALARM": alarm.alarm_actions,
            "OK": alarm.ok_actions,
            "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
        }.get(alarm.state_value) or []
        for action in actions:
            if not str(action).startswith("arn:aws:sns:"):
                continue
            reason = self.refusal(action)
            if reason is not None:
                with self._lock:
                    self.failed.append(FailedAlarmAction(alarm.name, action, reason))
                logger.warning("alarm %s: failed to execute action %s: %s", alarm.name, action, reason)
                continue
            subject, message = self.notification(alarm, old_state)
            sns_backends[self.account_id][self.region].publish(message, action, subject=subject)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = CloudWatchBackend.set_alarm_state
        stand_in = self

        def set_alarm_state(
            backend: CloudWatchBackend, alarm_name: str, reason: str, reason_data: str, state_value: str
        ) -> None:
            alarm = backend.alarms.get(alarm_name)
            old_state = alarm.state_value if alarm is not None else None
            original(backend, alarm_name, reason, reason_data, state_value)
            ours = backend.account_id == stand_in.account_id and backend.region_name == stand_in.region
            if not ours or alarm is None or reason == _CREATION_REASON or old_state == state_value:
                return
            stand_in.run_actions(alarm, str(old_state))

        with mock.patch.object(CloudWatchBackend, "set_alarm_state", set_alarm_state):
            yield
