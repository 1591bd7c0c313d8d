"""Hostile HTTP bodies to the approval page and the Slack app: a clear 4xx, and no decision.

The routes are called with API Gateway's events (payload 2.0), built from the samples in
events/, in front of a gate that records what it is asked to decide.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode

import pytest
from canaryfleet.adapters.slack import SlackSdkApi
from canaryfleet.api.approval_page import approval_page_api
from canaryfleet.api.slack_app import slack_app_api
from canaryfleet.logic.approval_gate import GateResult, Outcome
from canaryfleet.models.approval import SlackSecret
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.helpers import FakeContext, load_event

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SECRET = SlackSecret.model_validate({"signing_secret": SIGNING_SECRET})
FORM = "application/x-www-form-urlencoded"
PAGE_FORM = base64.b64decode(load_event("approval_page/decide")["body"]).decode()
SLACK_FORM = base64.b64decode(load_event("slack_interactions/block_actions")["body"]).decode()
HYPOTHESIS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class RecordingGate:
    """Stands in for ApprovalGate: records every decision it is asked to take."""

    def __init__(self) -> None:
        self.decisions: list[tuple[str, ...]] = []
        self.signatures: set[str] = set()

    def first_slack_use(self, signature: str) -> bool:
        first = signature not in self.signatures
        self.signatures.add(signature)
        return first

    def show(self, link: Any, signer: Any) -> GateResult:
        return GateResult(Outcome.NOT_FOUND)

    def decide_by_link(self, link: Any, action: str, comment: str, signer: Any) -> GateResult:
        self.decisions.append(("link", link.approval_id, action))
        return GateResult(Outcome.NOT_FOUND)

    def decide_by_slack(
        self, approval_id: str, user: Any, action: str, response_url: str | None
    ) -> GateResult:
        self.decisions.append(("slack", approval_id, action))
        return GateResult(Outcome.NOT_FOUND)


def request(
    sample: str, body: bytes | str, content_type: str | None = FORM, base64_encoded: bool = True
) -> dict[str, Any]:
    """The sample's event carrying ``body`` (base64-encoded as API Gateway does for a form)."""
    event = copy.deepcopy(load_event(sample))
    raw = body if isinstance(body, bytes) else body.encode(errors="surrogatepass")
    event["body"] = base64.b64encode(raw).decode() if base64_encoded else body
    event["isBase64Encoded"] = base64_encoded
    event["headers"].pop("content-type", None)
    if content_type is not None:
        event["headers"]["content-type"] = content_type
    event["headers"]["content-length"] = str(len(raw))
    return event


def signed(event: dict[str, Any], text: str) -> dict[str, Any]:
    """Slack's signature headers over ``text``, the body as Slack sent it."""
    stamp = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:{text}".encode(), hashlib.sha256).hexdigest()
    event["headers"]["x-slack-request-timestamp"] = stamp
    event["headers"]["x-slack-signature"] = f"v0={digest}"
    return event


def page(event: dict[str, Any]) -> tuple[int, RecordingGate]:
    gate = RecordingGate()
    answer = approval_page_api(gate, signer=None).resolve(event, FakeContext())  # type: ignore[arg-type]
    return int(answer["statusCode"]), gate


def slack(event: dict[str, Any]) -> tuple[int, str, RecordingGate]:
    gate = RecordingGate()
    api = slack_app_api(SECRET, gate, None, registry=None, rollouts=None, callbacks=None, clock=None)  # type: ignore[arg-type]
    answer = api.resolve(event, FakeContext())
    return int(answer["statusCode"]), str(answer.get("body", "")), gate


# --- the well-formed requests reach the gate (so that the refusals below mean something) -----
def test_given_the_sample_form_when_posted_then_the_gate_is_asked_to_decide() -> None:
    status, gate = page(request("approval_page/decide", PAGE_FORM))

    assert status == 404  # the recording gate knows no approval
    assert gate.decisions == [("link", "q7Xr2LmN9pKv4TzW1bYc0A", "approve")]


def test_given_a_signed_button_press_when_sent_then_the_gate_is_asked_to_decide() -> None:
    event = signed(request("slack_interactions/block_actions", SLACK_FORM), SLACK_FORM)

    status, _, gate = slack(event)

    assert status == 200
    assert gate.decisions == [("slack", "q7Xr2LmN9pKv4TzW1bYc0A", "approve")]


# --- strategies of hostile bodies ----------------------------------------------------------------
def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


