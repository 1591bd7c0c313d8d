"""Text people type (decision comments, reasons, names) and how it is shown elsewhere.

A comment is refused at the edge if it holds characters that do not print (control and
format characters: a terminal escape, a right-to-left override, a zero-width space), so what
an approver typed is what everyone else reads. Where it is shown, it is escaped for the
surface: :func:`slack_escape` for Slack's mrkdwn (:func:`slack_cut` to shorten it), :func:`quoted`
for a plain-text email.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

# Cc: control characters (escapes, NUL, bell); Cf: format characters (bidi overrides,
# zero-width spaces); Zl/Zp: line and paragraph separators that some viewers break lines on.
_NON_PRINTING = frozenset({"Cc", "Cf", "Zl", "Zp"})
# A comment may have several lines (the approval page's text area sends CRLF).
_ALLOWED = frozenset({"\n"})


def does_not_print(char: str) -> bool:
    """Whether ``char`` is a control, format, line or paragraph separator character."""
    return unicodedata.category(char) in _NON_PRINTING


def escaped(text: str, keep: frozenset[str] = frozenset()) -> str:
    """``text`` with every character that does not print written as its escape (``\\n``,
    ``\\x1b``, ``\\u202e``), but those in ``keep``: text from outside shown where a line break or
    a terminal's escape would pass for ours."""
    if text.isprintable():
        return text
    return "".join(ascii(c)[1:-1] if c not in keep and does_not_print(c) else c for c in text)


def non_printing(text: str) -> list[str]:
    """The characters of ``text`` that do not print, as U+XXXX (each once, in order)."""
    found = dict.fromkeys(f"U+{ord(c):04X}" for c in text if c not in _ALLOWED and does_not_print(c))
    return list(found)


def _refused_if(bad: list[str], rule: str, text: str) -> str:
    if bad:
        raise PydanticCustomError(
            "non_printing_characters", rule + "; found {characters}", {"characters": ", ".join(bad[:5])}
        )
    return text


def _printable(text: str) -> str:
    return _refused_if(
        non_printing(text), "must hold only printable characters, spaces and line breaks", text
    )


def _one_line(text: str) -> str:
    breaks = [f"U+{ord(c):04X}" for c in text if c in "\n\r"]
    bad = list(dict.fromkeys([*breaks, *non_printing(text)]))
    return _refused_if(bad, "must be one line of printable characters and spaces", text)


def _lines(value: object) -> object:
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


# A comment or reason typed by a person: several lines are fine, invisible characters are not.
PersonText = Annotated[str, BeforeValidator(_lines), AfterValidator(_printable)]
# A name a bundle or a person gives (a metric's): shown inside the platform's own lines (an
# email's verdict, a terminal's status, a log), so one printable line.
OneLineText = Annotated[str, AfterValidator(_one_line)]


def slack_escape(text: str) -> str:
    """Text as Slack's mrkdwn shows it literally: ``&``, ``<`` and ``>`` escaped.

    Slack's "Formatting text for app surfaces": these three are the control characters of
    mrkdwn (mentions such as ``<!channel>``, links such as ``<https://x|label>``); escaped,
    a comment cannot mention anyone or fake a link.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_unescape(text: str) -> str:
    """What a person typed, from the text Slack sends an app: Slack escapes ``&``, ``<`` and
    ``>`` in all text ("All text in Slack uses the same system of escaping", Formatting text:
    Escaping). ``&amp;`` last, so a typed ``&lt;`` (sent as ``&amp;lt;``) stays ``&lt;``; a
    mention or link Slack resolved (``<@U123|bob>``) keeps its brackets, which it sends as they are.
    """
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_cut(text: str, limit: int) -> str:
    """Slack mrkdwn (escaped) in at most ``limit`` characters, ending with "…" when it is cut.

    A cut never splits an escape (``&amp;``, ``&lt;``, ``&gt;``) nor one of the platform's own
    ``<...>`` sequences (a mention, a link, a date): Slack would show their pieces literally.
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    escape = cut.rfind("&", max(0, len(cut) - 4))  # an escape is at most 5 characters
    if escape != -1 and ";" not in cut[escape:]:
        cut = cut[:escape]
    opened = cut.rfind("<")
    if opened != -1 and ">" not in cut[opened:]:
        cut = cut[:opened]
    return cut + "…"


def quoted(text: str, prefix: str = "> ") -> str:
    """Text as a quote in a plain-text email: every line prefixed, so no line of it can pass
    for one of the platform's own."""
    return "\n".join(prefix + line for line in text.split("\n"))
