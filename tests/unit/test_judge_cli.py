"""`canaryfleet judge FILE`: one verdict or a list in the file's order; exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from canaryfleet_cli.main import app

runner = CliRunner()

LIKE_LIVE = {
    "metrics": [
        {
            "name": "5xx rate",
            "critical": True,
            "canary": [0.01, 0.0133, 0.01, None, 0.0067],
            "live": [0.01, 0.0102, 0.0098, 0.01, 0.0101],
            "canary_counts": [300, 300, 300, None, 300],
            "live_counts": [5700, 5700, 5700, 5700, 5700],
        },
        {"name": "latency", "canary": [0.081, 0.079, 0.08, 0.082], "live": [0.08, 0.081, 0.079, 0.08]},
    ]
}
SLOW = {"metrics": [{"name": "latency", "canary": [0.1, 0.11, 0.1, 0.105, 0.1], "live": [0.08] * 5}]}


def run(tmp_path: Path, content: Any, *args: str) -> Any:
    path = tmp_path / "analysis.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return runner.invoke(app, ["judge", str(path), *args])


def test_one_analysis_gives_one_verdict(tmp_path: Path) -> None:
    result = run(tmp_path, LIKE_LIVE, "--json")
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["result"] == "pass"
    assert 0 <= verdict["score"] <= 100
    first = verdict["metrics"][0]
    for key in ("name", "result", "canary", "live", "effect", "p_value"):
        assert key in first
    assert first["canary_count"] == 1200


def test_a_list_gives_verdicts_in_its_order(tmp_path: Path) -> None:
    result = run(tmp_path, [SLOW, LIKE_LIVE, SLOW], "--json")
    assert result.exit_code == 0, result.output
    assert [v["result"] for v in json.loads(result.stdout)] == ["fail", "pass", "fail"]


def test_a_failing_verdict_still_exits_0_and_reads_as_a_table(tmp_path: Path) -> None:
    result = run(tmp_path, SLOW)
    assert result.exit_code == 0
    assert "latency" in result.stdout and "fail" in result.stdout
    assert "adjusted" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"metrics": [{"name": "x", "canary": [' + "9" * 5_000 + '], "live": [1]}]}', "cannot read"),
        ("42", "one analysis"),
        ("[]", "empty"),
        ({"metrics": []}, "metrics"),
        ([LIKE_LIVE, {"metrics": [{"name": "x", "canary": ["a"], "live": [1]}]}], "[1].metrics[0].canary[0]"),
        ({"metrics": [{"name": "x", "canary": [0.1], "live": [0.1], "canary_counts": [1]}]}, "give both"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, content: Any, message: str) -> None:
    result = run(tmp_path, content, "--json")
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["judge", str(tmp_path / "nothing.json")])
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
