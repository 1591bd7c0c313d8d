"""Unit tests cannot reach the network: any connection attempt fails the test."""

import socket

import pytest
from canaryfleet.ports.clock import FixedClock

from tests.unit.fakes import T0


class NetworkAccessInUnitTest(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise NetworkAccessInUnitTest(f"unit tests must not open connections: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)
