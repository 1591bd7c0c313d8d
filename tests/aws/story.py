"""The acceptance story, once the stacks exist: publish, watch, approve through the link, scale in,
check the manifest.

Everything it touches comes from :class:`StoryConfig` (region, optional endpoint, stack names,
application), and it works through canaryfleet's own code: the `canaryfleet` CLI's publish,
status, history and drains commands, and the platform stack's outputs as the CLI's `Platform`
reads them. It creates nothing but its own SQS queue for the approval email (deleted on exit),
so it runs the same against a real account or a local cloud that stays up.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import boto3
from canaryfleet.adapters.clients import reset_clients
from canaryfleet.models.drain import DrainManifest
from typer.testing import CliRunner

from canaryfleet_cli.main import app as cli_app
from canaryfleet_cli.platform import Platform
from tests.aws.checks import AcceptanceCheckFailed, approval_link, decision_form, manifest_problems
from tests.aws.config import StoryConfig

T = TypeVar("T")
OUTCOMES = ("released", "rolled_back", "rejected")
ENDED_DRAINS = ("drained", "logs_lost")


@contextmanager
def aws_environment(config: StoryConfig) -> Iterator[None]:
    """Region, endpoint and profile for every boto3 client made inside, the CLI's included; restored after.

    boto3 reads ``AWS_ENDPOINT_URL`` for every service, which is how a local cloud's endpoint
    reaches code (the CLI, the runtime's adapters) that never takes one as an argument.
    """
    wanted = {
        "AWS_DEFAULT_REGION": config.region,
        "AWS_ENDPOINT_URL": config.endpoint_url,
        "AWS_PROFILE": config.profile,
    }
    before = {name: os.environ.get(name) for name in wanted}
    try:
        for name, value in wanted.items():
            if value is not None:
                os.environ[name] = value
        reset_clients()
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_clients()


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """One HTTP exchange: (status, text); a 4xx or 5xx is an answer here, not an exception."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", "replace")


class Traffic:
    """Requests to the application's listener rule, so that the load balancer has metrics to alarm on."""

    def __init__(self, base_url: str, host: str, per_second: float) -> None:
        self._url = base_url.rstrip("/") + "/traffic"
        self._host = host
        self._pause = 1.0 / per_second
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="acceptance-traffic", daemon=True)
        self.statuses: Counter[int] = Counter()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, _ = http("GET", self._url, headers={"Host": self._host})
            except (OSError, urllib.error.URLError):
                status = 0  # no answer at all: counted, never fatal to the story
            self.statuses[status] += 1
            self._stop.wait(self._pause)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


class TopicInbox:
    """An SQS queue subscribed to a topic, as an email address or a pager would be.

    For the approval email topic it is filtered on one approver as their email is, and reads what
    the approver's mailbox would: the same message, with the same signed link. For the platform's
    alarm topic (no approver) it reads what on-call would get.
    """

    def __init__(self, sqs: Any, sns: Any, topic_arn: str, approver: str | None) -> None:
        self._sqs, self._sns, self._topic_arn = sqs, sns, topic_arn
        self._approver = approver.lower() if approver is not None else None
        self._queue_url: str | None = None
        self._subscription: str | None = None

    def __enter__(self) -> TopicInbox:
        name = f"canaryfleet-acceptance-inbox-{uuid4().hex[:12]}"
        self._queue_url = self._sqs.create_queue(QueueName=name, Attributes={"SqsManagedSseEnabled": "true"})[
            "QueueUrl"
        ]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self._topic_arn}},
                }
            ],
        }
        self._sqs.set_queue_attributes(QueueUrl=self._queue_url, Attributes={"Policy": json.dumps(policy)})
        attributes = {"RawMessageDelivery": "true"}
        if self._approver is not None:
            attributes["FilterPolicy"] = json.dumps({"approver": [self._approver]})
            attributes["FilterPolicyScope"] = "MessageAttributes"
        self._subscription = self._sns.subscribe(
            TopicArn=self._topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._subscription:
            self._sns.unsubscribe(SubscriptionArn=self._subscription)
        if self._queue_url:
            self._sqs.delete_queue(QueueUrl=self._queue_url)

    def next_message(self, mentioning: str, deadline: float) -> str:
        """The first message whose text mentions ``mentioning`` (others are read and dropped)."""
        while time.monotonic() < deadline:
            wait = int(max(1, min(20, deadline - time.monotonic())))
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
            )
            for message in response.get("Messages", []):
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
                if mentioning in message["Body"]:
                    return str(message["Body"])
        raise AcceptanceCheckFailed(f"no message mentioning {mentioning!r} arrived in time")


