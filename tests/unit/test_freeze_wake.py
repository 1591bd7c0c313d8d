"""`canaryfleet freeze add` / `remove`: once the freeze is stored, telling the waiting rollouts is
best effort. A failure there is a warning, not the command's failure, which an operator (or a
script) would retry, declaring the freeze a second time."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from canaryfleet_cli.freezes import _wake_waiting_rollouts


class ThrottledRegistry:
    def applications(self) -> list[Any]:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetParametersByPath"
        )


def test_rollouts_that_could_not_be_told_are_a_warning_after_the_stored_freeze(
    capsys: pytest.CaptureFixture[str],
) -> None:
    woken = _wake_waiting_rollouts(ThrottledRegistry(), "20261206-95b856")  # type: ignore[arg-type]

    assert woken == []
    said = " ".join(capsys.readouterr().err.split())
    assert said.startswith("warning: freeze 20261206-95b856 is stored, but the rollouts waiting")
    assert "AWS refused GetParametersByPath: ThrottlingException: slow down" in said
