"""moto's responses serialized with the names of each member looked up once, not for every value.

moto builds a response by walking the operation's output shape and asking an attribute picker
for each structure member's value. The picker tries every name the value may be kept under
(the member's own name, its snake_case form, the shape's and its parent's names, the model's
serialization name), making six alias providers per member of every value it serializes. A
DynamoDB item is a structure per attribute with ten members (``S``, ``N``, ``M``, ...), nine of
them absent, so the picker took three quarters of a GetItem's time and most of the local cloud's
time in DynamoDB: the drains' functions, the rollout store and every approval.

For a value that is a plain ``dict`` (every item and most of moto's results) the names tried
depend only on the member's shape, its name and its parent structure: they are found once, by
moto's own picker, and then tried in the same order on each value. Any other value (moto's model
objects, which may name their own aliases) goes through moto's picker unchanged. Nothing here
changes a response's bytes (``tests/integration/test_local_serializing.py`` compares them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.core import responses as moto_responses
from moto.core.constants import MISSING
from moto.core.serialize import AttributePickerContext, XFormedAttributePicker
from moto.core.utils import get_value

# (member shape, member name, parent structure) -> the names moto's picker tries, in its order.
# Shapes compare by identity and moto keeps each service's model for the life of the process,
# so the table holds at most one entry per member of the models in use.
_names: dict[tuple[Any, str, Any], tuple[str, ...]] = {}


class MemberNamesOnce(XFormedAttributePicker):
    """moto's ``XFormedAttributePicker``, with the names it tries for a dict's member kept."""

    def __call__(self, context: AttributePickerContext) -> Any:
        obj = context.obj
        shape = context.shape
        if type(obj) is not dict or shape is None:
            return super().__call__(context)
        cache_key = (shape, context.key, getattr(shape, "parent", None))
        names = _names.get(cache_key)
        if names is None:
            # dict.fromkeys: moto's order, each name once (trying a name twice finds nothing new).
            names = tuple(dict.fromkeys(self.get_possible_keys(context)))
            _names[cache_key] = names
        value = None
        for name in names:
            # moto's get_value reads a dotted name as a path; any other name, as the dict's key.
            found = get_value(obj, name, MISSING) if "." in name else obj.get(name, MISSING)
            if found is not MISSING:
                value = found
                break
        if self.response_transformers:
            key_path = f"{context.key_path}.{context.key}"
            for transform_path, transform in self.response_transformers.items():
                if key_path.endswith(transform_path):
                    return transform(value)
        return value


@contextlib.contextmanager
def member_names_once() -> Iterator[None]:
    """Serialize moto's responses with :class:`MemberNamesOnce` while the local cloud runs."""
    with mock.patch.object(moto_responses, "XFormedAttributePicker", MemberNamesOnce):
        yield
