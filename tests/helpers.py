"""Shared test helpers: sample events and handler modules, loaded from the repository."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"
FUNCTIONS = REPO / "functions"
STATE_MACHINES = REPO / "statemachines"


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, e.g. ``load_event("start_rollout/object_created")``."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def load_handler(function: str) -> ModuleType:
    """The handler module of functions/<function>/app.py (every function's file is app.py)."""
    spec = importlib.util.spec_from_file_location(f"handler_{function}", FUNCTIONS / function / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeContext:
    """The Lambda context attributes Powertools reads."""

    function_name = "test-function"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def without_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3 finds no credentials for the rest of the test: none in the environment, no files, no IMDS."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
