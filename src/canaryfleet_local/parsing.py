"""Templates, state machine definitions and DynamoDB update expressions parsed once per text, with
the C parsers where they exist.

The local cloud parses the same texts again and again: moto's CloudFormation reads every
TemplateBody (the platform's JSON, each fleet's YAML) with PyYAML's pure-Python loader, the
template rules read it once more, and moto's Step Functions lexes and parses a state machine's
definition with ANTLR for every execution it starts. Those parses took most of the local cloud's
start and a good part of every rollout, for texts that did not change.

Nothing here changes what a text means: JSON is read by ``json``, YAML by the same constructors
(samtranslator's for the template rules and ``template.yaml``, moto's own for moto, but for the
``!Condition`` short form, read as CloudFormation reads it: ``standins/cloudformation.py``) on PyYAML's
C parser, and every caller gets its own copy of the result (callers change what they are given).
A state machine's ANTLR parse tree is kept per definition text, and moto's preprocessor still
builds fresh evaluation components from it for every execution; a definition already parsed
without error is not preprocessed again only to be validated.

moto's DynamoDB parses an ``UpdateExpression`` twice for every UpdateItem (once to check its
placeholders, once to run it) and once more for each Update of a TransactWriteItems: a fifth of
an UpdateItem's time in a drain. Its tree is kept per text; moto only reads it (its validator
works on a deep copy of its own), and an expression moto refuses is refused every time.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import yaml
from moto.cloudformation import models as cloudformation_models
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.stepfunctions.parser.asl.parse import asl_parser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from samtranslator.yaml_helper import intrinsics_multi_constructor

from canaryfleet_local.standins.cloudformation import cloudformation_yaml_tag

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseFullLoader: Any = getattr(yaml, "CLoader", yaml.Loader)


class _IntrinsicsLoader(_BaseLoader):  # type: ignore[misc]
    """samtranslator's ``yaml_parse``: safe loading, with ``!Ref`` and friends as intrinsics."""


class _MotoLoader(_BaseFullLoader):  # type: ignore[misc]
    """moto's template loader (``yaml.Loader`` and moto's tag constructor), on the C parser."""


_IntrinsicsLoader.add_multi_constructor("!", intrinsics_multi_constructor)
# moto's constructor, with CloudFormation's ``!Condition`` (a stand-in: moto's differs).
_MotoLoader.add_multi_constructor("", cloudformation_yaml_tag)

_CACHE_SIZE = 32


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parsed_template(digest: str, text: str) -> Any:
    if text.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            return json.loads(text)
    return yaml.load(text, Loader=_IntrinsicsLoader)  # noqa: S506 - a safe loader


def parse_template(text: str) -> Any:
    """A CloudFormation or SAM template (JSON or YAML) as samtranslator's ``yaml_parse`` reads it."""
    return copy.deepcopy(_parsed_template(_digest(text), text))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _moto_parsed_template(digest: str, text: str) -> Any:
    if text.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            return json.loads(text)
    return yaml.load(text, Loader=_MotoLoader)  # noqa: S506 - moto's own loader, on the C parser


def _moto_parse_template(template: str) -> dict[str, Any]:
    """Stands in for ``moto.cloudformation.models.Stack.parse_template``: the same dict, sooner.

    moto tries ``yaml.load`` first and falls back to ``json.loads`` on a YAML error; a JSON text
    is also YAML meaning the same, so reading it as JSON gives what moto would have built.
    """
    parsed: dict[str, Any] = copy.deepcopy(_moto_parsed_template(_digest(template), template))
    return parsed


class _ParseTrees:
    """The ANTLR parse tree of each state machine definition, made once (thread-safe)."""

    def __init__(self, original: Callable[[str], tuple[Any, Any]]) -> None:
        self._original = original
        self._trees: dict[str, Any] = {}
        self._lock = threading.Lock()

    def parse(self, definition: str) -> tuple[Any, Any]:
        with self._lock:
            tree = self._trees.get(definition)
        if tree is None:
            program, tree = self._original(definition)  # raises what moto raises on a bad definition
            with self._lock:
                if len(self._trees) >= _CACHE_SIZE:
                    self._trees.clear()
                self._trees[definition] = tree
            return program, tree
        # Fresh evaluation components each time: moto's components hold per-execution state.
        return Preprocessor().visit(tree), tree

    def validate(self, definition: str) -> None:
        """In place of moto's ``_validate_definition`` (CreateStateMachine, UpdateStateMachine).

        moto validates by parsing and preprocessing the definition and dropping the result. A text
        kept here was parsed and preprocessed without error, so it is valid again without a second
        preprocessing; any other text is validated by moto, as before.
        """
        with self._lock:
            known = definition in self._trees
        if not known:
            self._validate(definition)

    # moto's own, kept before parsed_once patches it.
    _validate: Callable[[str], None] = staticmethod(StepFunctionsParserBackend._validate_definition)


# One for the process, like the templates' parses above: every local cloud creates the same two
# state machines, and moto parses each definition again to validate it (CreateStateMachine) and
# to run it (StartExecution).
_TREES = _ParseTrees(asl_parser.AmazonStateLanguageParser.parse)


_parse_update_expression = UpdateExpressionParser.make


@functools.lru_cache(maxsize=256)
def _update_expression(text: str) -> Any:
    """moto's tree of an UpdateExpression (a refusal raises, and is not kept)."""
    return _parse_update_expression(text)


def _make_update_expression(cls: type, expression_str: str) -> Any:
    """In place of moto's ``UpdateExpressionParser.make``: the tree of a text, parsed once."""
    return _update_expression(expression_str)


@contextlib.contextmanager
def parsed_once() -> Iterator[None]:
    """moto's CloudFormation, Step Functions and DynamoDB reuse their parses of unchanged texts."""
    with (
        mock.patch.object(cloudformation_models.Stack, "parse_template", staticmethod(_moto_parse_template)),
        mock.patch.object(asl_parser.AmazonStateLanguageParser, "parse", staticmethod(_TREES.parse)),
        mock.patch.object(StepFunctionsParserBackend, "_validate_definition", staticmethod(_TREES.validate)),
        mock.patch.object(UpdateExpressionParser, "make", classmethod(_make_update_expression)),
    ):
        yield
