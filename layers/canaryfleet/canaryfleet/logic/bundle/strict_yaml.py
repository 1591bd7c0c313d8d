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
from yaml.scanner import ScannerError
from yaml.tokens import TagToken

from canaryfleet.errors import InvalidBundle
from canaryfleet.models.problems import short

_MAX_YAML_DEPTH = 64


class _AliasNotAllowed(ComposerError):
    pass


_BREAKS = "\r\n\x85\u2028\u2029"
_BREAKZ = "\0" + _BREAKS  # a line break, or the end of the text (the reader's "\0")
_BLANKZ = " \t" + _BREAKZ
_TAB_INDENTS = "a tab in the indentation (YAML indents with spaces only)"


class _LibyamlScanningLoader(yaml.SafeLoader):
    """PyYAML's pure-Python SafeLoader, scanning blanks and directives as libyaml does.

    The CodeDeploy agent reads appspec.yml with Ruby's YAML.load (application_specification.rb:28,
    parse): Psych, whose parser is libyaml (0.2.5). libyaml skips a tab between tokens unless it
    could be indentation (src/scanner.c, yaml_parser_scan_to_next_token): "Tabs are allowed: in the
    flow context; in the block context, but not at the beginning of the line or after '-', '?', or
    ':' (complex value)", that is while ``flow_level || !simple_key_allowed``. It reads a tab as it
    reads a space (IS_BLANK) between and after the words of a plain scalar
    (yaml_parser_scan_plain_scalar), after a block scalar's indicators (yaml_parser_scan_block_scalar),
    after a tag (yaml_parser_scan_tag) and in directives (yaml_parser_scan_directive and the
    functions it calls). PyYAML's pure-Python scanner reads only spaces in those places ("found
    character '\\t' that cannot start any token"), so it refused appspecs that the agent deploys,
    such as ``runas:<TAB>root``. PyYAML's ``allow_simple_key`` and ``flow_level`` are libyaml's
    ``simple_key_allowed`` and ``flow_level``, set by the same fetch steps, so the methods below apply
    libyaml's rules to PyYAML's state. A tab as indentation stays refused, as libyaml refuses it.
    So does a directive other than %YAML and %TAG, which PyYAML ignores and libyaml refuses.
    """

    # -- between tokens -------------------------------------------------------------------------
    def scan_to_next_token(self) -> None:
        # yaml_parser_scan_to_next_token. A byte order mark is skipped at the start only, as before.
        if self.index == 0 and self.peek() == "\ufeff":
            self.forward()
        while True:
            while self.peek() == " " or (
                self.peek() == "\t" and (self.flow_level or not self.allow_simple_key)
            ):
                self.forward()
            if self.peek() == "\t":
                # libyaml stops at this tab, and no token starts with one (yaml_parser_fetch_next_token):
                # refused either way; this says why rather than "cannot start any token".
                raise ScannerError(
                    "while scanning for the next token", None, self._tab_here(), self.get_mark()
                )
            if self.peek() == "#":
                while self.peek() not in _BREAKZ:
                    self.forward()
            if not self._line_break():
                return
            if not self.flow_level:
                self.allow_simple_key = True

    def _tab_here(self) -> str:
        before = str(self.buffer[max(0, self.pointer - self.column) : self.pointer]).rstrip(" \t")
        if not before:
            return _TAB_INDENTS
        # After "- ", "? " or a complex key's ": " the blanks indent what follows on the line.
        return f"a tab after '{before[-1]}' (YAML allows only spaces there: they indent what follows)"

    def _line_break(self) -> str:
        return str(self.scan_line_break())  # type: ignore[no-untyped-call]  # untyped in PyYAML's stubs

    def _tag_handle(self, name: str, start_mark: yaml.Mark) -> str:
        return str(self.scan_tag_handle(name, start_mark))  # type: ignore[no-untyped-call]  # likewise

    def _expect(self, allowed: str, what: str, context: str, start_mark: yaml.Mark | None) -> None:
        """Go on only at one of ``allowed``; else the scanner's "expected ..., but found ..." error."""
        if self.peek() not in allowed:
            problem = f"expected {what}, but found {self.peek()!r}"
            raise ScannerError(context, start_mark, problem, self.get_mark())

    def _skip_blanks(self) -> None:
        while self.peek() in " \t":
            self.forward()

    # -- plain scalars --------------------------------------------------------------------------
    def scan_plain_spaces(self, indent: int, start_mark: yaml.Mark) -> list[str] | None:
        # yaml_parser_scan_plain_scalar, "Consume blank characters": spaces and tabs, and after a
        # line break no tab left of the scalar's indentation ("found a tab character that violates
        # indentation"). PyYAML's own reads spaces only; what it returns is unchanged.
        length = 0
        while self.peek(length) in " \t":
            length += 1
        whitespaces = str(self.prefix(length))
        self.forward(length)
        if self.peek() not in _BREAKS:
            return [whitespaces] if whitespaces else []
        line_break = self._line_break()
        self.allow_simple_key = True
        if self._at_document_marker():
            return None
        breaks: list[str] = []
        while self.peek() in " \t" + _BREAKS:
            if self.peek() == "\t" and self.column < indent:
                raise ScannerError("while scanning a plain scalar", start_mark, _TAB_INDENTS, self.get_mark())
            if self.peek() in " \t":
                self.forward()
                continue
            breaks.append(self._line_break())
            if self._at_document_marker():
                return None
        if line_break != "\n":
            return [line_break, *breaks]
        return breaks or [" "]

    def _at_document_marker(self) -> bool:
        return self.prefix(3) in ("---", "...") and self.peek(3) in _BLANKZ

    # -- block scalars --------------------------------------------------------------------------
    def scan_block_scalar_indicators(self, start_mark: yaml.Mark) -> tuple[bool | None, int | None]:
        # yaml_parser_scan_block_scalar: the indicators, in either order, then blanks and a comment,
        # or the line break (no blank is needed before the comment: "|-#note" loads).
        chomping: bool | None = None
        increment: int | None = None
        while True:
            ch = self.peek()
            if ch in "+-" and chomping is None:
                chomping = ch == "+"
            elif ch in "0123456789" and increment is None:
                if ch == "0":
                    problem = "expected indentation indicator in the range 1-9, but found 0"
                    raise ScannerError("while scanning a block scalar", start_mark, problem, self.get_mark())
                increment = int(ch)
            else:
                break
            self.forward()
        self._expect(
            _BLANKZ + "#", "chomping or indentation indicators", "while scanning a block scalar", start_mark
        )
        return chomping, increment

    def scan_block_scalar_ignored_line(self, start_mark: yaml.Mark) -> None:
        self._skip_blanks()
        super().scan_block_scalar_ignored_line(start_mark)

    def scan_block_scalar_indentation(self) -> tuple[list[str], int, yaml.Mark]:
        # yaml_parser_scan_block_scalar_breaks while the indentation is not yet known: a tab after
        # the leading spaces is refused ("a tab character where an indentation space is expected"),
        # where PyYAML's own read "  <TAB>x" as the line "<TAB>x".
        chunks, max_indent, end_mark = super().scan_block_scalar_indentation()
        if self.peek() == "\t":
            raise ScannerError("while scanning a block scalar", None, _TAB_INDENTS, self.get_mark())
        return chunks, max_indent, end_mark

    def scan_block_scalar_breaks(self, indent: int) -> tuple[list[str], yaml.Mark]:
        # yaml_parser_scan_block_scalar_breaks once the indentation is known: no tab left of it.
        chunks: list[str] = []
        end_mark = self.get_mark()
        while True:
            while self.column < indent and self.peek() == " ":
                self.forward()
            if self.column < indent and self.peek() == "\t":
                raise ScannerError("while scanning a block scalar", None, _TAB_INDENTS, self.get_mark())
            if self.peek() not in _BREAKS:
                return chunks, end_mark
            chunks.append(self._line_break())
            end_mark = self.get_mark()

    # -- tags -----------------------------------------------------------------------------------
    def scan_tag(self) -> TagToken:
        # PyYAML's, ending the tag at a tab too (yaml_parser_scan_tag: IS_BLANKZ after the tag).
        start_mark = self.get_mark()
        ch = self.peek(1)
        if ch == "<":
            handle = None
            self.forward(2)
            suffix = self.scan_tag_uri("tag", start_mark)
            self._expect(">", "'>'", "while parsing a tag", start_mark)
            self.forward()
        elif ch in _BLANKZ:
            handle = None
            suffix = "!"
            self.forward()
        else:
            length = 1
            while ch not in _BLANKZ and ch != "!":
                length += 1
                ch = self.peek(length)
            if ch == "!":
                handle = self._tag_handle("tag", start_mark)
            else:
                handle = "!"
                self.forward()
            suffix = self.scan_tag_uri("tag", start_mark)
        self._expect(_BLANKZ, "' '", "while scanning a tag", start_mark)
        return TagToken((handle, suffix), start_mark, self.get_mark())

    # -- directives (%YAML 1.1, %TAG ! tag:example.com,2024:) ------------------------------------
    def scan_directive_name(self, start_mark: yaml.Mark) -> str:
        length = 0
        while self.peek(length).isascii() and (self.peek(length).isalnum() or self.peek(length) in "-_"):
            length += 1
        name = str(self.prefix(length))
        self.forward(length)
        if not name or self.peek() not in _BLANKZ:
            problem = f"expected alphabetic or numeric character, but found {self.peek()!r}"
            raise ScannerError("while scanning a directive", start_mark, problem, self.get_mark())
        if name not in ("YAML", "TAG"):
            # yaml_parser_scan_directive refuses it, where PyYAML's ignores the line.
            problem = f"an unknown directive %{name} (only %YAML and %TAG are read)"
            raise ScannerError("while scanning a directive", start_mark, problem, start_mark)
        return name

    def scan_yaml_directive_value(self, start_mark: yaml.Mark) -> tuple[int, int]:
        self._skip_blanks()
        major = self.scan_yaml_directive_number(start_mark)
        self._expect(".", "a digit or '.'", "while scanning a directive", start_mark)
        self.forward()
        minor = self.scan_yaml_directive_number(start_mark)
        self._expect(_BLANKZ, "a digit or ' '", "while scanning a directive", start_mark)
        return major, minor

    def scan_tag_directive_value(self, start_mark: yaml.Mark) -> tuple[str, str]:
        self._skip_blanks()
        handle = self._tag_handle("directive", start_mark)
        self._expect(" \t", "' '", "while scanning a directive", start_mark)
        self._skip_blanks()
        prefix = self.scan_tag_uri("directive", start_mark)
        self._expect(_BLANKZ, "' '", "while scanning a directive", start_mark)
        return handle, prefix

    def scan_directive_ignored_line(self, start_mark: yaml.Mark) -> None:
        self._skip_blanks()
        super().scan_directive_ignored_line(start_mark)


class _StrictSafeLoader(_LibyamlScanningLoader):
    """SafeLoader without aliases (no billion laughs), duplicate keys or deep nesting."""

    _depth = 0
    _duplicate_keys_read = ""  # what a reader makes of a duplicate key, said after it

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
                if not isinstance(key, Hashable):
                    # A collection tag on a scalar key (!!set notes: x): PyYAML makes the key an
                    # empty set or list, which no mapping can hold.
                    said = f"the key {short(key_node.value)} has the tag {key_node.tag}; drop the tag"
                    raise ConstructorError(None, None, said, key_node.start_mark)
                if key in seen:
                    said = f"duplicate key {short(key)}{self._duplicate_keys_read}"
                    raise ConstructorError(None, None, said, key_node.start_mark)
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

    # The agent's Psych keeps the last and drops the others without a word: a second BeforeInstall
    # block would silently replace the first.
    _duplicate_keys_read = " (the CodeDeploy agent would silently keep only the last)"

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
