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
from typing import NoReturn

import typer
from rich.console import Console
from rich.style import Style
from rich.text import Text

_errors = Console(stderr=True, soft_wrap=True)


def labelled(label: str, style: str, message: object) -> Text:
    """``label`` in ``style`` (e.g. "error: " in red), then ``message`` exactly as it reads."""
    return Text(label, style=style) + Text(str(message))


def file_link(label: str, path: str | Path) -> Text:
    """``label`` then ``path``, the path a terminal link to the file."""
    return Text(label) + Text(str(path), style=Style(link=Path(path).resolve().as_uri()))


def fail(message: object, code: int = 1) -> NoReturn:
    """An operator command's error: "error: " in red, then ``message`` as written; exit ``code``."""
    _errors.print(labelled("error: ", "red", message), highlight=False)
    raise typer.Exit(code)
