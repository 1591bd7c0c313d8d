"""Text from outside the CLI, printed as it is: never read as Rich markup.

What the CLI prints often quotes what someone else wrote: a file name in a bundle, a reason an
operator typed, a path, an AWS error message. Rich reads ``[...]`` in a printed string as
markup, so a bundle with a file named ``[/x]`` made `canaryfleet publish` fail with Rich's
MarkupError and a traceback instead of saying why the bundle is refused, and ``[bold]`` in a
reason changed how it looked. Every such message goes through :func:`labelled` or Rich's
``Text``.
"""

from __future__ import annotations

from pathlib import Path

from rich.style import Style
from rich.text import Text


def labelled(label: str, style: str, message: object) -> Text:
    """``label`` in ``style`` (e.g. "error: " in red), then ``message`` exactly as it reads."""
    return Text(label, style=style) + Text(str(message))


def file_link(label: str, path: str | Path) -> Text:
    """``label`` then ``path``, the path a terminal link to the file."""
    return Text(label) + Text(str(path), style=Style(link=Path(path).resolve().as_uri()))
