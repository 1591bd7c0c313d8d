"""The approval gate on one local cloud, for the approval tests: page, Slack, emails, waits.

A rollout's approval wait is the rollout state machine's own "Wait for approval" state,
run alone: RequestApprovalFunction gets a real task token, and decisions end a real wait.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from canaryfleet.adapters.approval_store import DynamoApprovalStore
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.app_config import AppConfig, Approvers, FleetGroup
from canaryfleet.models.approval import Approval
from canaryfleet.models.artifact import ArtifactRef
from canaryfleet.models.rollout import RolloutInput, Verdict

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.http_api import LocalHttpApi
from canaryfleet_local.mailbox import LocalMailbox
from canaryfleet_local.slack import LocalSlack, SlackMessage
from tests.helpers import STATE_MACHINES
from tests.integration.helpers import eventually

ALICE, BOB, MALLORY = "alice@example.com", "bob@example.com", "mallory@example.com"
ALICE_SLACK, CAROL_SLACK, MALLORY_SLACK = "U0ALICE", "U0CAROL", "U0MALLORY"
CHANNEL = "C0DEPLOYS"
# Carol is an approver through her email address only; Slack tells it to the app.
SLACK_USERS = {ALICE_SLACK: ALICE, CAROL_SLACK: "carol@example.com", MALLORY_SLACK: MALLORY}
APPROVERS = Approvers(
    emails=(ALICE, BOB, "carol@example.com"), slack_user_ids=(ALICE_SLACK,), slack_channel=CHANNEL
)
VERDICT = {
    "result": "pass",
    "reasons": ["canary error rate 0.10% and latency within limits of live's over the bake"],
    "canary_requests": 1234.0,
    "canary_errors": 1.0,
    "canary_error_rate": 0.00081,
    "canary_latency": 0.081,
    "live_requests": 11020.0,
    "live_errors": 12.0,
    "live_error_rate": 0.00109,
    "live_latency": 0.079,
    "window_start": "2026-11-26T09:00:00+00:00",
    "window_end": "2026-11-26T09:10:00+00:00",
}


@dataclass
class Gate:
    cloud: LocalCloud
    api: LocalHttpApi
    slack: LocalSlack
    inbox: LocalMailbox
    machine_arn: str
    rollouts: DynamoRolloutStore = field(init=False)
    approvals: DynamoApprovalStore = field(init=False)

    def __post_init__(self) -> None:
        table = self.cloud.output("StateTableName")
        self.rollouts = DynamoRolloutStore(table)
        self.approvals = DynamoApprovalStore(table)


def approval_wait_definition(cloud: LocalCloud) -> str:
    """The rollout's "Wait for approval" state as a state machine of its own."""
    definition = json.loads((STATE_MACHINES / "rollout.asl.json").read_text())
    processor = definition["States"]["Run canary steps"]
    states = (processor.get("ItemProcessor") or processor["Iterator"])["States"]
    state = dict(states["Wait for approval"])
    for key in ("Catch", "Next"):
        state.pop(key, None)
    state["End"] = True
    text = json.dumps({"StartAt": "Wait for approval", "States": {"Wait for approval": state}})
    function = cloud.client("lambda").get_function(FunctionName=cloud.resource("RequestApprovalFunction"))
    return text.replace("${RequestApprovalFunctionArn}", function["Configuration"]["FunctionArn"])


@contextmanager
def approval_gate(log_level: str = "WARNING", slack_for_approvals: bool = True) -> Iterator[Gate]:
    """A local cloud with its HTTP API and Slack on localhost, Slack configured, emails collected.
    ``slack_for_approvals=False``: the Slack secret has a bot token but no signing secret, as a
    platform set up for notices only."""
    with ExitStack() as stack:
        api = stack.enter_context(LocalHttpApi())
        slack = stack.enter_context(LocalSlack(users=SLACK_USERS))
        cloud = stack.enter_context(LocalCloud(parameters={"LogLevel": log_level, **api.parameters}))
        api.attach(cloud)
        slack.configure(cloud)
        if not slack_for_approvals:
            secret = cloud.output("SlackAppSecretArn")
            value = json.loads(
                cloud.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]
            )
            value.pop("signing_secret")
            cloud.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=json.dumps(value))
        machine = cloud.client("stepfunctions").create_state_machine(
            name="approval-wait",
            definition=approval_wait_definition(cloud),
            roleArn="arn:aws:iam::123456789012:role/approval-wait",
        )
        yield Gate(cloud, api, slack, LocalMailbox(cloud), machine["stateMachineArn"])


@dataclass
class Waiting:
    """One rollout waiting for approval."""

    application: str
    rollout_id: str
    approval_id: str
    execution_arn: str
    links: dict[str, str]  # approver -> their link
    message: SlackMessage | None

    def link(self, approver: str = ALICE) -> str:
        return self.links[approver]


def app_config(application: str, approvers: Approvers = APPROVERS) -> AppConfig:
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
    return AppConfig(
        application=application,
        codedeploy_application=application,
        listener_rule_arn=f"{arn}:listener-rule/app/alb/1/2/3",
        canary=FleetGroup(
            deployment_group=f"{application}-canary",
            target_group_arn=f"{arn}:targetgroup/{application}-canary/1",
            auto_scaling_group=f"{application}-canary",
        ),
        live=FleetGroup(
            deployment_group=f"{application}-live",
            target_group_arn=f"{arn}:targetgroup/{application}-live/2",
            auto_scaling_group=f"{application}-live",
        ),
        approvers=approvers,
    )


