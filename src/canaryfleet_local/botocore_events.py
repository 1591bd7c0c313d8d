"""Not an AWS behaviour: botocore's event names aliased once per process, not once per client.

botocore renames some services' event names before it emits or registers a handler (``EVENT_ALIASES``:
``api.sagemaker`` is ``sagemaker``, and so on), and keeps each answer in a cache of the emitter's
own. Every session and every client has a new emitter, so the cache starts empty each time; in the
local cloud every function's session and clients are new in every cloud, and working the names
out again took 3% of the suite's CPU and 0.4 s of the demo's. The answer depends only on the name
and the alias table, so the emitters made inside share one cache per table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any
from unittest import mock

import botocore.hooks

_CACHES: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


def shared_alias_cache(aliases: Mapping[str, str]) -> dict[str, str]:
    """The one cache of the event names aliased with ``aliases`` (a table and its copies)."""
    return _CACHES.setdefault(tuple(sorted(aliases.items())), {})


@contextlib.contextmanager
def event_names_aliased_once() -> Iterator[None]:
    """Every botocore event emitter made inside shares the aliased names of its alias table."""
    original = botocore.hooks.EventAliaser.__init__

    def __init__(self: botocore.hooks.EventAliaser, event_emitter: Any, event_aliases: Any = None) -> None:
        original(self, event_emitter, event_aliases)
        self._alias_name_cache = shared_alias_cache(self._event_aliases)  # type: ignore[attr-defined]

    with mock.patch.object(botocore.hooks.EventAliaser, "__init__", __init__):
        yield
