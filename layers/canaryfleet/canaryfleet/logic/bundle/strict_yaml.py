"""YAML as bundles may write it: safe types only, no aliases, no duplicate keys, no deep nesting."""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, Event, MappingStartEvent, ScalarEvent, StreamEndEvent
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

    def construct_checked_timestamp(self, node: ScalarNode) -> object:
        # PyYAML's own raises ValueError (2024-13-45) or AttributeError (!!timestamp x), not YAMLError.
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, AttributeError):
            raise ConstructorError(
                None, None, f"{short(node.value)} is not a valid date or time", node.start_mark
            ) from None


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_StrictSafeLoader.add_constructor(_TIMESTAMP, _StrictSafeLoader.construct_checked_timestamp)


class _NotForTheAgent(ComposerError):
    """What the CodeDeploy agent's YAML refuses to load: ``problem`` says what, ``context`` the fix."""


# The agent parses appspec.yml with YAML.load (application_specification.rb:28, parse), which on
# Ruby 3.1+ (Psych 4) loads only text, numbers, true/false, nil, symbols, lists and mappings: a
# date, a time or a set raises Psych::DisallowedClass and fails the deployment. Psych's
# ScalarScanner#tokenize (psych/scalar_scanner.rb) reads these unquoted scalars as a Time and a Date:
_RUBY_TIME = re.compile(
    r"-?[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t\n\v\f\r]+)[0-9]{1,2}:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
    r"(?:[ \t\n\v\f\r]*(?:Z|[-+][0-9]{1,2}:?(?:[0-9][0-9])?))?"
)
_RUBY_DATE = re.compile(r"[0-9]{4}-(?:1[012]|0[0-9]|[0-9])-(?:[12][0-9]|3[01]|0[0-9]|[0-9])")
# Tags whose scalars Psych does not tokenize (psych/visitors/to_ruby.rb, deserialize); it tokenizes
# plain untagged scalars and scalars with any other tag, quoted or not (!!timestamp "2024-05-01").
_NOT_TOKENIZED = frozenset({"tag:yaml.org,2002:str", "tag:yaml.org,2002:binary"})
_SET = "tag:yaml.org,2002:set"