def running_rollout(gate: Gate, application: str, version: str, object_version: str) -> RolloutInput:
    """A rollout of ``version`` with its record, holding its application's lock."""
    artifact = ArtifactRef.from_object("artifacts", f"{application}/{version}.zip", version_id=object_version)
    rollout = RolloutInput(
        rollout_id=artifact.rollout_id, application=application, version=version, artifact=artifact
    )
    gate.rollouts.create(rollout, datetime.now(UTC))
    gate.cloud.client("dynamodb").put_item(
        TableName=gate.cloud.output("StateTableName"),
        Item={
            "pk": {"S": f"APP#{application}"},
            "sk": {"S": "LOCK"},
            "owner": {"S": f"arn:aws:states:us-east-1:123456789012:execution:rollout:{rollout.rollout_id}"},
            "rollout_id": {"S": rollout.rollout_id},
        },
    )
    return rollout


# The index of the canary step the approval tests wait in (a policy's approval is rarely first).
APPROVAL_STEP = 2


def approval_wait_input(config: AppConfig, rollout: RolloutInput, timeout_seconds: int) -> str:
    """The input of the approval-wait machine: what "Wait for approval" reads in a canary step."""
    return json.dumps(
        {
            "app": config.model_dump(mode="json"),
            "ref": {"application": config.application, "rollout_id": rollout.rollout_id, "version": "1.2.0"},
            "step": {"index": APPROVAL_STEP, "timeout_seconds": timeout_seconds},
        }
    )


def wait_for_approval(
    gate: Gate, timeout_seconds: int = 120, approvers: Approvers = APPROVERS, register: bool = False
) -> Waiting:
    """A new application's rollout, holding its lock, waiting for approval with links sent."""
    application = f"gate-{uuid.uuid4().hex[:10]}"
    rollout = running_rollout(gate, application, "1.2.0", "v1")
    gate.rollouts.record_verdict(application, rollout.rollout_id, Verdict.model_validate(VERDICT))
    config = app_config(application, approvers)
    if register:
        gate.cloud.client("ssm").put_parameter(
            Name=f"/canaryfleet/apps/{application}",
            Value=config.model_dump_json(),
            Type="String",
            Overwrite=True,
        )
    execution = gate.cloud.client("stepfunctions").start_execution(
        stateMachineArn=gate.machine_arn,
        name=rollout.rollout_id,
        input=approval_wait_input(config, rollout, timeout_seconds),
    )
    gate.rollouts.mark_started(application, rollout.rollout_id, execution["executionArn"])

    def asked() -> Approval | None:
        record = gate.rollouts.get(application, rollout.rollout_id)
        approval = gate.approvals.get(record.approval_id) if record and record.approval_id else None
        return approval if approval is not None and (approval.emails_sent or not approvers.emails) else None

    approval = eventually(asked, timeout=20)
    links = gate.inbox.links(approval.approval_id)
    posted = [m for m in gate.slack.posted(CHANNEL) if approval.approval_id in json.dumps(m.blocks)]
    return Waiting(
        application,
        rollout.rollout_id,
        approval.approval_id,
        execution["executionArn"],
        links,
        posted[0] if posted else None,
    )


# -- HTTP ------------------------------------------------------------------------------
def signing_key(gate: Gate, stage: str = "AWSCURRENT") -> str:
    """The approval links' signing key at ``stage`` (AWSCURRENT signs; AWSPREVIOUS still verifies)."""
    secret = gate.cloud.output("ApprovalSigningKeyArn")
    return str(
        gate.cloud.client("secretsmanager").get_secret_value(SecretId=secret, VersionStage=stage)[
            "SecretString"
        ]
    )


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def link_fields(link: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(link).query).items()}


def page_url(link: str) -> str:
    return link.split("?", 1)[0]


def post_decision(link: str, action: str, comment: str = "", **changes: str) -> tuple[int, str]:
    """What the page's form sends: the link's signed fields, the button pressed, the comment."""
    fields = {**link_fields(link), "action": action, "comment": comment, **changes}
    body = urlencode(fields).encode()
    return http("POST", page_url(link), body, {"Content-Type": "application/x-www-form-urlencoded"})


def heading(html: str) -> str:
    found = re.search(r'<h1[^>]*id="heading">(.*?)</h1>', html, re.S)
    return found.group(1).strip() if found else ""


# -- observing -------------------------------------------------------------------------
def execution(gate: Gate, waiting: Waiting) -> dict[str, Any]:
    described: dict[str, Any] = gate.cloud.client("stepfunctions").describe_execution(
        executionArn=waiting.execution_arn
    )
    return described


def ended(gate: Gate, waiting: Waiting, timeout: float = 10.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        described = execution(gate, waiting)
        return described if described["status"] != "RUNNING" else None

    result: dict[str, Any] = eventually(done, timeout=timeout)
    return result


def approval_of(gate: Gate, waiting: Waiting) -> Approval:
    approval = gate.approvals.get(waiting.approval_id)
    assert approval is not None
    return approval


def audit(gate: Gate, waiting: Waiting) -> list[dict[str, Any]]:
    record = gate.rollouts.get(waiting.application, waiting.rollout_id)
    return [entry.stored() for entry in record.audit] if record else []


def assert_nothing_changed(gate: Gate, waiting: Waiting) -> None:
    """The approval is still pending, the wait still runs, nobody decided, Slack still asks."""
    time.sleep(0.2)  # anything a request set off would have happened by now
    approval = approval_of(gate, waiting)
    assert (approval.status.value, approval.decision) == ("pending", None)
    assert execution(gate, waiting)["status"] == "RUNNING"
    assert audit(gate, waiting) == []
    if waiting.message is not None:
        assert waiting.message.history == [], "the Slack message was changed"
        assert any(block["type"] == "actions" for block in waiting.message.blocks)