class Story:
    """The platform as an operator, CI and an approver meet it, through canaryfleet's own commands."""

    def __init__(self, config: StoryConfig, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self.platform = Platform.connect(config.platform_stack, config.region, config.profile)
        self._runner = CliRunner()

    # --- plumbing -----------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        session = boto3.Session(profile_name=self.config.profile, region_name=self.config.region)
        return session.client(service, endpoint_url=self.config.endpoint_url)

    def cli(self, *arguments: str) -> Any:
        """`canaryfleet <arguments> --stack ... --region ... --json`, its JSON answer parsed."""
        where = ["--stack", self.config.platform_stack, "--region", self.config.region]
        if self.config.profile:
            where += ["--profile", self.config.profile]
        result = self._runner.invoke(cli_app, [*arguments, *where, "--json"])
        if result.exit_code != 0:
            raise AcceptanceCheckFailed(
                f"canaryfleet {' '.join(arguments)} exited {result.exit_code}: {result.output.strip()}"
            )
        return json.loads(result.stdout)

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float) -> T:
        """``probe()`` until it answers (not None), at most ``timeout`` seconds: a bounded poll."""
        deadline = time.monotonic() + timeout
        while True:
            found = probe()
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise AcceptanceCheckFailed(f"{what}: not after {timeout:.0f} s")
            time.sleep(self.config.poll_seconds)

    # --- the story ----------------------------------------------------------------------------
    def traffic(self) -> Traffic | None:
        if self.config.traffic_url is None:
            return None
        return Traffic(self.config.traffic_url, self.config.host_header, self.config.requests_per_second)

    def approval_inbox(self) -> TopicInbox:
        return TopicInbox(
            self.client("sqs"),
            self.client("sns"),
            self.platform.output("ApprovalEmailTopicArn"),
            self.config.approver_email,
        )

    def platform_alarm_notice(self, logical_id: str) -> dict[str, Any]:
        """Put one of the platform's own alarms in ALARM (SetAlarmState) and read what on-call gets.

        CloudWatch publishes the state change to PlatformAlarmTopic, which is encrypted with the
        stack's own key: the notice arrives only if the key's policy lets CloudWatch use it. The
        alarm is set back to OK at the end (its next evaluation would do it too).
        """
        alarm = self.client("cloudformation").describe_stack_resource(
            StackName=self.config.platform_stack, LogicalResourceId=logical_id
        )["StackResourceDetail"]["PhysicalResourceId"]
        cloudwatch = self.client("cloudwatch")
        topic = self.platform.output("PlatformAlarmTopicArn")
        with TopicInbox(self.client("sqs"), self.client("sns"), topic, approver=None) as on_call:
            self.say(f"set {alarm} to ALARM")
            cloudwatch.set_alarm_state(
                AlarmName=alarm,
                StateValue="ALARM",
                StateReason="canaryfleet acceptance suite: is on-call told?",
            )
            try:
                body = on_call.next_message(alarm, time.monotonic() + self.config.rollout_timeout_seconds)
            finally:
                cloudwatch.set_alarm_state(
                    AlarmName=alarm, StateValue="OK", StateReason="canaryfleet acceptance suite: done"
                )
        notice: dict[str, Any] = json.loads(body)
        return notice

    def publish(self, version: str, folder: Path) -> dict[str, Any]:
        self.say(f"publish {self.config.application} {version}")
        published: dict[str, Any] = self.cli("publish", self.config.application, version, str(folder))
        return published

    def outcome_of(self, version: str) -> dict[str, Any]:
        """The version's rollout once it has ended (released, rolled back or rejected)."""

        def ended() -> dict[str, Any] | None:
            rows = self.cli("history", self.config.application)
            return next((r for r in rows if r["version"] == version and r["outcome"] in OUTCOMES), None)

        row = self.wait_for(f"{version} ends", ended, self.config.rollout_timeout_seconds)
        self.say(f"{version}: {row['outcome']} {row.get('reason') or ''}".rstrip())
        return row

    def approve_by_email(self, inbox: TopicInbox, version: str, comment: str) -> str:
        """Open the emailed link, then press Approve as the page's form does; the result page's text."""
        deadline = time.monotonic() + self.config.rollout_timeout_seconds
        body = inbox.next_message(f"{self.config.application} {version}", deadline)
        link = approval_link(body, self.platform.output("ApprovalApiEndpoint"))
        status, page = http("GET", link)
        if status != 200:
            raise AcceptanceCheckFailed(f"the approval page answered {status} to the emailed link")
        form = decision_form(page, link)
        self.say(f"approve {version} through {form.action.split('?')[0]}")
        status, result = http(
            "POST",
            form.action,
            form.body("approve", comment),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status != 200:
            raise AcceptanceCheckFailed(f"the approval page answered {status} to the decision")
        return result

    def stop_when_awaiting_approval(self, inbox: TopicInbox, version: str) -> str:
        """Once ``version``'s approval email came, stop its rollout's execution as the Step Functions
        console's Stop button does (StopExecution, which no Catch of the state machine sees); the
        stopped execution's ARN."""
        deadline = time.monotonic() + self.config.rollout_timeout_seconds
        inbox.next_message(f"{self.config.application} {version}", deadline)
        row = self.cli("status", self.config.application)
        if row.get("version") != version:
            raise AcceptanceCheckFailed(f"{version} is not the running rollout: {row}")
        machine = self.platform.output("RolloutStateMachineArn")
        execution = f"{machine.replace(':stateMachine:', ':execution:', 1)}:{row['rollout_id']}"
        self.say(f"stop the execution of {version} ({execution})")
        self.client("stepfunctions").stop_execution(
            executionArn=execution, error="AcceptanceSuite", cause="stopped from outside canaryfleet"
        )
        return execution

    def scale_in_live(self) -> str:
        """Take one instance out of the live group (desired capacity down by one); its id."""
        group = self.platform.application(self.config.application).live.auto_scaling_group
        autoscaling = self.client("autoscaling")
        described = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
            "AutoScalingGroups"
        ]
        if not described:
            raise AcceptanceCheckFailed(f"the live group {group} does not exist")
        in_service = sorted(
            i["InstanceId"] for i in described[0]["Instances"] if i["LifecycleState"] == "InService"
        )
        if not in_service:
            raise AcceptanceCheckFailed(f"the live group {group} has no instance in service")
        desired = int(described[0]["DesiredCapacity"])
        if int(described[0]["MinSize"]) > desired - 1:
            # Auto Scaling refuses to go below the minimum: lower it first, as an operator would.
            autoscaling.update_auto_scaling_group(AutoScalingGroupName=group, MinSize=desired - 1)
        victim = str(in_service[0])
        self.say(f"scale in {group}: {victim}")
        autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=victim, ShouldDecrementDesiredCapacity=True
        )
        return victim

    def drain_of(self, instance_id: str) -> dict[str, Any]:
        """The instance's drain record once it has ended, as `canaryfleet drains list` shows it."""

        def ended() -> dict[str, Any] | None:
            rows = self.cli("drains", "list", self.config.application)
            return next(
                (r for r in rows if r["instance_id"] == instance_id and r.get("outcome") in ENDED_DRAINS),
                None,
            )

        drain = self.wait_for(f"the drain of {instance_id}", ended, self.config.drain_timeout_seconds)
        self.say(f"drain of {instance_id}: {drain['outcome']} ({drain.get('file_count')} files)")
        return drain

    def manifest_problems(self, drain: dict[str, Any]) -> list[str]:
        """The drain's manifest read back from the log bucket and checked file by file."""
        key = drain.get("manifest_key")
        if not key:
            return ["the drain record names no manifest"]
        s3 = self.client("s3")
        bucket = self.platform.output("LogBucketName")
        manifest = DrainManifest.model_validate_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        prefix = key.rsplit("/", 1)[0] + "/"
        stored: dict[str, bytes] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix) :]
                if name != "manifest.json":
                    stored[name] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return manifest_problems(
            manifest, stored, instance_id=str(drain["instance_id"]), application=self.config.application
        )
