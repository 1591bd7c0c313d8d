"""The fidelity table (src/canaryfleet_local/FIDELITY.md) names only tests that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "src" / "canaryfleet_local" / "FIDELITY.md"
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_the_fidelity_table_names_exists() -> None:
    # Given the tests the table names
    named = NAMED_TEST.findall(TABLE.read_text())
    assert len(named) >= 20

    # Then each is a test function of the file it names
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not (ROOT / path).is_file() or name not in _tests_in(ROOT / path)
    ]
    assert missing == []


def test_every_row_names_its_source_and_where_it_is_enforced() -> None:
    rows = [line for line in TABLE.read_text().splitlines() if line.startswith("| ") and "---" not in line]
    for row in rows[1:]:
        behaviour, source, enforced, held = (cell.strip() for cell in row.strip("|").split(" | "))
        assert behaviour and enforced and held, row
        assert "http" in source or "botocore" in source, row


def test_the_readme_links_the_fidelity_table() -> None:
    assert "src/canaryfleet_local/FIDELITY.md" in (ROOT / "README.md").read_text()
