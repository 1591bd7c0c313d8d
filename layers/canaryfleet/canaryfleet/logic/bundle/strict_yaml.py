"""YAML as bundles may write it: safe types only, no aliases, no duplicate keys, no deep nesting."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from canaryfleet.errors import InvalidBundle
from canaryfleet.logic.bundle.messages import short

_MAX_YAML_DEPTH = 64


class _AliasNotAllowed(ComposerError):
    pass


class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader without aliases (no billion laughs), duplicate keys or deep nesting."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # check_event parses the next event into current_event.
        if self.check_event(AliasEvent):
            event = self.current_event
            raise _AliasNotAllowed(None, None, f"alias *{event.anchor}", event.start_mark)
        if self._depth >= _MAX_YAML_DEPTH:
            mark = self.current_event.start_mark
            raise ComposerError(None, None, f"nesting deeper than {_MAX_YAML_DEPTH} levels", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                key = self.construct_object(key_node)
                if key in seen:
                    raise ConstructorError(None, None, f"duplicate key {short(key)}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


#: Where each key and list item of a document starts: ("hooks", "ApplicationStart", 0) -> line 5.
Lines = dict[tuple[str | int, ...], int]


def load_yaml(text: str, label: str) -> object:
    """The document in ``text`` (from the file ``label``), or InvalidBundle saying where it breaks."""
    return load_yaml_with_lines(text, label)[0]


#: The text of each unquoted (plain) scalar, as written: ("permissions", 0, "mode") -> "0755".
PlainScalars = dict[tuple[str | int, ...], str]


def load_yaml_with_lines(text: str, label: str, plain: PlainScalars | None = None) -> tuple[object, Lines]:
    """The document and the line of each of its keys and items, so a reason can say where.

    ``plain``, if given, gets the text of every unquoted scalar value, for what YAML reads
    differently than written (``0755`` is the octal number 493).
    """
    try:
        loader = _StrictSafeLoader(text)
    except yaml.YAMLError as exc:  # the reader refuses characters YAML does not allow
        raise InvalidBundle(f"{label} is not valid YAML: {exc}") from None
    try:
        node = loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
        lines: Lines = {}
        if node is not None:
            _mark_lines(node, (), lines, plain)
        return document, lines
    except _AliasNotAllowed as exc:
        raise InvalidBundle(
            f"{label} uses a YAML alias ({exc.problem}{at(exc.problem_mark)}); aliases are not allowed"
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise InvalidBundle(f"{label} is not valid YAML: {exc.problem}{at(exc.problem_mark)}") from None
    except yaml.YAMLError as exc:
        raise InvalidBundle(f"{label} is not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _mark_lines(
    node: Node, path: tuple[str | int, ...], lines: Lines, plain: PlainScalars | None = None
) -> None:
    # Nesting is already bounded by the loader, so this recursion is too.
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode):
                lines[(*path, key_node.value)] = key_node.start_mark.line + 1
                _mark_lines(value_node, (*path, key_node.value), lines, plain)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _mark_lines(item, (*path, index), lines, plain)
    elif isinstance(node, ScalarNode) and plain is not None and node.style is None:
        plain[path] = node.value


def at(mark: yaml.Mark | None) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