INVALID_UTF8 = st.binary(min_size=1, max_size=200).filter(_not_utf8)
# Text that base64 refuses: a character outside its alphabet, or a length that is not a multiple of 4.
INVALID_BASE64 = st.one_of(
    st.text(alphabet="!#$%&*(){}[]<>?~ \n\u00e9", min_size=1, max_size=40).map(lambda bad: "YWJj" + bad),
    st.text(alphabet="ABCDEFGHabcdefgh0123+/", min_size=1, max_size=40).filter(lambda t: len(t) % 4 == 1),
)
# '%' followed by something other than two hexadecimal digits.
BROKEN_ESCAPE = st.text(alphabet="GHIJZz_-.!~ ", max_size=2).map(lambda tail: f"%{tail}")
# A complete escape whose bytes are not UTF-8 ("%ff", "%c3%28").
NON_UTF8_ESCAPE = INVALID_UTF8.map(lambda data: "".join(f"%{byte:02X}" for byte in data))
WRONG_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "text/plain",
            "text/html; charset=utf-8",
            "multipart/form-data; boundary=xyz",
            "application/x-www-form-urlencoded-x",
            "application/x-www-form-urlencoded; charset=iso-8859-1",
            "application/x-www-form-urlencoded; charset=utf-16",
            "",
        ]
    ),
    st.text(max_size=40).filter(lambda t: t.split(";")[0].strip().lower() != FORM),
)


def _spliced(form: str, inserted: str, at: int) -> str:
    """``form`` with ``inserted`` put inside one of its values."""
    fields = form.split("&")
    index = at % len(fields)
    fields[index] += inserted
    return "&".join(fields)


# --- the approval page -----------------------------------------------------------------------------
@HYPOTHESIS
@given(size=st.integers(32 * 1024 + 1, 200_000), encoded=st.booleans())
def test_an_oversized_form_is_refused_with_413_and_decides_nothing(size: int, encoded: bool) -> None:
    body = PAGE_FORM + "&pad=" + "a" * (size - len(PAGE_FORM) - 5)

    status, gate = page(request("approval_page/decide", body, base64_encoded=encoded))

    assert status == 413
    assert gate.decisions == []


@pytest.mark.parametrize("character", ["\u6279", "\U0001f44d"], ids=["cjk", "emoji"])
def test_a_full_length_comment_in_any_script_is_not_refused_as_too_large(character: str) -> None:
    # Given the form with a comment of the 2,000 characters the page allows, each of which a
    # browser percent-encodes to 9 (CJK) or 12 (outside the BMP) bytes
    form = PAGE_FORM.replace("comment=error+rate+matches+live", "comment=" + quote_plus(character * 2000))

    # When it is posted, then the gate is asked to decide
    status, gate = page(request("approval_page/decide", form))

    assert status == 404  # the recording gate knows no approval
    assert gate.decisions == [("link", "q7Xr2LmN9pKv4TzW1bYc0A", "approve")]


@HYPOTHESIS
@given(content_type=st.one_of(st.none(), WRONG_TYPES))
def test_a_body_that_is_not_a_utf8_form_is_refused_with_415_and_decides_nothing(
    content_type: str | None,
) -> None:
    status, gate = page(request("approval_page/decide", PAGE_FORM, content_type=content_type))

    assert status == 415
    assert gate.decisions == []


def broken_encodings(form: str) -> st.SearchStrategy[tuple[str, Any]]:
    """A body that is not base64, not UTF-8, or a form with a broken or non-UTF-8 escape spliced in."""
    return st.one_of(
        INVALID_BASE64.map(lambda text: ("base64", text)),
        INVALID_UTF8.map(lambda data: ("bytes", data)),
        st.tuples(st.one_of(BROKEN_ESCAPE, NON_UTF8_ESCAPE), st.integers(0, 10)).map(
            lambda case: ("form", _spliced(form, *case))
        ),
    )


def broken_request(path: str, body: tuple[str, Any], sign: bool = False) -> dict[str, Any]:
    """The request carrying one of ``broken_encodings``: an invalid base64 text replaces the body."""
    kind, value = body
    event = request(path, b"" if kind == "base64" else value)
    if sign:
        signed(event, value if isinstance(value, str) else value.decode("utf-8", errors="replace"))
    if kind == "base64":
        event["body"] = value
    return event


@HYPOTHESIS
@given(body=broken_encodings(PAGE_FORM))
def test_a_form_with_broken_encoding_is_refused_with_400_and_decides_nothing(body: tuple[str, Any]) -> None:
    status, gate = page(broken_request("approval_page/decide", body))

    assert status == 400
    assert gate.decisions == []


def test_a_body_with_a_lone_surrogate_is_refused_with_400() -> None:
    status, gate = page(request("approval_page/decide", "action=approve\udc80", base64_encoded=False))

    assert status == 400
    assert gate.decisions == []


# --- the Slack app ---------------------------------------------------------------------------------
def _slack_status(body: bytes | str, content_type: str | None = FORM, sign: bool = True) -> tuple[int, Any]:
    event = request("slack_interactions/block_actions", body, content_type=content_type)
    if sign:
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        signed(event, text)
    status, _, gate = slack(event)
    return status, gate


