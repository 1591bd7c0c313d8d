"""The notification topic's notices: what makes two the same news, and how a canary step's reads.

A policy can shift the traffic, judge the canary and ask for an approval at several steps; the
notify function tells each notice once per key, so each step's must have a key of its own, and
a duplicate of one step's the same key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from canaryfleet.logic.notify_messages import reply_blocks
from canaryfleet.models.notification import Notice

APP = "payments-api"
ROLLOUT = "payments-api-1_4_2-0f3a9c"
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def notice(kind: str, message_id: str = "msg-1", **body: Any) -> Notice:
    message = {"rollout_id": ROLLOUT, "application": APP, "version": "1.4.2", **body}
    return Notice(kind=kind, application=APP, body=message, message_id=message_id, published_at=T0)


@pytest.mark.parametrize("kind", ["rollout.traffic_shifted", "rollout.verdict", "rollout.awaiting_approval"])
def test_two_steps_notices_of_a_stage_are_two_news_and_a_steps_duplicate_is_one(kind: str) -> None:
    step_0, step_2 = notice(kind, step=0), notice(kind, step=2)
    again = notice(kind, "msg-2", step=2)  # published again by a retried task, or delivered twice

    assert step_0.key != step_2.key
    assert again.key == step_2.key == f"{APP}/{ROLLOUT}/{kind}/step-2"


def test_a_notice_without_a_step_keeps_its_key() -> None:
    # A stage met once per rollout, or a step's notice from a definition that did not send the
    # step: the key stays the one notices had before steps were told apart.
    assert notice("rollout.released").key == f"{APP}/{ROLLOUT}/rollout.released"
    assert notice("rollout.verdict").key == f"{APP}/{ROLLOUT}/rollout.verdict"


def reply_lines(told: Notice) -> list[str]:
    _, blocks = reply_blocks(told)
    return str(blocks[0]["text"]["text"]).splitlines()


def test_a_steps_reply_says_which_step_of_the_policy_it_is() -> None:
    shifted = notice("rollout.traffic_shifted", step=2, detail={"canary": 50, "live": 50})

    assert reply_lines(shifted) == [
        ":twisted_rightwards_arrows: *Canary takes traffic* (policy step 3)",
        "canary 50%, live 50%",
    ]


def test_a_reply_without_a_step_reads_as_before() -> None:
    shifted = notice("rollout.traffic_shifted", detail={"canary": 10, "live": 90})

    assert reply_lines(shifted) == [
        ":twisted_rightwards_arrows: *Canary takes traffic*",
        "canary 10%, live 90%",
    ]


def test_the_verdict_after_an_extended_bake_is_news_of_its_own_and_its_duplicate_is_not() -> None:
    # An inconclusive verdict extends the bake; the analysis after it judges the whole bake again
    first = notice("rollout.verdict", step=1)
    extended = notice("rollout.verdict", "msg-2", step=1, extension=1)
    again = notice("rollout.verdict", "msg-3", step=1, extension=1)

    assert first.key == f"{APP}/{ROLLOUT}/rollout.verdict/step-1"
    assert extended.key == again.key == f"{APP}/{ROLLOUT}/rollout.verdict/step-1/extension-1"


@pytest.mark.parametrize("extension", [0, -1, True, "1", None])
def test_an_extension_that_is_not_a_positive_whole_number_leaves_the_key_as_the_steps(
    extension: object,
) -> None:
    assert notice("rollout.verdict", step=1, extension=extension).key.endswith("/rollout.verdict/step-1")


def test_the_verdict_after_an_extended_bake_says_so() -> None:
    verdict = notice("rollout.verdict", step=1, extension=1, detail={"result": "pass", "reasons": []})

    assert reply_lines(verdict)[0] == ":mag: *Canary analysed* (policy step 2, bake extended)"


def test_a_rollouts_progress_orders_its_stages_step_by_step_below_its_outcome() -> None:
    # The order the state machine meets them in: per step, the shift, the verdict, the verdict
    # after each extension, the approval; then the next step; the outcome last
    met = [
        notice("rollout.started"),
        notice("rollout.canary_deployed"),
        *(
            notice(kind, step=step, **extra)
            for step in range(20)
            for kind, extra in (
                ("rollout.traffic_shifted", {}),
                *(("rollout.verdict", {"extension": k}) for k in range(4)),
                ("rollout.awaiting_approval", {}),
            )
        ),
        notice("rollout.released"),
    ]
    progress = [n.progress for n in met]

    assert all(p is not None for p in progress)
    assert progress == sorted(progress) and len(set(progress)) == len(progress)  # type: ignore[type-var]


def test_a_body_saying_more_steps_or_extensions_than_a_policy_has_stays_below_the_outcome() -> None:
    odd = notice("rollout.verdict", step=10**9, extension=10**9).progress
    released = notice("rollout.released").progress

    assert odd is not None and released is not None and odd < released
    assert notice("drain.logs_lost").progress is None
