"""Text from outside the CLI, printed as it is: never read as Rich markup.

What the CLI prints often quotes what someone else wrote: a file name in a bundle, a reason an
operator typed, a path, an AWS error message. Rich reads ``[...]`` in a printed string as
markup, so a bundle with a file named ``[/x]`` made `canaryfleet publish` fail with Rich's
MarkupError and a traceback instead of saying why the bundle is refused, and ``[bold]`` in a
reason changed how it looked. Every such message goes through :func:`labelled` or Rich's
``Text``.

What they say is also shown as it is, not obeyed: a terminal reads control characters (an
escape sequence that draws a fake link, erases a line or moves the cursor) as commands, so
:func:`shown` writes every character that does not print as a visible escape (``\\x1b``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NoReturn

import typer
from canaryfleet.errors import CanaryfleetError
from canaryfleet.models.text import escaped
from rich.console import Console
from rich.style import Style
from rich.text import Text

_errors = Console(stderr=True, soft_wrap=True)

# Line breaks and tabs print as such; every other character of the categories the platform
# refuses in what people type (canaryfleet.models.text) is written as its escape.
_KEPT = frozenset({"\n", "\t"})


def shown(value: object) -> str:
    """``value`` as text whose every character prints: line breaks and tabs kept, any other
    character that does not print written as its escape (``\\x1b``, ``\\u202e``)."""
    return escaped(str(value), _KEPT)


def one_line(value: object) -> str:
    """``value`` as one line whose every character prints: :func:`shown`, and its line breaks
    written as ``\\n``, so that a reason or a bundle's note cannot start a line of its own (a log
    read as the rollout's story, a note that passes for the CLI's)."""
    return escaped(str(value), frozenset({"\t"}))


def plain_text(value: object, style: str = "") -> Text:
    """``value`` as Rich text: never read as markup, and every character visible (:func:`shown`)."""
    return Text(shown(value), style=style)


# The user-information part of a URL (``scheme://user:password@host``): an endpoint or proxy URL
# in an error (botocore names the endpoint it could not reach) must not print its password.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@]+@")


def hide_url_credentials(text: str) -> str:
    """``text`` with every URL's user name and password replaced by ``***``."""
    return _URL_USERINFO.sub(r"\g<scheme>***@", text)


def labelled(label: str, style: str, message: object) -> Text:
    """``label`` in ``style`` (e.g. "error: " in red), then ``message`` as it reads, URL passwords hidden."""
    return Text(label, style=style) + plain_text(hide_url_credentials(str(message)))


def file_link(label: str, path: str | Path) -> Text:
    """``label`` then ``path``, the path a terminal link to the file."""
    return Text(label) + Text(str(path), style=Style(link=Path(path).resolve().as_uri()))


def aws_said(exc: Exception) -> str:
    """An AWS error as one line: the operation, AWS's code and message (botocore's text otherwise;
    the runtime's own typed error for an AWS call, such as TransientAwsError, as it says itself)."""
    if isinstance(exc, CanaryfleetError):
        return str(exc)
    response = getattr(exc, "response", None)
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    if not error:
        return f"AWS: {exc}"
    operation = getattr(exc, "operation_name", None) or "the call"
    return f"AWS refused {operation}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")


def warn(message: object) -> None:
    """What went wrong beside a command that did its work: "warning: " in yellow, on stderr."""
    _errors.print(labelled("warning: ", "yellow", message), highlight=False)


def fail(message: object, code: int = 1) -> NoReturn:
    """An operator command's error: "error: " in red, then ``message`` as written; exit ``code``."""
    _errors.print(labelled("error: ", "red", message), highlight=False)
    raise typer.Exit(code)
