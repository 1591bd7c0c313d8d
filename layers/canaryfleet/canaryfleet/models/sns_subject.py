"""The ``Subject`` of an SNS Publish, made valid whatever went into it.

SNS's Publish API: "Subjects must be UTF-8 text with no line breaks or control characters, and
less than 100 characters long" (botocore's sns model, 2010-03-31, ``PublishInput.Subject``); its
earlier wording adds that a subject "begins with a letter, number, or punctuation mark"
(https://docs.aws.amazon.com/sns/latest/api/API_Publish.html). A subject that breaks the rule
fails the whole Publish with ``InvalidParameter``, so a notice about a long application name
and version would be retried and then dead-lettered instead of sent. Every subject canaryfleet
publishes goes through :func:`sns_subject`.
"""

from __future__ import annotations

import unicodedata

# "less than 100 characters long": characters, not bytes.
SNS_SUBJECT_MAX_CHARACTERS = 99
# Three ASCII dots, not U+2026: the names in canaryfleet's subjects are ASCII, so a subject cut to
# fit stays ASCII too and meets the API reference's earlier wording ("must be ASCII text") as well.
ELLIPSIS = "..."
# What a subject says when nothing printable was left of the text it was given.
FALLBACK_SUBJECT = "canaryfleet notification"


def _is_break_or_control(character: str) -> bool:
    # Cc: control characters (\n, \r, \t among them); Zl, Zp: the line and paragraph separators;
    # Cf, Cs, Co, Cn: format characters, lone surrogates (not UTF-8) and private or unassigned ones.
    return character.isspace() or unicodedata.category(character)[0] in "CZ"


def _may_begin_subject(character: str) -> bool:
    # A letter, number or punctuation mark (or symbol, which the ASCII punctuation range held).
    return unicodedata.category(character)[0] in "LNPS"


def sns_subject(text: str) -> str:
    """``text`` as a subject SNS accepts: one line, at most 99 characters, ending in "..." if cut.

    Line breaks, control characters and runs of white space become one space; anything that may
    not begin a subject (white space, combining marks) is dropped from its start.
    """
    words = "".join(" " if _is_break_or_control(c) else c for c in text).split()
    subject = " ".join(words)
    while subject and not _may_begin_subject(subject[0]):
        subject = subject[1:].lstrip()
    if not subject:
        return FALLBACK_SUBJECT
    if len(subject) > SNS_SUBJECT_MAX_CHARACTERS:
        subject = subject[: SNS_SUBJECT_MAX_CHARACTERS - len(ELLIPSIS)].rstrip() + ELLIPSIS
    return subject
