"""moto's responses serialized with the names of each member looked up once, not for every value.

moto builds a response by walking the operation's output shape and asking an attribute picker
for each structure member's value. The picker tries every name the value may be kept under
(the member's own name, its snake_case form, the shape's and its parent's names, the model's
serialization name), making six alias providers per member of every value it serializes. A
DynamoDB item is a structure per attribute with ten members (``S``, ``N``, ``M``, ...), nine of
them absent, so the picker took three quarters of a GetItem's time and most of the local cloud's
time in DynamoDB: the drains' functions, the rollout store and every approval.

The names tried depend only on the member's shape, its name, its parent structure and the
value's class (its name, and the ``Meta`` aliases moto's models declare on the class): they are
found once per class, by moto's own picker, and then tried in the same order on each value. A
value that could answer otherwise (its own ``Meta``, a ``__getattr__``) goes through moto's
picker unchanged. Each response also finds the transformer of each key path once (an EC2
instance list asked moto's transformer table the same questions for every instance). Nothing here
changes a response's bytes (``tests/integration/test_local_serializing.py`` compares them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from moto.core import responses as moto_responses
from moto.core.constants import MISSING
from moto.core.serialize import AttributePickerContext, XFormedAttributePicker
from moto.core.utils import get_value

# (class of the value, member shape, member name, parent structure) -> the names moto's picker
# tries, in its order. Shapes compare by identity and moto keeps each service's model for the
# life of the process, so the table holds at most one entry per member and class in use.
_names: dict[tuple[type, Any, str, Any], tuple[str, ...]] = {}


def _class_deciding_names(obj: Any) -> type | None:
    """The class whose names moto's picker tries for ``obj``, or None where ``obj`` may differ.

    Of moto's alias providers only two look at the value: its class's name (``ClassPrefixAlias``)
    and a ``Meta.serialization_aliases`` (``ExplicitAlias``), which moto's models declare on the
    class. A value with its own ``Meta``, a ``__getattr__`` that may answer for ``Meta``, or a
    ``__class__`` that is not its type is left to moto's picker every time.
    """
    cls: type = type(obj)
    if cls is dict:
        return dict
    own_meta = "Meta" in getattr(obj, "__dict__", ())
    answers_any_name = getattr(cls, "__getattr__", None) is not None
    return None if own_meta or answers_any_name or obj.__class__ is not cls else cls


class MemberNamesOnce(XFormedAttributePicker):
    """moto's ``XFormedAttributePicker``, with the names it tries for a member kept per class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One picker serializes one response: the transformer of each key path, found once.
        self._transforms: dict[str, Callable[[Any], Any] | None] = {}

    def __call__(self, context: AttributePickerContext) -> Any:
        obj = context.obj
        shape = context.shape
        cls = _class_deciding_names(obj) if shape is not None else None
        if cls is None:
            return super().__call__(context)
        cache_key = (cls, shape, context.key, getattr(shape, "parent", None))
        names = _names.get(cache_key)
        if names is None:
            # dict.fromkeys: moto's order, each name once (trying a name twice finds nothing new).
            names = tuple(dict.fromkeys(self.get_possible_keys(context)))
            _names[cache_key] = names
        value = None
        for name in names:
            # moto's get_value reads a dotted name as a path; a dict's other names are its keys.
            if cls is dict and "." not in name:
                found = obj.get(name, MISSING)
            else:
                found = get_value(obj, name, MISSING)
            if found is not MISSING:
                value = found
                break
        if self.response_transformers:
            transform = self._transform_for(f"{context.key_path}.{context.key}")
            if transform is not None:
                return transform(value)
        return value

    def _transform_for(self, key_path: str) -> Callable[[Any], Any] | None:
        """The first of the response's transformers whose path ends ``key_path``, as moto picks it
        (a list of 50 instances asks for the same paths 50 times)."""
        kept = self._transforms
        if key_path not in kept:
            kept[key_path] = next(
                (
                    transform
                    for transform_path, transform in self.response_transformers.items()
                    if key_path.endswith(transform_path)
                ),
                None,
            )
        return kept[key_path]


@contextlib.contextmanager
def member_names_once() -> Iterator[None]:
    """Serialize moto's responses with :class:`MemberNamesOnce` while the local cloud runs."""
    with mock.patch.object(moto_responses, "XFormedAttributePicker", MemberNamesOnce):
        yield
