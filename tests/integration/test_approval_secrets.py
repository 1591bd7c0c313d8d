"""Task tokens and keys never leave: not in logs, URLs, HTML, emails, notifications or Slack."""

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from canaryfleet_local.standins.secretsmanager import rotate_secret_with_its_function
from tests.integration.approval_gate import (
    ALICE,
    ALICE_SLACK,
    approval_gate,
    approval_of,
    ended,
    http,
    post_decision,
    wait_for_approval,
)
from tests.integration.helpers import drain_queue, eventually, subscribe_queue


@contextmanager
def debug_logs_to_this_tests_stdout() -> Iterator[None]:
    """Every logger with a plain stream handler logs at DEBUG to this test's stdout.

    Logging is per process: a service's Powertools logger made by an earlier test in this
    worker keeps that test's level and output stream. A Lambda's logs go to stdout.
    """
    loggers = [
        logger
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        if isinstance(logger, logging.Logger)
        and any(type(handler) is logging.StreamHandler for handler in logger.handlers)
    ]
    handlers = [h for logger in loggers for h in logger.handlers if type(h) is logging.StreamHandler]
    saved_streams = [(handler, handler.stream) for handler in handlers]
    saved_levels = [(logger, logger.level) for logger in loggers]
    for handler in handlers:
        handler.stream = sys.stdout
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for handler, stream in saved_streams:
            handler.stream = stream
        for logger, level in saved_levels:
            logger.setLevel(level)


def test_no_token_signing_key_or_slack_secret_reaches_anything_sent_out_or_logged(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Given the whole gate at work, every function logging at DEBUG
    with debug_logs_to_this_tests_stdout(), approval_gate(log_level="DEBUG") as gate:
        notifications = subscribe_queue(gate.cloud)
        sm = gate.cloud.client("secretsmanager")
        key_arn = gate.cloud.output("ApprovalSigningKeyArn")
        secrets = {
            sm.get_secret_value(SecretId=key_arn)["SecretString"],
            gate.slack.signing_secret,
            gate.slack.bot_token,
        }
        seen: list[str] = []

        # When approvers are asked, open their pages, decide on the page and in Slack,
        # an approval expires, a command aborts, and the key is rotated
        by_page, by_slack, expiring = (
            wait_for_approval(gate),
            wait_for_approval(gate),
            wait_for_approval(gate, 2),
        )
        aborted = wait_for_approval(gate, register=True)
        tokens = {
            str(getattr(gate.rollouts.get(w.application, w.rollout_id), "wait_token", ""))
            for w in (by_page, by_slack, expiring, aborted)
        }
        seen += [http("GET", link)[1] for link in by_page.links.values()]
        seen.append(post_decision(by_page.link(ALICE), "approve", comment="fine")[1])
        assert by_slack.message is not None
        seen.append(gate.slack.press(gate.api.url, by_slack.message, "approval.reject", ALICE_SLACK)[1])
        body = gate.slack.command_body(ALICE_SLACK, f"abort {aborted.application} 1.2.0 enough")
        seen.append(
            gate.slack.send(f"{gate.api.url}/slack/commands", body, gate.slack.signed_headers(body))[1]
        )
        rotate_secret_with_its_function(key_arn, str(uuid.uuid4()))
        secrets.add(sm.get_secret_value(SecretId=key_arn)["SecretString"])
        seen.append(post_decision(by_page.link(ALICE), "reject")[1])
        seen.append(post_decision(expiring.link(ALICE), "approve", signature="A" * 43)[1])
        for waiting in (by_page, by_slack, expiring, aborted):
            ended(gate, waiting)
        # The expiry's own state machine records it (and logs) once its wait is over.
        eventually(lambda: approval_of(gate, expiring).status.value == "expired", timeout=15)
        gate.cloud.wait_idle()

        seen += [json.dumps(m) for m in gate.inbox.read()]
        seen += [link for w in (by_page, by_slack, expiring, aborted) for link in w.links.values()]
        seen += [json.dumps(n) for n in drain_queue(gate.cloud, notifications)]
        seen += [json.dumps([c.text, c.blocks]) for c in gate.slack.calls]
        seen += [json.dumps(m.blocks) + m.text for m in gate.slack.messages.values()]
        seen += [
            json.dumps(gate.approvals.get(w.approval_id).model_dump(mode="json")) for w in (by_page, expiring)
        ]  # type: ignore[union-attr]

    captured = capfd.readouterr()
    logs = captured.out + captured.err

    # Then the work happened and was logged, and no secret is anywhere in it
    for service in ("request_approval", "approval_page", "slack_interactions", "expire_approval"):
        assert f'"service":"{service}"' in logs
    assert "approval link with a bad signature" in logs
    assert len(tokens) == 4 and all(len(t) > 20 for t in tokens) and len(secrets) == 4
    for secret in tokens | secrets:
        assert secret not in logs
        assert secret[:24] not in logs
        for text in seen:
            assert secret not in text
