"""Reasons written for the person who built the bundle: short, clipped, in their terms."""

from __future__ import annotations

from canaryfleet.models.problems import clip, short


def name_as_written(name: str, width: int = 100) -> str:
    """A name from the bundle as is, or its repr where the plain text would hide part of it.

    Spaces around it, a no-break space or a control character decide whether the agent finds the
    file, and would be invisible in the reason.
    """
    return clip(name, width) if name.isprintable() and name == name.strip() else short(name, width)


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
