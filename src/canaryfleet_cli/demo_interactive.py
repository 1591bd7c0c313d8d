"""`canaryfleet demo --interactive`: a rollout on the local cloud waits for you on the approval page.

The platform runs on the local cloud with its approval API served on localhost; build
1.0.0 of the demo application bakes, passes its analysis and asks its approver. The
command prints the approver's link (the one the email carries) and waits: open it in a
browser, approve or reject, and the rollout goes live or rolls back.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer
from canaryfleet.adapters.approval_store import DynamoApprovalStore
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.app_config import Approvers, read_registry_entry, registry_parameter
from canaryfleet.models.policy import Approval
from rich.console import Console
from rich.text import Text

from canaryfleet_cli.local_run import local_parameters
from canaryfleet_cli.plain import labelled
from canaryfleet_cli.timeline import render_rollouts

APPLICATION = "hello-app"
VERSION = "1.0.0"
SLACK_USER, SLACK_CHANNEL = "U0DEMO", "C0DEMO"
_ASK_TIMEOUT_SECONDS = 60.0

console = Console()
errors = Console(stderr=True, soft_wrap=True)


@dataclass(frozen=True)
class AskedApproval:
    """What the approvers were sent."""

    application: str
    version: str
    approval_id: str
    links: dict[str, str]  # approver -> their link
    slack_text: str
    expires_at: str


def run_interactive_demo(
    on_asked: Callable[[AskedApproval], None],
    approver: str = "you@example.com",
    port: int = 8765,
    timeout_seconds: int = 600,
    parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Roll out one build that waits for ``approver``; ``on_asked`` gets the link. How it ended."""
    # The local cloud loads moto and samtranslator: only the local commands import it, here,
    # so the AWS commands (`canaryfleet status`, `publish`...) never load it.
    from canaryfleet_local.bundles import bundle  # noqa: PLC0415
    from canaryfleet_local.cloud import LocalCloudError  # noqa: PLC0415
    from canaryfleet_local.http_api import LocalHttpApi  # noqa: PLC0415
    from canaryfleet_local.mailbox import LocalMailbox  # noqa: PLC0415
    from canaryfleet_local.rollout_job import scenario_cloud, upload_build  # noqa: PLC0415
    from canaryfleet_local.scenarios import load_scenario  # noqa: PLC0415
    from canaryfleet_local.slack import LocalSlack  # noqa: PLC0415

    scenario = load_scenario("approval-page")
    steps = tuple(
        s.model_copy(update={"timeout_seconds": timeout_seconds}) if isinstance(s, Approval) else s
        for s in scenario.policy.steps
    )
    scenario = scenario.model_copy(update={"policy": scenario.policy.model_copy(update={"steps": steps})})
    with (
        LocalHttpApi(port=port) as api,
        LocalSlack(users={SLACK_USER: approver}) as slack,
        scenario_cloud(scenario, APPLICATION, {**(parameters or {}), **api.parameters}) as (cloud, _),
    ):
        api.attach(cloud)
        slack.configure(cloud)
        mailbox = LocalMailbox(cloud)
        ssm = cloud.client("ssm")
        name = registry_parameter(APPLICATION)
        app = read_registry_entry(name, ssm.get_parameter(Name=name)["Parameter"]["Value"])
        people = Approvers(emails=(approver,), slack_user_ids=(SLACK_USER,), slack_channel=SLACK_CHANNEL)
        app = app.model_copy(update={"approvers": people})
        ssm.put_parameter(Name=name, Value=app.model_dump_json(), Type="String", Overwrite=True)
        table = cloud.output("StateTableName")
        rollouts, approvals = DynamoRolloutStore(table), DynamoApprovalStore(table)

        upload_build(cloud, APPLICATION, VERSION, bundle())
        deadline = time.monotonic() + _ASK_TIMEOUT_SECONDS
        while True:
            records = rollouts.list_rollouts(APPLICATION)
            record = records[0] if records else None
            approval = approvals.get(record.approval_id) if record and record.approval_id else None
            if approval is not None and approval.emails_sent:
                break
            if (record and record.outcome) or time.monotonic() > deadline:
                raise LocalCloudError(
                    f"the rollout did not ask for approval: {(record and record.reason) or 'timeout'}"
                )
            time.sleep(0.2)
        # The channel also holds the rollout's thread; the request is the message with its buttons.
        posted = slack.posted(SLACK_CHANNEL)
        message = next((m for m in posted if approval.approval_id in json.dumps(m.blocks)), None)
        on_asked(
            AskedApproval(
                application=APPLICATION,
                version=VERSION,
                approval_id=approval.approval_id,
                links=mailbox.links(approval.approval_id),
                slack_text=message.text if message else "",
                expires_at=approval.expires_at.isoformat(),
            )
        )
        deadline = time.monotonic() + timeout_seconds + 60
        while not (ended := rollouts.list_rollouts(APPLICATION)[0]).outcome:
            if time.monotonic() > deadline:
                raise LocalCloudError("the rollout did not end")
            time.sleep(0.2)
        final = approvals.get(approval.approval_id)
        return {
            "outcome": ended.outcome,
            "reason": ended.reason or "",
            "approval": final.status.value if final else None,
            "audit": [entry.stored() for entry in ended.audit],
            "slack": message.text if message else "",
            "served": [f"{r.method} {r.path} {r.status}" for r in api.served],
        }


