"""A function never logs its event, even when POWERTOOLS_LOGGER_LOG_EVENT asks for it.

An approval page request carries the approver's link signature; a Slack request its signature
and response URL. Turning the variable on to debug one function must not put them in its logs.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

import pytest
from canaryfleet.observability import entry_point, logger


@dataclass
class Context:
    function_name: str = "canaryfleet-ApprovalPageFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:approval-page"
    aws_request_id: str = "r-1"


def test_the_event_stays_out_of_the_log_when_the_variable_asks_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    # The log, as Lambda reads it: whatever the logger's handlers write, at INFO (the event's level).
    written = io.StringIO()
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            monkeypatch.setattr(handler, "stream", written)
    monkeypatch.setattr(logger._logger, "level", logging.INFO)

    @entry_point()
    def lambda_handler(event: dict[str, Any], context: Any) -> str:
        logger.info("page answered")
        return "answered"

    event = {"rawQueryString": "approver=bob%40example.com&signature=SIGNATURE-IN-THE-LINK"}
    assert lambda_handler(event, Context()) == "answered"

    log = written.getvalue()
    assert "page answered" in log
    assert "SIGNATURE-IN-THE-LINK" not in log
