"""Pure pieces of the story: no AWS call here, so the unit tests hold each of them.

- the approval link, as the approval email carries it (raw or inside SNS's JSON envelope);
- the approval page's form, read from the page as a browser reads it, and the POST it sends;
- a drain's manifest against the log files that are really in S3;
- the two builds: hello-app as it is, and a copy whose every request but the health check fails.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from canaryfleet.models.drain import DrainManifest

REPO_ROOT = Path(__file__).resolve().parents[2]
HELLO_APP = REPO_ROOT / "examples" / "hello-app"
FAILING_SERVER = Path(__file__).resolve().parent / "failing-app" / "server.py"

# What links.link_url writes: <endpoint>/approvals/<id>?approver=..&expires=..&signature=..
_LINK = re.compile(r"https?://[^\s<>\"']+/approvals/[^\s<>\"'?/]+\?[^\s<>\"']+")
_LINK_FIELDS = ("approver", "expires", "signature")


class AcceptanceCheckFailed(AssertionError):
    """What the story found differs from what canaryfleet promises; the message says how."""


def _message_of(body: str) -> str:
    """The email's text: SNS wraps it in a JSON envelope unless the subscription is raw."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return body
    if isinstance(envelope, dict) and envelope.get("Type") == "Notification":
        return str(envelope.get("Message", ""))
    return body


def approval_link(body: str, endpoint: str | None = None) -> str:
    """The one signed approval link in an approval email (an SQS message body from the topic).

    With ``endpoint`` (the stack's ApprovalApiEndpoint) the link must point there: a link to
    anywhere else is a defect, not something to follow.
    """
    text = _message_of(body)
    links = sorted(set(_LINK.findall(text)))
    if len(links) != 1:
        raise AcceptanceCheckFailed(f"expected one approval link in the email, found {len(links)}")
    link = str(links[0])
    query = parse_qs(urlsplit(link).query)
    missing = [name for name in _LINK_FIELDS if len(query.get(name, [])) != 1]
    if missing:
        raise AcceptanceCheckFailed(f"the approval link lacks {', '.join(missing)}")
    if endpoint is not None and not link.startswith(endpoint.rstrip("/") + "/approvals/"):
        raise AcceptanceCheckFailed(f"the approval link does not point to the approval API {endpoint}")
    return link


@dataclass(frozen=True)
class PageForm:
    """The approval page's decision form: where it posts, its hidden fields, its buttons."""

    action: str
    fields: dict[str, str]
    buttons: tuple[str, ...] = ()

    def body(self, decision: str, comment: str = "") -> bytes:
        """The urlencoded body a browser sends when the ``decision`` button is pressed."""
        if decision not in self.buttons:
            raise AcceptanceCheckFailed(f"the page offers {list(self.buttons)}, not {decision!r}")
        return urlencode({**self.fields, "comment": comment, "action": decision}).encode()


@dataclass
class _Form:
    method: str
    action: str
    inputs: dict[str, str] = field(default_factory=dict)
    buttons: list[str] = field(default_factory=list)


class _FormReader(HTMLParser):
    """The forms of a page: method, action, hidden inputs and the ``action`` buttons' values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(_Form(attributes.get("method", "get").lower(), attributes.get("action", "")))
        elif not self.forms:
            return
        elif tag == "input" and attributes.get("type") == "hidden" and attributes.get("name"):
            self.forms[-1].inputs[attributes["name"]] = attributes.get("value", "")
        elif tag == "button" and attributes.get("name") == "action":
            self.forms[-1].buttons.append(attributes.get("value", ""))


def decision_form(html: str, page_url: str) -> PageForm:
    """The page's one POST form, its action resolved against the page's URL as a browser does."""
    reader = _FormReader()
    reader.feed(html)
    posts = [form for form in reader.forms if form.method == "post"]
    if len(posts) != 1:
        raise AcceptanceCheckFailed(f"expected one decision form on the approval page, found {len(posts)}")
    form = posts[0]
    missing = [name for name in _LINK_FIELDS if name not in form.inputs]
    if missing:
        raise AcceptanceCheckFailed(f"the decision form lacks {', '.join(missing)}")
    return PageForm(action=urljoin(page_url, form.action), fields=form.inputs, buttons=tuple(form.buttons))


def manifest_problems(
    manifest: DrainManifest, stored: Mapping[str, bytes], *, instance_id: str, application: str
) -> list[str]:
    """Everything wrong between a drain's manifest and the files under its prefix (empty: all good).

    ``stored`` maps each name under the run's prefix (manifest.json excluded) to its bytes, as
    read back from S3: a file must be there with the manifest's size and SHA-256, and nothing
    may be there that the manifest does not list.
    """
    problems = []
    if manifest.instance_id != instance_id:
        problems.append(f"the manifest is for {manifest.instance_id}, not {instance_id}")
    if manifest.application != application:
        problems.append(f"the manifest is for application {manifest.application}, not {application}")
    if manifest.mode != "drain":
        problems.append(f"the manifest was written by a {manifest.mode} run, not a drain")
    if not manifest.files:
        # hello-app logs to /var/log/<application>/server.log: a drain that ships nothing did not
        # find the application's logs where the platform looks (fleet/README.md).
        problems.append("the manifest lists no file: none of the application's logs reached S3")
    listed = {entry.name for entry in manifest.files}
    for entry in manifest.files:
        body = stored.get(entry.name)
        if body is None:
            problems.append(f"{entry.name} is in the manifest but not in S3")
        elif len(body) != entry.size:
            problems.append(f"{entry.name} has {len(body)} bytes in S3, the manifest says {entry.size}")
        elif hashlib.sha256(body).hexdigest() != entry.sha256:
            problems.append(f"{entry.name}'s SHA-256 in S3 differs from the manifest's")
    problems.extend(f"{name} is in S3 but not in the manifest" for name in sorted(set(stored) - listed))
    return problems


def good_build(destination: Path) -> Path:
    """examples/hello-app as it is, copied (publish zips a folder)."""
    shutil.copytree(HELLO_APP, destination)
    return destination


def failing_build(destination: Path) -> Path:
    """hello-app whose server answers 500 to every request except the health check's ``GET /``.

    Its deployment succeeds (ValidateService and the target group's health check ask for
    ``/``), so what ends the rollout is the canary alarm on the traffic, not CodeDeploy.
    """
    shutil.copytree(HELLO_APP, destination)
    shutil.copyfile(FAILING_SERVER, destination / "app" / "server.py")
    return destination
