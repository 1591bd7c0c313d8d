"""`canaryfleet approvers list|confirm`: approval emails that a mail scanner cannot switch off.

Every email SNS sends ends with an unsubscribe link that works for whoever opens it, so an
email security scanner that opens every link (Safe Links and the like) unsubscribes the
approver without anyone noticing: their next approval email never comes. A subscription
confirmed with AWS credentials and ``AuthenticateOnUnsubscribe`` cannot be ended that way
(SNS API reference, ConfirmSubscription). `confirm` does that with the link of SNS's
confirmation email, which the approver copies (not opens) and hands to an operator; `list`
shows who is pending, confirmed, and protected.
Registered in main.py with ``app.add_typer(approvers_app, name="approvers")``.
"""

from __future__ import annotations

import json
import sys

import typer
from botocore.exceptions import BotoCoreError, ClientError
from canaryfleet.adapters.approval_email import SnsApprovalEmail
from canaryfleet.errors import CanaryfleetError
from canaryfleet.models.sns_confirmation import confirmation_link
from rich.console import Console
from rich.table import Table
from rich.text import Text

from canaryfleet_cli.local_endpoint import LocalOption
from canaryfleet_cli.options import JsonOption, ProfileOption, RegionOption, StackOption
from canaryfleet_cli.plain import fail
from canaryfleet_cli.platform import PlatformError, connect_platform

approvers_app = typer.Typer(
    help="Approvers' email subscriptions: who gets approval emails, and whom no link click can unsubscribe.",
    no_args_is_help=True,
)

console = Console()

UNPROTECTED_HINT = (
    "A confirmed subscription that is not protected ends when anyone opens the unsubscribe link of "
    "an approval email, a mail scanner included. To protect it, unsubscribe it (aws sns unsubscribe "
    "--subscription-arn ARN); the next upload subscribes the approver again, and they copy the new "
    "confirmation email's link, without opening it, for `canaryfleet approvers confirm`."
)


def _email(stack: str | None, region: str | None, profile: str | None, local: bool) -> SnsApprovalEmail:
    try:
        platform = connect_platform(stack, region, profile, local)
        return SnsApprovalEmail(platform.output("ApprovalEmailTopicArn"))
    except PlatformError as exc:
        fail(str(exc))


def _aws_message(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc)


def _read_link() -> str:
    """The link from standard input: asked for without echo on a terminal, else its first line."""
    if sys.stdin.isatty():
        return str(typer.prompt("SNS confirmation link", hide_input=True))
    return sys.stdin.readline(_MAX_READ)


_MAX_READ = 65_536  # far above any link; what is longer is refused by its length


@approvers_app.command("list")
def list_approvers(
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    as_json: bool = JsonOption,
    local: bool = LocalOption,
) -> None:
    """Each approver's email subscription: pending, confirmed, or confirmed and protected."""
    email = _email(stack, region, profile, local)
    try:
        subscriptions = email.approver_subscriptions()
    except (ClientError, BotoCoreError) as exc:
        fail(f"could not read the approval email topic's subscriptions: {_aws_message(exc)}")
    if as_json:
        rows = [
            {
                "email": s.email,
                "state": s.state,
                "protected": s.protected,
                "subscription_arn": s.subscription_arn,
            }
            for s in subscriptions
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="approval email subscriptions")
    for column in ("email", "state", "unsubscribe"):
        table.add_column(column)
    for s in subscriptions:
        who: str | Text
        if s.state == "pending":
            who = "-"
        elif s.protected:
            who = "AWS credentials only"
        else:
            who = Text("any link click (not protected)", style="yellow")
        table.add_row(Text(s.email), s.state, who)
    console.print(table)
    if any(s.state == "confirmed" and not s.protected for s in subscriptions):
        console.print(Text(UNPROTECTED_HINT))


@approvers_app.command("confirm")
def confirm(
    link: str = typer.Argument(
        "-",
        help=(
            "The link of SNS's confirmation email, copied without opening it. Default '-': read it "
            "from standard input (asked for, hidden, on a terminal), so its token stays out of the "
            "shell's history and the process list."
        ),
        show_default=False,
    ),
    stack: str | None = StackOption,
    region: str | None = RegionOption,
    profile: str | None = ProfileOption,
    as_json: bool = JsonOption,
    local: bool = LocalOption,
) -> None:
    """Confirm an approver's subscription so that only AWS credentials can unsubscribe it."""
    if link == "-":
        link = _read_link()
    try:
        parsed = confirmation_link(link)
    except CanaryfleetError as exc:
        fail(str(exc))
    email = _email(stack, region, profile, local)
    try:
        arn = email.confirm_protected(parsed)
    except CanaryfleetError as exc:
        fail(str(exc))
    except (ClientError, BotoCoreError) as exc:
        fail(
            f"SNS did not confirm it ({_aws_message(exc)}). SNS deletes a subscription left "
            "unconfirmed for 48 hours, and with it its link; if the approver opened the link, their "
            "subscription may be confirmed but not protected (see `canaryfleet approvers list`)"
        )
    if as_json:
        typer.echo(json.dumps({"subscription_arn": arn, "endpoint": parsed.endpoint, "protected": True}))
        return
    who = f" for {parsed.endpoint}" if parsed.endpoint else ""
    console.print(Text(f"confirmed{who}: only AWS credentials can unsubscribe it ({arn})"))
