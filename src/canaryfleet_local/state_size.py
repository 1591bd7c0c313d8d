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
- **DynamoDB**: ``TransactWriteItems`` deep-copied every table it writes to, whole, before its
  first write, to put the copy back if the transaction is cancelled. It now copies the items the
  transaction names (and the table's stream records, for a table with a stream) and, if the
  transaction fails, puts those back: the same tables afterwards, because a transaction writes
  only the items it names and every DynamoDB request runs whole under one lock
  (``DynamoDBConcurrentRequests``). A request whose keys cannot be read is left to moto's own
  backup.

Nothing here changes a response (``tests/integration/test_local_state_size.py`` compares each
with moto's own).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import functools
import importlib
import threading
import time
import types
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto import settings as moto_settings
from moto.core import responses as moto_responses
from moto.core import utils as moto_utils
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.ec2.models.tags import TagBackend
from moto.s3 import models as s3_models
from moto.s3 import urls as s3_urls
from moto.sqs import models as sqs_models

_original_unix_time = moto_utils.unix_time
_original_describe_tags = TagBackend.describe_tags
_original_method_names = moto_utils.method_names_from_class
_original_transact_write_items = DynamoDBBackend.transact_write_items
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


# An item's place in the backend: table name, partition key, sort key (None without one).
_ItemKey = tuple[str, DynamoType, DynamoType | None]


class _TransactionBackup:
    """What a transaction may change, copied before it runs: each item it names (None where
    there was none), whether the item's partition had a bucket in moto's table, and the stream
    records of each table with a stream."""

    def __init__(self, backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        self.items: dict[_ItemKey, tuple[bool, Item | None]] = {}
        self.streams: dict[str, list[Any]] = {}
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            name = op["TableName"]
            table = backend.tables[name]
            keys = op["Item"] if "Item" in op else op["Key"]
            hash_key, range_key = backend.get_keys_value(table, keys)
            place = (name, hash_key, range_key)
            if place not in self.items:
                had_bucket = hash_key in table.items  # before get_item: moto's defaultdict adds one
                found = table.get_item(hash_key, range_key)
                self.items[place] = (had_bucket, copy.deepcopy(found))
            if table.stream_shard is not None and name not in self.streams:
                self.streams[name] = list(table.stream_shard.items)

    def restore(self, backend: DynamoDBBackend) -> None:
        for (name, hash_key, range_key), (had_bucket, item) in self.items.items():
            table = backend.tables[name]
            if range_key is None:
                if item is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = item  # type: ignore[assignment]  # no sort key: moto keeps the item itself
                continue
            if item is not None:
                table.items[hash_key][range_key] = item
            elif hash_key in table.items:
                table.items[hash_key].pop(range_key, None)
            if not had_bucket and not table.items.get(hash_key, True):
                del table.items[hash_key]
        for name, records in self.streams.items():
            shard = backend.tables[name].stream_shard
            if shard is not None:
                shard.items = records


class _TablesNotCopied:
    """moto's ``copy`` module as its DynamoDB backend sees it: while a transaction runs on this
    thread with a backup of its own items, a deep copy of a whole table is the table itself."""

    def __init__(self) -> None:
        self.backed_up = threading.local()

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(value, Table) and getattr(self.backed_up, "active", False):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


_TABLES_NOT_COPIED = _TablesNotCopied()


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``transact_write_items``, with a backup of the items it names, not of whole tables."""
    try:
        backup = _TransactionBackup(self, transact_items)
    except Exception:  # keys moto refuses: its own checks, and its own backup, decide
        return _original_transact_write_items(self, transact_items)
    _TABLES_NOT_COPIED.backed_up.active = True
    try:
        return _original_transact_write_items(self, transact_items)
    except BaseException:
        backup.restore(self)
        raise
    finally:
        _TABLES_NOT_COPIED.backed_up.active = False


@contextlib.contextmanager
def costs_independent_of_state_size() -> Iterator[None]:
    """Install the changes above while the local cloud runs."""
    patches: list[tuple[Any, str, Any]] = [
        (sqs_models, "unix_time", unix_time),
        (sqs_models, "unix_time_millis", unix_time_millis),
        (moto_responses, "method_names_from_class", method_names_from_class),
        (TagBackend, "describe_tags", describe_tags),
        (s3_models.S3Backend, "_url_module", property(s3_url_module)),
        (dynamodb_models, "copy", _TABLES_NOT_COPIED),
        (DynamoDBBackend, "transact_write_items", transact_write_items),
    ]
    with contextlib.ExitStack() as stack:
        for owner, name, replacement in patches:
            stack.enter_context(mock.patch.object(owner, name, replacement))
        yield
