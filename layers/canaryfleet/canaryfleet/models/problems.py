"""Validation errors in the words of the person who wrote the input, not in pydantic's.

An operator who typed a freeze, a policy or a registry entry reads where the problem is and what
it is ("steps[1].bake.duration_seconds: ..."), without pydantic's "Value error, " prefix, its
error URLs or a model's class name.
"""

from __future__ import annotations

from pydantic import ValidationError


def problems(exc: ValidationError, most: int = 5) -> str:
    """Pydantic errors as a person reads them: 'steps[1].bake.duration_seconds: ...'."""
    found: list[str] = []
    for error in exc.errors(include_url=False):
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
        if error["type"] == "extra_forbidden":
            what = "unknown key"
        elif error["type"] == "missing":
            what = "required"
        elif error["type"] == "value_error":
            what = error["msg"].removeprefix("Value error, ")
        else:
            what = f"{error['msg']} (got {short(error['input'])})"
        found.append(f"{where.lstrip('.')}: {what}" if where else what)
    extra = len(found) - most
    return "; ".join(found[:most]) + (f"; and {extra} more" if extra > 0 else "")


def short(value: object, width: int = 100) -> str:
    """repr(value), clipped: reasons end up in Step Functions causes, which are limited in size."""
    return clip(repr(value), width)


def clip(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
