"""Figure 5 times the suite as `make test` runs it: its pytest command comes from the Makefile."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.histories import BenchError
from bench.local_cloud import suite_command, suite_workers


def test_the_suite_command_is_make_tests_own() -> None:
    command = suite_command()

    assert command[0] == ".venv/bin/pytest"
    assert "-n" in command and int(suite_workers(command)) >= 2
    assert "tests/unit" not in command, "the whole suite, not test-fast's unit tests"


def test_the_command_is_read_from_the_test_target_only(tmp_path: Path) -> None:
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        "test-fast: install\n\t$(BIN)/pytest -q tests/unit\n\n"
        "test: install chromium bytecode ## the whole suite\n"
        "\t@echo go\n\t$(BIN)/pytest -n 3 --dist load -q\n"
    )
    assert suite_command(makefile) == (".venv/bin/pytest", "-n", "3", "--dist", "load", "-q")
    assert suite_workers(suite_command(makefile)) == "3"

    makefile.write_text("test: install\n\t@echo no pytest here\n\nother:\n\t$(BIN)/pytest -n 2\n")
    with pytest.raises(BenchError, match="no `\\$\\(BIN\\)/pytest` line"):
        suite_command(makefile)
