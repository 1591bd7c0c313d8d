"""The approval page: GET shows a signed link's approval; only POST decides.

A GET reads and renders, nothing else, so the scanners that open every link in an email
change nothing. The POST's form carries the link's signed fields back: the signature is the
capability, bound to one approval and one approver, and no cookie or session exists for a
cross-site request to ride on.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import ValidationError

from canaryfleet.api.bodies import Refusal, form_fields, form_text
from canaryfleet.api.html import html_page
from canaryfleet.api.timeline_page import timeline_response
from canaryfleet.logic.approval_gate import ApprovalGate, GateResult, Outcome
from canaryfleet.logic.links import LinkSigner, view_path
from canaryfleet.models.approval import ApprovalLink, ApprovalStatus, PageDecisionForm, TimelineViewLink
from canaryfleet.observability import logger

_MAX_FORM_FIELDS = 10
# The form's fields: an approver's address, a signature and a comment of up to 2,000 characters.
# A browser sends each character as UTF-8, percent-encoded: up to 12 bytes for one outside the
# Basic Multilingual Plane, 9 for one of Chinese, Japanese or Korean. A full comment is at most
# 24,000 bytes, so a comment the page allows is never refused as too large.
_MAX_FORM_BYTES = 32 * 1024
_REFUSED_BODY = {
    413: ("The form is too large", "Shorten the comment and send it again."),
    415: ("Not a form", "Decide with the page's Approve or Reject button."),
    400: ("The form is garbled", "Open the link from your email again."),
}
_STATUS = {
    Outcome.WAITING: 200,
    Outcome.DECIDED: 200,
    Outcome.ALREADY_DECIDED: 409,
    Outcome.NOT_WAITING: 409,
    Outcome.EXPIRED: 410,
    Outcome.FORBIDDEN: 403,
    Outcome.NOT_FOUND: 404,
}


def _invalid_link() -> Response[str]:
    return html_page(
        400, "This link is incomplete", "bad", "Open the link from your email again, as it was sent."
    )


def _refused(result: GateResult) -> Response[str]:
    if result.outcome is Outcome.NOT_FOUND:
        return html_page(404, "No such approval", "bad", "It may have been removed after it expired.")
    return html_page(
        403, "This link is not valid", "bad", "It was changed, or you are not an approver of this rollout."
    )


def _result_page(
    result: GateResult, link: ApprovalLink | None = None, signer: LinkSigner | None = None
) -> Response[str]:
    approval = result.approval
    if result.outcome in (Outcome.FORBIDDEN, Outcome.NOT_FOUND) or approval is None:
        return _refused(result)
    status = _STATUS[result.outcome]
    if result.outcome is Outcome.WAITING and link is not None and signer is not None:
        form = {"approver": link.approver, "expires": link.expires, "signature": link.signature}
        # The timeline gets the read-only view link (expiring with the approval, as the Slack
        # card's): a link copied from the page to share the charts must not decide.
        view = signer.sign_view(approval.approval_id, int(approval.expires_at.timestamp()))
        return html_page(
            status,
            "Waiting for your decision",
            "",
            result.summary,
            approval=approval,
            form=form,
            timeline_url=view_path(view),
        )
    headings = {
        ApprovalStatus.APPROVED: ("Approved", "ok"),
        ApprovalStatus.REJECTED: ("Rejected", "bad"),
        ApprovalStatus.EXPIRED: ("Expired", "warn"),
        ApprovalStatus.CLOSED: ("No longer waiting", "warn"),
        ApprovalStatus.DECIDING: ("Being decided", "warn"),
    }
    # A pending approval shown here has expired: a GET after the expiry, before anything
    # recorded it, is shown as it is and written by nobody.
    heading, tone = headings.get(approval.status, ("Expired", "warn"))
    if approval.status is ApprovalStatus.PENDING:
        message = "Nobody decided in time, so the rollout followed its timeout policy."
        return html_page(status, heading, tone, message, approval=approval)
    if result.outcome is Outcome.ALREADY_DECIDED and approval.status is not ApprovalStatus.DECIDING:
        heading = f"Already decided: {heading.lower()}"
    return html_page(status, heading, tone, result.summary, approval=approval)


def approval_page_api(gate: ApprovalGate, signer: LinkSigner) -> APIGatewayHttpResolver:
    """The page's routes, deciding through ``gate``: GET and POST /approvals/<approval_id>, and
    GET /approvals/<approval_id>/timeline (the rollout's timeline, behind a read-only view link)."""
    app = APIGatewayHttpResolver()

    @app.get("/approvals/<approval_id>")
    def show(approval_id: str) -> Response[str]:
        link = _query_link(app, approval_id)
        if link is None:
            return _invalid_link()
        return _result_page(gate.show(link, signer), link, signer)

    @app.get("/approvals/<approval_id>/timeline")
    def timeline(approval_id: str) -> Response[str]:
        # Only a read-only view link (the Slack card's, the email's, the page's). An approver's
        # link decides: it is refused here as not valid, whatever its path, so that nobody comes
        # to forward it as the timeline's (emails sent before view links carry one here).
        query = app.current_event.query_string_parameters or {}
        if "view" not in query and "signature" in query:
            logger.warning("approver's link refused on the timeline", extra={"approval_id": approval_id})
            return _refused(GateResult(Outcome.FORBIDDEN))
        link = _query_view_link(app, approval_id)
        if link is None:
            return _invalid_link()
        result, record = gate.rollout_for_link(link, signer)
        if result.outcome is Outcome.EXPIRED:
            return html_page(
                410, "This link has expired", "warn", "The timeline is shown while the link is valid."
            )
        if record is None:
            return _refused(result)
        return timeline_response(record)

    @app.post("/approvals/<approval_id>")
    def decide(approval_id: str) -> Response[str]:
        text = form_text(app.current_event, _MAX_FORM_BYTES)
        if isinstance(text, Refusal):
            title, advice = _REFUSED_BODY[text.status]
            return html_page(text.status, title, "bad", advice)
        form = _parse_form(text)
        if isinstance(form, str):
            return html_page(400, "The comment cannot be used", "bad", form)
        if form is None:
            return html_page(400, "The form is incomplete", "bad", "Open the link from your email again.")
        try:
            link = ApprovalLink(
                approval_id=approval_id,
                approver=form.approver,
                expires=form.expires,
                signature=form.signature,
            )
        except ValidationError:
            return _invalid_link()
        result = gate.decide_by_link(link, form.action, form.comment.strip(), signer)
        return _result_page(result)

    @app.not_found
    def not_found(_: Exception) -> Response[str]:
        return html_page(404, "Not found", "bad")

    def failed(exc: Exception) -> Response[str]:
        logger.exception("approval page failed", extra={"error": type(exc).__name__})
        return html_page(
            500, "Something went wrong", "bad", "Open the link again to see where the approval stands."
        )

    app.exception_handler(Exception)(failed)
    return app


def _query_link(app: APIGatewayHttpResolver, approval_id: str) -> ApprovalLink | None:
    """The signed link's fields from the query string; None if any is missing or malformed."""
    query = app.current_event.query_string_parameters or {}
    try:
        return ApprovalLink.model_validate(
            {name: query.get(name, "") for name in ("approver", "expires", "signature")}
            | {"approval_id": approval_id}
        )
    except ValidationError:
        return None


def _query_view_link(app: APIGatewayHttpResolver, approval_id: str) -> TimelineViewLink | None:
    """A timeline view link's fields from the query string; None if any is missing or malformed."""
    query = app.current_event.query_string_parameters or {}
    try:
        return TimelineViewLink.model_validate(
            {
                "approval_id": approval_id,
                "expires": query.get("expires", ""),
                "signature": query.get("view", ""),
            }
        )
    except ValidationError:
        return None


def _parse_form(body: str) -> PageDecisionForm | str | None:
    """Each field once, nothing else: anything malformed is refused as a whole (None). A comment
    with characters that do not print is refused with what to change (a str)."""
    fields = form_fields(body, _MAX_FORM_FIELDS)
    if fields is None:
        return None
    try:
        return PageDecisionForm.model_validate(fields)
    except ValidationError as exc:
        errors = exc.errors()
        if errors and all(e["type"] == "non_printing_characters" for e in errors):
            return f"Your comment {errors[0]['msg']}. Remove them and decide again; nothing was decided."
        return None
