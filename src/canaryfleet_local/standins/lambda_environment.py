"""Lambda: each execution environment has environment variables of its own."""

from __future__ import annotations

import contextlib
import os
from collections.abc import ItemsView, Iterator, KeysView, Mapping, MutableMapping, ValuesView
from contextvars import ContextVar
from unittest import mock

# The variables of the invocation running in this context (None: a name it deleted), or None
# outside any invocation. A context is a thread here; nested invocations set and reset it.
_INVOCATION_VARIABLES: ContextVar[dict[str, str | None] | None] = ContextVar(
    "lambda_invocation_variables", default=None
)


class LambdaExecutionEnvironmentVariables(MutableMapping[str, str]):
    """Stands in for each Lambda execution environment having its own environment variables.

    On AWS a function's variables live in its own sandbox. Here every in-process invocation
    shares one process, whose ``os.environ`` the code driving the local cloud (tests, typer's
    runner, the simulator, moto's threads) reads and changes too. Installed as ``os.environ``,
    this mapping shows an invocation the variables it was given (the function's template
    variables and what the Lambda runtime sets) over the process's, and keeps what the
    invocation sets or deletes to itself; outside an invocation it is the process environment.
    Nothing an invocation does reaches the process environment. Walking it (``items()``,
    ``copy()``: botocore does so to create a client) reads one snapshot, so a variable another
    thread removes meanwhile is left out instead of raising KeyError.
    """

    def __init__(self, process: MutableMapping[str, str]) -> None:
        self.process = process

    @classmethod
    @contextlib.contextmanager
    def installed(cls) -> Iterator[LambdaExecutionEnvironmentVariables]:
        """Put the mapping in ``os.environ``'s place (once: a nested install shares it)."""
        if isinstance(os.environ, cls):
            yield os.environ
            return
        variables = cls(os.environ)
        with mock.patch.object(os, "environ", variables):
            yield variables

    @staticmethod
    @contextlib.contextmanager
    def invocation(variables: Mapping[str, str]) -> Iterator[None]:
        """While the block runs, this context (thread) sees ``variables`` over the process's."""
        if not isinstance(os.environ, LambdaExecutionEnvironmentVariables):
            raise RuntimeError("an invocation's variables need LambdaExecutionEnvironmentVariables installed")
        token = _INVOCATION_VARIABLES.set(dict(variables))
        try:
            yield
        finally:
            _INVOCATION_VARIABLES.reset(token)

    def _snapshot(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for name in list(self.process):  # os.environ iterates over a copy of its keys
            value = self.process.get(name)  # None: removed since by another thread
            if value is not None:
                merged[name] = value
        for name, own in (_INVOCATION_VARIABLES.get() or {}).items():
            if own is None:
                merged.pop(name, None)
            else:
                merged[name] = own
        return merged

    def __getitem__(self, name: str) -> str:
        own = _INVOCATION_VARIABLES.get()
        if own is not None and name in own:
            value = own[name]
            if value is None:
                raise KeyError(name)
            return value
        return self.process[name]

    def __setitem__(self, name: str, value: str) -> None:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(
                f"environment variables are str, not {type(name).__name__}={type(value).__name__}"
            )
        own = _INVOCATION_VARIABLES.get()
        if own is None:
            self.process[name] = value
        else:
            own[name] = value

    def __delitem__(self, name: str) -> None:
        own = _INVOCATION_VARIABLES.get()
        if own is None:
            del self.process[name]
            return
        if name not in self:
            raise KeyError(name)
        own[name] = None

    def __iter__(self) -> Iterator[str]:
        return iter(self._snapshot())

    def __len__(self) -> int:
        return len(self._snapshot())

    def keys(self) -> KeysView[str]:
        return self._snapshot().keys()

    def items(self) -> ItemsView[str, str]:
        return self._snapshot().items()

    def values(self) -> ValuesView[str]:
        return self._snapshot().values()

    def copy(self) -> dict[str, str]:
        return self._snapshot()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._snapshot()!r})"
