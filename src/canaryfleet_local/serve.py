"""`canaryfleet local up`: the local cloud kept up, its AWS APIs served on localhost.

The platform (template.yaml), the demo application's fleet (fleet/template.yaml), the fleet
simulator and the approval page run in this process, as for every local command; moto's server
(``ThreadedMotoServer``) answers HTTP requests on localhost from the same backends. The
stand-ins patch moto's backend and response classes, so a request that arrives over HTTP meets
them as one made in-process does: an S3 upload emits its EventBridge event, a Lambda Invoke runs
the real handler. The operator commands reach it with ``--local`` through their usual boto3 code.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canaryfleet.models.app_config import AppConfig, Approvers, registry_parameter
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from canaryfleet_local.cloud import STACK_NAME, LocalCloud, LocalCloudError
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.http_api import LocalHttpApi
from canaryfleet_local.mailbox import LocalMailbox
from canaryfleet_local.scenarios import Scenario, load_scenario
from canaryfleet_local.simulator import FleetSimulator

APPLICATION = "hello-app"
SCENARIO = "local-up"
STATE_FOLDER = ".canaryfleet"
STATE_FILE = "local.json"
HOST = "127.0.0.1"
# Who approves hello-app on the local cloud: the approval email's link is signed for this address.
APPROVER = "you@example.com"


@dataclass(frozen=True)
class Served:
    """Where the running local cloud answers; written to .canaryfleet/local.json."""

    endpoint: str
    region: str
    stack: str
    approval_page: str
    applications: tuple[str, ...]
    pid: int

    def as_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "region": self.region,
            "stack": self.stack,
            "approval_page": self.approval_page,
            "applications": list(self.applications),
            "pid": self.pid,
        }


def state_file(folder: Path) -> Path:
    return folder / STATE_FOLDER / STATE_FILE


@contextlib.contextmanager
def written_state(served: Served, folder: Path) -> Iterator[Path]:
    """.canaryfleet/local.json while the block runs; removed when it ends, however it ends."""
    path = state_file(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        previous = _read_pid(path)
        if previous is not None and previous != os.getpid() and _alive(previous):
            raise LocalCloudError(
                f"{path} says a local cloud already runs here (process {previous}); stop it first"
            )
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(served.as_json(), indent=2) + "\n")
    temporary.replace(path)  # readers never see half a file
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only when nothing else was put there


def _read_pid(path: Path) -> int | None:
    try:
        pid = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class AwsApiServer:
    """moto's server (what ``moto.server.ThreadedMotoServer`` runs), bound at once.

    ThreadedMotoServer binds on its own thread, where a port already taken is an exception
    nobody sees and ``start`` waits forever, and werkzeug binding a port itself exits the process
    on one; the socket is bound here, so a port taken is an OSError the command reports.
    """

    def __init__(self, host: str, port: int) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as HTTPServer does
            self._socket.bind((host, port))
            self._socket.listen(128)
            app = DomainDispatcherApplication(create_backend_app)
            self._server: BaseWSGIServer = make_server(
                host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=self._socket.fileno()
            )
        except BaseException:
            self._socket.close()
            raise
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-api-server", daemon=True)
        self._stopped = False

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port; once, however often it is called."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()
        self._socket.close()


class ApprovalLinks:
    """Tells of each approval request once, with the links its email would carry."""

    def __init__(self, cloud: LocalCloud) -> None:
        self._mailbox = LocalMailbox(cloud)
        self._told: set[str] = set()

    def new(self) -> list[tuple[str, str, str]]:
        """(subject, approver, link) of each approval email not told before."""
        found = []
        for message in self._mailbox.read():
            text = str(message.get("Message", ""))
            link = next((word for word in text.split() if word.startswith("http")), None)
            approver = message.get("MessageAttributes", {}).get("approver", {}).get("Value", "")
            key = f"{approver} {link}"
            if link and key not in self._told:
                self._told.add(key)
                found.append((str(message.get("Subject", "")), str(approver), link))
        return found


@contextlib.contextmanager
def served_local_cloud(
    port: int = 0,
    approval_port: int = 0,
    approver: str = "none",
    scenario: Scenario | str = SCENARIO,
    parameters: dict[str, str] | None = None,
    on_progress: Any = None,
) -> Iterator[tuple[Served, LocalCloud, ApprovalLinks]]:
    """The platform and hello-app on the local cloud, its AWS APIs on ``HOST:port``.

    ``approver``: ``none`` (people decide) or ``auto`` (the simulator approves every build).
    """
    if approver not in ("none", "auto"):
        raise ValueError("approver: none or auto")
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    scenario = scenario.model_copy(update={"unlisted_decision": "approve" if approver == "auto" else "none"})

    def step(message: str) -> None:
        if on_progress is not None:
            on_progress(message)

    step("binding ports")  # both ports at once: one taken fails here, before any work
    server = AwsApiServer(HOST, port)
    try:
        with LocalHttpApi(host=HOST, port=approval_port) as api:
            step("creating the platform from template.yaml")
            with LocalCloud(parameters={**(parameters or {}), **api.parameters}) as cloud:
                api.attach(cloud)
                links = ApprovalLinks(cloud)
                step(f"onboarding {APPLICATION} from fleet/template.yaml")
                app = _onboard(cloud, APPLICATION, scenario)
                with FleetSimulator(cloud, scenario) as simulator:
                    simulator.add_application(app)
                    step("serving the AWS APIs")
                    server.start()
                    served = Served(
                        endpoint=server.endpoint,
                        region=cloud.region,
                        stack=STACK_NAME,
                        approval_page=api.url,
                        applications=(APPLICATION,),
                        pid=os.getpid(),
                    )
                    try:
                        yield served, cloud, links
                    finally:
                        server.stop()  # before the cloud closes: no request meets a closing cloud
    finally:
        server.stop()  # when the cloud never came up


def _onboard(cloud: LocalCloud, application: str, scenario: Scenario) -> AppConfig:
    """The application's fleet stack, with the scenario's policy in its registry entry."""
    app = deploy_fleet(cloud, application).model_copy(
        update={"policy": scenario.policy, "approvers": Approvers(emails=(APPROVER,))}
    )
    cloud.client("ssm").put_parameter(
        Name=registry_parameter(application), Value=app.model_dump_json(), Type="String", Overwrite=True
    )
    return app