@HYPOTHESIS
@given(size=st.integers(256 * 1024 + 1, 600_000))
def test_an_oversized_slack_request_is_refused_with_413_and_decides_nothing(size: int) -> None:
    status, gate = _slack_status(SLACK_FORM + "&pad=" + "a" * (size - len(SLACK_FORM) - 5))

    assert status == 413
    assert gate.decisions == []


@HYPOTHESIS
@given(content_type=st.one_of(st.none(), WRONG_TYPES))
def test_a_slack_request_that_is_not_a_form_is_refused_with_415_and_decides_nothing(
    content_type: str | None,
) -> None:
    status, gate = _slack_status(SLACK_FORM, content_type=content_type)

    assert status == 415
    assert gate.decisions == []


@HYPOTHESIS
@given(body=broken_encodings(SLACK_FORM))
def test_a_slack_request_with_broken_encoding_is_refused_with_400_and_decides_nothing(
    body: tuple[str, Any],
) -> None:
    status, _, gate = slack(broken_request("slack_interactions/block_actions", body, sign=True))

    assert status == 400
    assert gate.decisions == []


PAYLOAD = parse_qs(SLACK_FORM)["payload"][0]


@st.composite
def broken_json(draw: st.DrawFn) -> str:
    """The sample payload cut short or spliced with junk, not JSON, or JSON nested too deep."""
    text = PAYLOAD
    kind = draw(st.sampled_from(["cut", "junk", "deep", "not-an-object"]))
    if kind in ("cut", "junk"):
        at = draw(st.integers(0, len(text) - 1))
        junk = (
            "" if kind == "cut" else draw(st.sampled_from(["}", "{", ",,", "'", '"', "\\", "NaN]", "\x00"]))
        )
        broken = text[:at] + junk + (text[at:] if kind == "junk" else "")
        try:
            json.loads(broken)
        except ValueError:
            return broken
        assume(False)  # the junk landed inside a string: still JSON
    if kind == "deep":
        depth = draw(st.integers(2_000, 20_000))  # urlencoded, it stays under the size limit
        return "[" * depth + "]" * depth
    return json.dumps(
        draw(st.one_of(st.none(), st.integers(), st.text(max_size=10), st.lists(st.integers())))
    )


@HYPOTHESIS
@given(payload=broken_json())
def test_a_signed_slack_request_with_a_broken_payload_is_refused_with_400_and_decides_nothing(
    payload: str,
) -> None:
    body = urlencode({"payload": payload})

    status, gate = _slack_status(body)

    assert status == 400
    assert gate.decisions == []


@pytest.mark.parametrize(
    "body",
    ["payload=x&payload=y", "payload", "a=1&&b=2", "=x"],
    ids=["twice", "no-value", "empty-pair", "no-name"],
)
def test_a_signed_slack_request_with_a_malformed_form_is_refused_with_400(body: str) -> None:
    status, gate = _slack_status(body)

    assert status == 400
    assert gate.decisions == []


@pytest.mark.parametrize(
    "response_url",
    [
        "https://hooks.slack.com/actions/T000/1/abc def",
        "https://hooks.slack.com/actions/T000/1/abc\r\nX-Injected: 1",
        "https://hooks.slack.com/actions/T000/1/\u00e9t\u00e9",
        "https://hooks.slack.com/actions/" + "a" * 2100,
    ],
    ids=["space", "crlf", "non-ascii", "too-long"],
)
def test_a_signed_press_whose_response_url_urllib_cannot_send_is_refused_with_400_and_decides_nothing(
    response_url: str,
) -> None:
    payload = {**json.loads(PAYLOAD), "response_url": response_url}

    status, gate = _slack_status(urlencode({"payload": json.dumps(payload)}))

    assert status == 400
    assert gate.decisions == []


@pytest.mark.parametrize(
    "response_url",
    ["https://hooks.slack.com/actions/T000/1/abc def", "https://hooks.slack.com/actions/\u00e9t\u00e9"],
    ids=["space", "non-ascii"],
)
def test_an_answer_to_a_response_url_urllib_cannot_send_is_logged_by_its_kind_and_never_raises(
    response_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The decision was taken before the answer: an answer that cannot go must not fail the call.
    api = SlackSdkApi(SlackSecret.model_validate({"signing_secret": SIGNING_SECRET, "bot_token": "xoxb-1"}))

    assert api.respond(response_url, "approved", None, replace=True) is False
    ours = [r for r in caplog.records if not r.name.startswith("slack_sdk")]
    assert ours and all("actions" not in str(vars(r)) for r in ours), "the URL's path stays out"