def _show_link(asked: AskedApproval) -> None:
    console.print(
        f"\n[bold]{asked.application} {asked.version}[/bold] passed its canary analysis and waits for you."
    )
    for approver, link in asked.links.items():
        console.print(f"Open the approval page as {approver} (the link the email carries):")
        console.print(f"  [link={link}]{link}[/link]", soft_wrap=True)
    if asked.slack_text:
        console.print(f"Slack (local) #{SLACK_CHANNEL}: {asked.slack_text}")
    console.print(f"Approve or reject before {asked.expires_at}. Waiting for your click (Ctrl-C stops)...\n")


def demo(
    interactive: bool = typer.Option(
        False, "--interactive", help="Wait for you to approve or reject on the approval page in a browser."
    ),
    port: int = typer.Option(
        8765, min=0, max=65535, help="Local port of the approval page (0: any free one)."
    ),
    approver: str = typer.Option(
        "you@example.com", help="Who approves (the address the link is signed for)."
    ),
    timeout: int = typer.Option(
        600, min=10, max=86_400, help="Seconds the approval waits before it expires."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the functions' logs and metrics."),
) -> None:
    """The local cloud's demo: a release and a rollback, or (--interactive) a rollout you decide."""
    # The local cloud (moto) is imported by the local commands only.
    from canaryfleet_local.cloud import LocalCloudError  # noqa: PLC0415

    if not re.fullmatch(r"[^@\s,\"]+@[^@\s,\"]+\.[^@\s,\"]+", approver):
        raise typer.BadParameter("an email address", param_hint="--approver")
    parameters = local_parameters(verbose)
    try:
        if not interactive:
            # The local cloud (moto) is imported by the local commands only.
            from canaryfleet_local.rollout_job import run_scenario  # noqa: PLC0415

            console.print(render_rollouts(run_scenario("demo", parameters=parameters)))
            return
        console.print("Starting the platform on the local cloud (about 15 seconds)...")
        result = run_interactive_demo(
            _show_link, approver=approver, port=port, timeout_seconds=timeout, parameters=parameters
        )
    except (LocalCloudError, OSError) as exc:
        errors.print(labelled("demo: ", "red", exc), highlight=False)
        raise typer.Exit(2) from None
    style = {"released": "green", "rejected": "yellow"}.get(str(result["outcome"]), "red")
    console.print(
        Text("Rollout ")
        + Text(str(result["outcome"]), style=f"bold {style}")
        + Text(f" {result['reason']}".rstrip())
    )
    console.print(Text(f"Approval: {result['approval']}. Slack now says: {result['slack']}"))
    console.print("Audit: " + json.dumps(result["audit"]))
