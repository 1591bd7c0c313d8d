"""`canaryfleet history`: who decided each rollout, and approvals nobody answered."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from canaryfleet.models.rollout_record import RolloutRecord
from rich.console import Console

from canaryfleet_cli import operate
from canaryfleet_cli.platform import Platform, history_of

_ARTIFACT = {"version": "1.0.0", "artifact_bucket": "artifacts", "artifact_key": "app/1.0.0.zip"}


class _Store:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = [RolloutRecord.model_validate({**_ARTIFACT, **r}) for r in records]

    def list_rollouts(self, application: str) -> list[RolloutRecord]:
        return [r for r in self.records if r.application == application]


class _Platform(Platform):
    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__("canaryfleet", {})
        self._store = _Store(records)

    @property
    def store(self) -> Any:
        return self._store


def test_history_names_deciders_and_unanswered_approvals_newest_first() -> None:
    records = [
        {
            "application": "hello-app",
            "rollout_id": "r1",
            "version": "1.0.0",
            "received_at": "2026-11-27T10:00:00+00:00",
            "ended_at": "2026-11-27T10:05:30+00:00",
            "outcome": "released",
            "audit": [{"kind": "approve", "by": "alice@example.com", "at": "2026-11-27T10:05:00+00:00"}],
        },
        {
            "application": "hello-app",
            "rollout_id": "r2",
            "version": "1.1.0",
            "received_at": "2026-11-27T11:00:00+00:00",
            "ended_at": "2026-11-27T12:00:00+00:00",
            "outcome": "rolled_back",
            "reason": "approval timed out",
            "audit": [{"kind": "approval_expired", "approval_id": "a1", "at": "2026-11-27T12:00:00+00:00"}],
        },
        {"application": "other-app", "rollout_id": "r3", "received_at": "2026-11-27T13:00:00+00:00"},
    ]

    rows = history_of(_Platform(records), "hello-app")

    assert [r["rollout_id"] for r in rows] == ["r2", "r1"]
    assert rows[0]["decided_by"] == ["approval expired unanswered"]
    assert rows[0]["reason"] == "approval timed out" and rows[0]["seconds"] == 3600.0
    assert rows[1]["decided_by"] == ["approve by alice@example.com"]
    assert rows[1]["seconds"] == 330.0


def test_history_prints_a_reason_with_rich_markup_as_it_was_written(monkeypatch: pytest.MonkeyPatch) -> None:
    reason = "[/bold] closed [link=https://evil.example]runbook[/link] [red]x"
    records = [
        {
            "application": "hello-app",
            "rollout_id": "r1",
            "received_at": "2026-11-27T10:00:00+00:00",
            "outcome": "rolled_back",
            "reason": reason,
            "audit": [{"kind": "abort", "by": "[b]mallory[/b]", "at": "2026-11-27T10:05:00+00:00"}],
        }
    ]
    platform = _Platform(records)
    monkeypatch.setattr(platform, "application", lambda name: None)
    monkeypatch.setattr(operate, "_connect", lambda *args: platform)
    out = StringIO()
    monkeypatch.setattr(operate, "console", Console(file=out, width=400, color_system=None))

    operate.history("hello-app", limit=20, stack=None, region=None, profile=None, as_json=False)

    printed = out.getvalue()
    assert reason in printed, "the reason is shown as written, not read as markup"
    assert "abort by [b]mallory[/b]" in printed
