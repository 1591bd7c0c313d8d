"""Each handler and layer source file compiled once per process, however many functions import it.

Every function of the local cloud imports its own copy of the layer's modules and its handler
module (its own execution environment, see ``standins.lambda_``), and every local cloud of a
process does so again: a test session imports the same files hundreds of times. Python keeps
no compiled code for a module imported anew under a name it already dropped, and where bytecode
is not written (``PYTHONDONTWRITEBYTECODE``, a read-only checkout) it compiles the source every
time: most of a cold start's time on the local cloud.

The code objects are kept per file, size and modification time (an edited file is compiled
again), and executed afresh for each import, so each copy of a module still gets its own state.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import CodeType
from typing import Any, cast
from unittest import mock

_codes: dict[tuple[str, int, int], CodeType] = {}
_lock = threading.Lock()


@contextlib.contextmanager
def compiled_once(roots: Iterable[Path]) -> Iterator[None]:
    """While installed, source files under ``roots`` are compiled at most once per version."""
    prefixes = tuple(str(root.resolve()) + os.sep for root in roots)
    original = importlib.machinery.SourceFileLoader.get_code

    def get_code(loader: Any, fullname: str) -> Any:
        path = loader.get_filename(fullname)
        if not (isinstance(path, str) and path.endswith(".py") and path.startswith(prefixes)):
            return original(loader, fullname)
        status = Path(path).stat()
        key = (path, status.st_mtime_ns, status.st_size)
        with _lock:
            known = _codes.get(key)
        if known is not None:
            return known
        code = cast(CodeType, original(loader, fullname))
        with _lock:
            _codes[key] = code
        return code

    with mock.patch.object(importlib.machinery.SourceFileLoader, "get_code", get_code):
        yield
