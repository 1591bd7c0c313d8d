"""The CLI's calls on a network that misbehaves, over real sockets on localhost: a silent endpoint
ends the call at the CLI's read timeout, and an unreachable one is named without its password."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from canaryfleet_cli import platform as cli_platform
from canaryfleet_cli.platform import Platform, PlatformError


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials AWS would not know, one attempt per call, no profile of the machine's."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An endpoint that accepts connections and never answers (a stalled proxy, a stopped process)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_the_clis_calls_give_up_on_a_silent_endpoint_after_their_read_timeout(
    aws_env: None, silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore's own default is 60 s for each answer; the CLI's clients are given their bound
    monkeypatch.setenv("AWS_ENDPOINT_URL", silent_endpoint)
    monkeypatch.setattr(cli_platform, "READ_TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()

    with pytest.raises(PlatformError, match="unreachable"):
        Platform.connect("canaryfleet", "us-east-1")

    assert time.monotonic() - started < 5


def test_an_unreachable_endpoint_is_named_without_its_password(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://bob:Pw0rd@127.0.0.1:{port}")

    with pytest.raises(PlatformError) as refused:
        Platform.connect("canaryfleet", "us-east-1")

    assert "Pw0rd" not in str(refused.value) and "bob" not in str(refused.value)
    assert f"http://***@127.0.0.1:{port}" in str(refused.value)
