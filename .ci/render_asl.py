"""Render each statemachines/*.asl.yaml (the source) into the *.asl.json Step Functions reads.

The YAML writes a repeated Retry policy once, as an anchor under the top-level `x-retry-policies`
key, and each state refers to it by alias. Neither SAM nor CloudFormation can take that file as
it is: CloudFormation's Step Functions resource parses a YAML definition with Jackson's tree
model, which does not expand anchors and aliases (aws-cloudformation-resource-providers-
stepfunctions, DefinitionProcessor.java). So this script expands them and writes JSON, and
`template.yaml`'s DefinitionUri keeps naming the JSON.

Keys starting with `x-` at the top level are the source's own (anchors, notes) and are dropped;
Amazon States Language has no such field. A key given twice in one mapping (a state named twice)
is refused instead of silently keeping the last one.

Usage: python .ci/render_asl.py          write every *.asl.json from its *.asl.yaml (`make asl`)
       python .ci/render_asl.py --check  exit 1 if a committed *.asl.json is not the rendering
                                         of its source, or has no source (`make lint`)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
STATE_MACHINES = REPO / "statemachines"
SOURCE_ONLY_PREFIX = "x-"
EDIT_THE_SOURCE = "edit the YAML, run `make asl`"


class DuplicateKeyError(ValueError):
    """A mapping of the YAML source names the same key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (it keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)  # resolve `<<` merge keys first, so a merge never counts as a duplicate
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(f"{key!r} given twice {key_node.start_mark}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def json_path(source: Path) -> Path:
    """Where the rendering of `x.asl.yaml` goes: `x.asl.json` beside it."""
    return source.with_name(source.name.removesuffix(".yaml") + ".json")


def render(source: Path) -> str:
    """The deployed JSON of one YAML source: aliases expanded, `x-` keys dropped, keys in source order."""
    definition = yaml.load(source.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    if not isinstance(definition, dict):
        raise TypeError(f"{source}: a state machine definition is a mapping")
    definition = {k: v for k, v in definition.items() if not str(k).startswith(SOURCE_ONLY_PREFIX)}
    return json.dumps(definition, indent=2) + "\n"


def stale(directory: Path = STATE_MACHINES) -> list[str]:
    """Why each committed JSON definition is not what its source renders to (empty when all agree)."""
    problems: list[str] = []
    sources = sorted(directory.glob("*.asl.yaml"))
    for source in sources:
        target = json_path(source)
        if not target.exists():
            problems.append(f"{target.name} is missing: run `make asl`")
        elif target.read_text() != render(source):
            problems.append(f"{target.name} is not the rendering of {source.name}: {EDIT_THE_SOURCE}")
    rendered = {json_path(s).name for s in sources}
    problems += [
        f"{p.name} has no {p.name.removesuffix('.json')}.yaml source"
        for p in sorted(directory.glob("*.asl.json"))
        if p.name not in rendered
    ]
    return problems


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        problems = stale()
        for problem in problems:
            print(f"statemachines/{problem}")
        return 1 if problems else 0
    if argv:
        print(__doc__)
        return 2
    for source in sorted(STATE_MACHINES.glob("*.asl.yaml")):
        json_path(source).write_text(render(source))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