class _AgentSafeLoader(_StrictSafeLoader):
    """The strict loader, refusing too what the CodeDeploy agent's Ruby YAML.load refuses."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self.check_event()  # parses the next event into current_event
        event = self.current_event
        if isinstance(event, ScalarEvent) and _tokenized_by_psych(event):
            value = event.value
            if _RUBY_TIME.fullmatch(value) or _RUBY_DATE.fullmatch(value):
                which = "time" if _RUBY_TIME.fullmatch(value) else "date"
                fix = f"quote it ('{value}') to keep it as text"
                if event.tag is not None:
                    fix = f"drop its tag {_shown(event.tag)} and {fix}"
                mark = self.current_event.start_mark  # not event.start_mark, which mypy types too narrowly
                raise _NotForTheAgent(fix, None, f"the {which} {short(value)}", mark)
        elif isinstance(event, MappingStartEvent) and event.tag == _SET:
            # to_ruby.rb, visit_Psych_Nodes_Mapping: !!set is a Psych::Set.
            mark = self.current_event.start_mark
            raise _NotForTheAgent("write a list instead", None, "a set (!!set)", mark)
        return super().compose_node(parent, index)

    def construct_timestamp_as_psych(self, node: ScalarNode) -> object:
        # What Psych would read as a date or time was refused when composed; what is left
        # (2024-13-45, or a !!timestamp tag on other text) Psych reads as text.
        return self.construct_scalar(node)


_AgentSafeLoader.add_constructor(_TIMESTAMP, _AgentSafeLoader.construct_timestamp_as_psych)


def _shown(tag: str) -> str:
    """A tag as written: tag:yaml.org,2002:timestamp is !!timestamp."""
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _tokenized_by_psych(event: ScalarEvent) -> bool:
    if event.tag is None:
        return event.style is None
    return event.tag not in _NOT_TOKENIZED


#: Where each key and list item of a document starts: ("hooks", "ApplicationStart", 0) -> line 5.
Lines = dict[tuple[str | int, ...], int]


def load_yaml(text: str, label: str) -> object:
    """The document in ``text`` (from the file ``label``), or InvalidBundle saying where it breaks."""
    return load_yaml_with_lines(text, label)[0]


#: The text of each unquoted (plain) scalar, as written: ("permissions", 0, "mode") -> "0755".
PlainScalars = dict[tuple[str | int, ...], str]


def load_yaml_with_lines(
    text: str,
    label: str,
    plain: PlainScalars | None = None,
    *,
    for_the_agent: bool = False,
    notes: list[str] | None = None,
) -> tuple[object, Lines]:
    """The document and the line of each of its keys and items, so a reason can say where.

    ``plain``, if given, gets the text of every unquoted scalar value, for what YAML reads
    differently than written (``0755`` is the octal number 493). ``for_the_agent``: the
    CodeDeploy agent loads the document too (appspec.yml), so what its YAML refuses is refused,
    and what it ignores (YAML after the first document) is ignored, and said in ``notes``.
    """
    try:
        loader = (_AgentSafeLoader if for_the_agent else _StrictSafeLoader)(text)
    except yaml.YAMLError as exc:  # the reader refuses characters YAML does not allow
        raise InvalidBundle(f"{label} is not valid YAML: {exc}") from None
    try:
        node = _first_node(loader, text, label, notes) if for_the_agent else loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
        lines: Lines = {}
        if node is not None:
            _mark_lines(node, (), lines, plain)
        return document, lines
    except _AliasNotAllowed as exc:
        raise InvalidBundle(
            f"{label} uses a YAML alias ({exc.problem}{at(exc.problem_mark)}); aliases are not allowed"
        ) from None
    except _NotForTheAgent as exc:
        raise InvalidBundle(
            f"{label} has {exc.problem}{at(exc.problem_mark)}, which CodeDeploy's agent cannot load: it"
            " reads the file with Ruby's YAML.load, which loads no dates, times or sets"
            f" (Psych::DisallowedClass), so the deployment would fail; {exc.context}"
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise InvalidBundle(f"{label} is not valid YAML: {exc.problem}{at(exc.problem_mark)}") from None
    except yaml.YAMLError as exc:
        raise InvalidBundle(f"{label} is not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _first_node(loader: _StrictSafeLoader, text: str, label: str, notes: list[str] | None) -> Node | None:
    """The first document, read no further, as the agent's YAML.load reads appspec.yml.

    Psych.load takes Psych.parse's node, and Psych.parse (psych.rb) returns from parse_stream at
    the first document's end: libyaml has then scanned up to the token that ends it (the next
    document's ---, a directive, or the first's own ...), and nothing after it is parsed. So a
    trailing ---, or a second document, even one that is not valid YAML, deploys.
    """
    _take_event(loader)  # StreamStartEvent
    if loader.check_event(StreamEndEvent):
        return None
    _take_event(loader)  # DocumentStartEvent
    node = loader.compose_node(None, None)  # type: ignore[arg-type]  # None: the document's root
    end = _take_event(loader)  # DocumentEndEvent: its end is where the first document's tokens end
    loader.anchors = {}
    mark = end.end_mark
    ignored = _first_content(text[mark.index :]) if mark is not None else None
    if notes is not None and mark is not None and ignored is not None:
        notes.append(
            f"{label}: what follows the first YAML document (from line {mark.line + 1 + ignored}) is"
            " ignored by CodeDeploy: its agent reads only the first document"
        )
    return node


def _take_event(loader: _StrictSafeLoader) -> Event:
    # The parser's get_event (untyped in PyYAML's stubs): parse the next event, and consume it.
    loader.check_event()
    event: Event = loader.current_event
    loader.current_event = None
    return event


def _first_content(rest: str) -> int | None:
    """The first line of YAML text after a document with more than markers and comments, if any."""
    for number, written in enumerate(rest.splitlines()):
        line = written.strip()
        if line[:3] in ("---", "...") and line[3:4] in ("", " ", "\t"):
            line = line[3:].strip()
        if line and not line.startswith("#"):
            return number
    return None


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
