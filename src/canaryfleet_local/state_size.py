"""moto's requests whose cost grew with what the local cloud holds, made as cheap as AWS's.

On AWS the time of these calls does not depend on how many messages a queue holds or how many
resources an account has tagged; on moto it did, and a drain of 500 instances (bench figure 3),
50 applications at once (figure 6) and every e2e test paid for it on the functions' own clock:

- **SQS**: every ``SendMessage`` reads the queue's attributes (for ``ContentBasedDeduplication``),
  which counts its visible, in-flight and delayed messages, asking each message three times for
  the time with ``moto.core.utils.unix_time_millis`` (two ``datetime`` constructions and a
  subtraction each). A drain queue with 500 orders spent most of each send there. The time is
  read from ``time.time()`` instead: the same number (seconds since the epoch, UTC), without the
  datetimes.
- **EC2**: ``DescribeTags`` filtered by ``resource-id`` ran moto's regular expressions over every
  tag of every resource (instances, their volumes and interfaces). With literal resource ids it
  now looks at those resources' tags only, through moto's own filtering, so results and their
  order are moto's; a value with a wildcard (``*``, ``?``, ``[``) goes through moto unchanged.
- **S3**: moto reloaded its S3 URL module (``importlib.reload``: the module's code run again) on
  every S3 request, in case ``MOTO_S3_CUSTOM_ENDPOINTS`` had changed; it is reloaded when that
  variable changes.
- **Every service**: moto listed a response class's methods with ``inspect.getmembers`` on every
  request to find the action's handler; the list is kept per class (classes do not change).

Nothing here changes a response (``tests/integration/test_local_state_size.py`` compares each
with moto's own).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib
import time
import types
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from moto import settings as moto_settings
from moto.core import responses as moto_responses
from moto.core import utils as moto_utils
from moto.ec2.models.tags import TagBackend
from moto.s3 import models as s3_models
from moto.s3 import urls as s3_urls
from moto.sqs import models as sqs_models

_original_unix_time = moto_utils.unix_time
_original_describe_tags = TagBackend.describe_tags
_original_method_names = moto_utils.method_names_from_class
_WILDCARDS = frozenset("*?[")


def unix_time(dt: datetime.datetime | None = None) -> float:
    """moto's ``unix_time``: seconds since the epoch of ``dt`` (naive UTC), or of now."""
    return time.time() if dt is None else _original_unix_time(dt)


def unix_time_millis(dt: datetime.datetime | None = None) -> float:
    return unix_time(dt) * 1000.0


@functools.cache
def method_names_from_class(clazz: type) -> list[str]:
    """moto's list of a response class's methods, made once per class.

    The list is moto's own; callers only read it (``call_action`` tests membership)."""
    return _original_method_names(clazz)


# The custom endpoints the module was last loaded with (None: not known, loaded at first use).
_s3_urls_for: list[tuple[str, ...] | None] = [None]


def s3_url_module(self: s3_models.S3Backend) -> types.ModuleType:
    """moto's S3 URL module, reloaded (as moto does on every request) only when the custom
    endpoints it was made with have changed."""
    endpoints = tuple(moto_settings.get_s3_custom_endpoints())
    if _s3_urls_for[0] != endpoints:
        importlib.reload(s3_urls)
        _s3_urls_for[0] = endpoints
    return s3_urls


def describe_tags(self: TagBackend, filters: dict[str, list[str]] | None = None) -> list[dict[str, str]]:
    """moto's ``describe_tags``, over the named resources only when they are named literally."""
    ids = (filters or {}).get("resource-id")
    if not ids or any(_WILDCARDS & set(value) or "\\" in value for value in ids):
        return _original_describe_tags(self, filters)
    wanted = set(ids)
    # moto's method reads ``self.tags`` and the class's filter names only: give it those
    # resources' tags, in moto's order, and the rest of its filtering runs unchanged.
    view = types.SimpleNamespace(
        tags={rid: tags for rid, tags in self.tags.copy().items() if rid in wanted},
        VALID_TAG_FILTERS=self.VALID_TAG_FILTERS,
    )
    return _original_describe_tags(view, filters)  # type: ignore[arg-type]


@contextlib.contextmanager
def costs_independent_of_state_size() -> Iterator[None]:
    """Install the changes above while the local cloud runs."""
    patches: list[tuple[Any, str, Callable[..., Any] | property]] = [
        (sqs_models, "unix_time", unix_time),
        (sqs_models, "unix_time_millis", unix_time_millis),
        (moto_responses, "method_names_from_class", method_names_from_class),
        (TagBackend, "describe_tags", describe_tags),
        (s3_models.S3Backend, "_url_module", property(s3_url_module)),
    ]
    with contextlib.ExitStack() as stack:
        for owner, name, replacement in patches:
            stack.enter_context(mock.patch.object(owner, name, replacement))
        yield
