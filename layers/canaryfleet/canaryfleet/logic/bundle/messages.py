"""Reasons written for the person who built the bundle: short, clipped, in their terms."""

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


def name_as_written(name: str, width: int = 100) -> str:
    """A name from the bundle as is, or its repr where the plain text would hide part of it.

    Spaces around it, a no-break space or a control character decide whether the agent finds the
    file, and would be invisible in the reason.
    """
    return clip(name, width) if name.isprintable() and name == name.strip() else short(name, width)


def clip(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def describe(exc: Exception) -> str:
    return clip(str(exc) or type(exc).__name__, 200)


def kind(value: object) -> str:
    return "empty" if value is None else f"a {type(value).__name__}"


def size_text(count: int) -> str:
    if count < 1024:
        return f"{count:,} bytes"
    size, unit = count / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:,.1f} {unit}"
