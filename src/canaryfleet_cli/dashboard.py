"""`canaryfleet dashboard`: every application and rollout on a web page on localhost.

In the spirit of `kubectl argo rollouts dashboard`: the page is served by the operator's own
process with the operator's own AWS credentials (or, with ``--local``, against `canaryfleet
local up`). Decisions go through the same path as `canaryfleet approve` (the platform's decide
function) and record the caller's IAM identity.

It listens on 127.0.0.1 only. Another site cannot decide through it: a POST must carry the
per-process token that only this site's pages hold (also in a SameSite=Strict cookie), an Origin
other than its own is refused, and so is a Host other than its own (DNS rebinding). Pages run no
script and load nothing from the network.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import UTC, datetime
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from canaryfleet.api.timeline_page import content_security_policy
from canaryfleet.errors import CanaryfleetError
from canaryfleet.models.artifact import APP_NAME_PATTERN
from canaryfleet.models.decision import recorded_words
from canaryfleet.models.rollout import Stage
from jinja2 import Environment, FileSystemLoader, select_autoescape

from canaryfleet_cli.plain import aws_said
from canaryfleet_cli.platform import (
    Platform,
    PlatformError,
    history_of,
    live_version,
    queued_behind,
    running_rollout,
)
from canaryfleet_cli.report import render, report_data
from canaryfleet_cli.rollout_view import (
    OUTCOME_WORDS,
    awaited,
    local_time,
    queued_text,
    rolling_back,
    view_steps,
)

TEMPLATES = Path(__file__).parent / "templates"
HOST = "127.0.0.1"
COOKIE = "canaryfleet_dashboard"
ACTIONS = ("approve", "reject", "abort", "promote")
NEEDS_REASON = ("reject", "abort")
# A reason of up to 2,000 characters, percent-encoded: up to 12 bytes a character (24,000 bytes).
MAX_BODY = 32 * 1024
_APP = re.compile(APP_NAME_PATTERN)
_ROLLOUT_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_NOTICES = {
    "applied": "done",
    "already_decided": "already decided",
}
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it a browser sends "Origin: null" with the forms, and the Origin check
    # below could not tell its own page from a sandboxed frame of another site.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class Dashboard:
    """What the pages show and the one thing they change, for one platform."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.token = secrets.token_urlsafe(32)  # per process: a restart invalidates open pages
        self.origins: set[str] = set()
        self.environment = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def bound_to(self, port: int) -> None:
        self.origins = {f"{HOST}:{port}", f"localhost:{port}"}

    def page(self, name: str, **data: Any) -> str:
        return self.environment.get_template(name).render(stack=self.platform.stack, **data)

    # -- pages -------------------------------------------------------------------------
    def index(self) -> str:
        now = datetime.now(UTC)
        rows = []
        for app in self.platform.applications():
            record = running_rollout(self.platform, app.application)
            # The store lists rollouts by id (their version's text), not by when they came.
            rollouts = self.platform.store.list_rollouts(app.application)
            latest = record or max(rollouts, key=lambda r: r.received_at, default=None)
            current = None
            if record is not None:
                current = next((s for s in view_steps(app, record) if s.state == "current"), None)
            rows.append(
                {
                    "application": app.application,
                    "live": live_version(self.platform, app.application) or "no release yet",
                    "canary": record.version if record else "-",
                    "step": f"{current.number}. {current.text}" if current else "-",
                    "weight": f"{record.current_weight}%" if record else "-",
                    "verdict": record.verdict.result if record and record.verdict else "-",
                    "awaited": awaited(app, record, now) if record else "-",
                    "status": _status(latest) if latest else "no rollout yet",
                    "rollout_id": latest.rollout_id if latest else None,
                }
            )
        return self.page("dashboard_index.html", rows=rows, now=local_time(now, now))

    def rollout(self, application: str, rollout_id: str, notice: str = "") -> str:
        app = self.platform.application(application)
        record = self.platform.store.get(application, rollout_id)
        if record is None:
            raise Refused(HTTPStatus.NOT_FOUND, f"no rollout {rollout_id} of {application}")
        now = datetime.now(UTC)
        stages = [
            {"stage": stage.value.replace("_", " "), "at": local_time(record.stage_at(stage), now)}
            for stage in Stage
            if record.stage_at(stage) is not None
        ]
        weights = [{"weight": e.weight, "at": local_time(e.at, now)} for _, e in record.weight_history()]
        audit = [
            {
                "kind": e.kind.replace("_", " "),
                "by": e.by or e.alarm or e.instance or "",
                "reason": e.reason or "",
                "channel": e.channel or "",
                "at": local_time(e.at, now),
            }
            for e in record.audit
        ]
        history = [h for h in history_of(self.platform, application) if h["rollout_id"] == rollout_id]
        # Waiting for its turn behind another rollout: no step has begun (as `watch` says it).
        ahead = queued_behind(self.platform, record)
        return self.page(
            "dashboard_rollout.html",
            record=record,
            status=queued_text(ahead) if ahead else _status(record),
            live=live_version(self.platform, application) or "no release yet",
            steps=view_steps(app, record, queued=ahead is not None),
            awaited=awaited(app, record, now) if record.outcome is None and ahead is None else "",
            received=local_time(record.received_at, now),
            stages=stages,
            weights=weights,
            audit=audit,
            decided=history[0]["decided_by"] if history else [],
            running=record.outcome is None,
            actions=ACTIONS,
            needs_reason=NEEDS_REASON,
            token=self.token,
            notice=notice,
        )

    def charts(self, application: str, rollout_id: str) -> str:
        """The rollout's timeline page (the charts of `canaryfleet report`), from CloudWatch now."""
        app = self.platform.application(application)
        record = self.platform.store.get(application, rollout_id)
        if record is None:
            raise Refused(HTTPStatus.NOT_FOUND, f"no rollout {rollout_id} of {application}")
        return render(report_data(record, app))

    # -- the decision ------------------------------------------------------------------
    def decide(self, form: dict[str, str], cookie_token: str | None) -> tuple[str, str, str]:
        """Checks the token, sends the decision; (application, rollout id, what happened)."""
        sent = form.get("token", "")
        if not cookie_token or not hmac.compare_digest(sent, self.token) or cookie_token != self.token:
            raise Refused(HTTPStatus.FORBIDDEN, "this form is not from this dashboard (reload the page)")
        application, rollout_id, action = (
            form.get("application", ""),
            form.get("rollout_id", ""),
            form.get("action", ""),
        )
        reason = form.get("reason", "").strip()
        if not _APP.fullmatch(application) or not _ROLLOUT_ID.fullmatch(rollout_id) or action not in ACTIONS:
            raise Refused(HTTPStatus.BAD_REQUEST, "unknown application, rollout or action")
        if action in NEEDS_REASON and not reason:
            raise Refused(HTTPStatus.BAD_REQUEST, f"{action} needs a reason")
        result = self.platform.decide(
            {
                "application": application,
                "action": action,
                "by": self.platform.caller(),
                "reason": reason,
                "channel": "cli",  # the operator's own tool, as the CLI
                "rollout_id": rollout_id,  # a page left open never decides a later rollout
            }
        )
        outcome = str(result.get("outcome"))
        said = recorded_words(action) if outcome == "recorded" else _NOTICES.get(outcome, "sent")
        detail = str(result.get("detail") or "")  # why, as the CLI prints it (a too-late abort's)
        return application, rollout_id, f"{action}: {said}" + (f"; {detail}" if detail else "")


