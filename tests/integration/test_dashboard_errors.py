"""`canaryfleet dashboard` over HTTP when AWS refuses a call: a page that says so, never a
dropped connection (an expired session on a dashboard left open, a denied lambda:Invoke)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
from botocore.exceptions import ClientError

from canaryfleet_cli.dashboard import COOKIE, Dashboard, serve


class RefusingPlatform:
    stack = "canaryfleet"

    def __init__(self, refused: ClientError) -> None:
        self.refused = refused

    def applications(self) -> list[Any]:
        raise self.refused

    def caller(self) -> str:
        return "arn:aws:sts::123456789012:assumed-role/oncall/alice"

    def decide(self, payload: dict[str, Any]) -> dict[str, Any]:
        raise self.refused


def _refused(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, operation)


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Dashboard, str]]:
    dashboard = Dashboard(RefusingPlatform(request.param))  # type: ignore[arg-type]
    server = serve(dashboard, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield dashboard, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _open(request: urllib.request.Request) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


@pytest.mark.parametrize("served", [_refused("ExpiredToken", "GetParametersByPath")], indirect=True)
def test_a_page_aws_refuses_to_read_says_so(served: tuple[Dashboard, str]) -> None:
    _, url = served

    status, page = _open(urllib.request.Request(url + "/"))

    assert status == HTTPStatus.BAD_GATEWAY
    assert "could not read the platform: AWS refused GetParametersByPath: ExpiredToken: no" in page


@pytest.mark.parametrize("served", [_refused("AccessDeniedException", "Invoke")], indirect=True)
def test_a_decision_aws_refuses_says_so_and_that_it_may_have_been_applied(
    served: tuple[Dashboard, str],
) -> None:
    dashboard, url = served
    form = {
        "token": dashboard.token,
        "application": "payments-api",
        "rollout_id": "payments-api-1_2_0-abc",
        "action": "abort",
        "reason": "error budget spent",
    }
    request = urllib.request.Request(
        url + "/decide",
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Cookie": f"{COOKIE}={dashboard.token}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )

    status, page = _open(request)

    assert status == HTTPStatus.BAD_GATEWAY
    assert "could not send the decision: AWS refused Invoke: AccessDeniedException: no" in page
    assert "It may have been applied: check the rollout" in page
