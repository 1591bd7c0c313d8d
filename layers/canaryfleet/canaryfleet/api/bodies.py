"""An HTTP API request's form body: bounded, strictly decoded, or refused with a 4xx.

API Gateway hands a form body to Lambda base64-encoded. Anything a browser or Slack would
not send (another content type, a body too large, broken base64, bytes that are not UTF-8,
a '%' that does not start an escape) is refused before a field of it is read, so that no
decision is taken on a body that two parsers could read two ways.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

FORM_TYPE = "application/x-www-form-urlencoded"
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Refusal:
    """Why a request body is not read: the HTTP status to answer and a reason for a person."""

    status: int
    reason: str


def form_text(event: APIGatewayProxyEventV2, max_bytes: int) -> str | Refusal:
    """The request's form body as text, or why it is refused (413, 415 or 400)."""
    refused = _not_a_utf8_form((event.headers or {}).get("content-type", ""))
    if refused is not None:
        return refused
    raw = event.body or ""
    # base64 is 4 characters for 3 bytes: a longer text cannot decode to max_bytes or fewer.
    if len(raw) > (max_bytes + 2) // 3 * 4:
        return Refusal(413, f"the body is larger than {max_bytes:,} bytes")
    data = _body_bytes(raw, bool(event.is_base64_encoded))
    if isinstance(data, Refusal):
        return data
    if len(data) > max_bytes:
        return Refusal(413, f"the body is larger than {max_bytes:,} bytes")
    return _utf8_form_text(data)


def _not_a_utf8_form(content_type: str) -> Refusal | None:
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != FORM_TYPE:
        return Refusal(415, f"the body must be {FORM_TYPE}")
    charset = parameters.strip().lower().removeprefix("charset=").strip('"')
    if parameters.strip() and charset not in ("utf-8", "utf8"):
        return Refusal(415, "the form must be UTF-8")
    return None


def _utf8_form_text(data: bytes) -> str | Refusal:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(400, "the body is not UTF-8")
    if _BROKEN_ESCAPE.search(text):
        return Refusal(400, "the body has a '%' that is not followed by two hexadecimal digits")
    return text


def _body_bytes(raw: str, is_base64: bool) -> bytes | Refusal:
    if is_base64:
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return Refusal(400, "the body is not valid base64")
    try:
        return raw.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which no UTF-8 body decodes to
        return Refusal(400, "the body is not UTF-8")


def form_fields(text: str, max_fields: int) -> dict[str, str] | None:
    """Each field exactly once, its escapes UTF-8; None for anything else."""
    try:
        fields = parse_qs(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=max_fields, errors="strict"
        )
    except ValueError:  # UnicodeDecodeError included
        return None
    if any(len(values) != 1 for values in fields.values()):
        return None
    return {name: values[0] for name, values in fields.items()}