def _could_not(exc: Exception, what: str) -> str:
    return f"could not {what}: {aws_said(exc)}"


def _status(record: Any) -> str:
    if record is None:
        return "-"
    if record.outcome:
        return f"{OUTCOME_WORDS.get(record.outcome, record.outcome)} {record.reason or ''}".strip()
    return "rolling back" if rolling_back(record) else "running"


def _handler(dashboard: Dashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "canaryfleet-dashboard"
        sys_version = ""

        def _send(self, status: HTTPStatus, body: str, extra: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in {**_HEADERS, **(extra or {})}.items():
                self.send_header(name, value)
            self.send_header("Set-Cookie", f"{COOKIE}={dashboard.token}; Path=/; HttpOnly; SameSite=Strict")
            self.end_headers()
            self.wfile.write(data)

        def _refuse(self, status: HTTPStatus, message: str) -> None:
            self._send(status, dashboard.page("dashboard_error.html", status=int(status), message=message))

        def _check_host(self) -> None:
            if self.headers.get("Host", "") not in dashboard.origins:
                raise Refused(HTTPStatus.FORBIDDEN, "unexpected Host: open the dashboard at its own address")

        def do_GET(self) -> None:
            try:
                self._check_host()
                parts = urlsplit(self.path)
                segments = [s for s in parts.path.split("/") if s]
                if not segments:
                    self._send(HTTPStatus.OK, dashboard.index())
                    return
                if len(segments) == 4 and segments[0] == "rollouts" and segments[3] == "charts":
                    _, application, rollout_id, _ = segments
                    if not _APP.fullmatch(application) or not _ROLLOUT_ID.fullmatch(rollout_id):
                        raise Refused(HTTPStatus.NOT_FOUND, "no such rollout")
                    # The timeline page's own policy: its inline chart script and styles by hash.
                    policy = {"Content-Security-Policy": content_security_policy()}
                    self._send(HTTPStatus.OK, dashboard.charts(application, rollout_id), policy)
                    return
                if len(segments) == 3 and segments[0] == "rollouts":
                    _, application, rollout_id = segments
                    if not _APP.fullmatch(application) or not _ROLLOUT_ID.fullmatch(rollout_id):
                        raise Refused(HTTPStatus.NOT_FOUND, "no such rollout")
                    notice = parse_qs(parts.query).get("done", [""])[0][:200]
                    self._send(HTTPStatus.OK, dashboard.rollout(application, rollout_id, notice))
                    return
                raise Refused(HTTPStatus.NOT_FOUND, "no such page")
            except Refused as exc:
                self._refuse(exc.status, str(exc))
            except PlatformError as exc:
                self._refuse(HTTPStatus.BAD_GATEWAY, str(exc))
            except (ClientError, BotoCoreError, CanaryfleetError) as exc:
                # An expired session, throttling, a denied read: said on the page, not a dropped
                # connection with a traceback on the dashboard's terminal.
                self._refuse(HTTPStatus.BAD_GATEWAY, _could_not(exc, "read the platform"))

        def do_POST(self) -> None:
            try:
                self._check_host()
                origin = self.headers.get("Origin")
                if origin is not None and urlsplit(origin).netloc not in dashboard.origins:
                    raise Refused(HTTPStatus.FORBIDDEN, "a decision from another site is refused")
                if urlsplit(self.path).path != "/decide":
                    raise Refused(HTTPStatus.NOT_FOUND, "no such form")
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY:
                    raise Refused(HTTPStatus.BAD_REQUEST, "an empty or oversized form")
                body = self.rfile.read(length).decode("utf-8", errors="strict")
                form = {k: v[0] for k, v in parse_qs(body, max_num_fields=10).items()}
                cookie = SimpleCookie(self.headers.get("Cookie", "")).get(COOKIE)
                application, rollout_id, said = dashboard.decide(form, cookie.value if cookie else None)
            except Refused as exc:
                self._refuse(exc.status, str(exc))
                return
            except (ValueError, UnicodeDecodeError):
                self._refuse(HTTPStatus.BAD_REQUEST, "a malformed form")
                return
            except PlatformError as exc:
                self._refuse(HTTPStatus.CONFLICT, str(exc))
                return
            except (ClientError, BotoCoreError, CanaryfleetError) as exc:
                # A denied lambda:Invoke (only release managers may decide), an expired session,
                # or a call that timed out after the decision may have been applied.
                said = _could_not(exc, "send the decision")
                self._refuse(HTTPStatus.BAD_GATEWAY, f"{said}. It may have been applied: check the rollout")
                return
            # Post/redirect/get: reloading the page shows it again, it never decides twice.
            location = f"/rollouts/{application}/{rollout_id}?done={quote(said)}"
            self._send(HTTPStatus.SEE_OTHER, "", {"Location": location})

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the operator's terminal stays quiet; decisions are in the audit

    return Handler


def serve(dashboard: Dashboard, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((HOST, port), _handler(dashboard))
    server.daemon_threads = True
    dashboard.bound_to(server.server_address[1])
    return server
