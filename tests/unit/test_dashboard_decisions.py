"""The dashboard's one change: a decision, only from its own pages, as the CLI sends it."""

import re
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import pytest
from canaryfleet.models.decision import too_late_to_abort
from canaryfleet.ports.clock import FixedClock

from canaryfleet_cli.dashboard import Dashboard, Refused
from tests.unit.fakes import InMemoryRolloutStore, a_rollout, an_app, hold_lock


class RecordingPlatform:
    stack = "canaryfleet"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def caller(self) -> str:
        return "arn:aws:sts::123456789012:assumed-role/oncall/alice"

    def decide(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(payload)
        return {"rollout_id": payload["rollout_id"], "action": payload["action"], "outcome": "applied"}


def form(dashboard: Dashboard, **values: str) -> dict[str, str]:
    base = {
        "token": dashboard.token,
        "application": "payments-api",
        "rollout_id": "payments-api-1_2_0-abc",
        "action": "reject",
        "reason": "error budget spent",
    }
    return base | values


@pytest.fixture
def platform() -> RecordingPlatform:
    return RecordingPlatform()


@pytest.fixture
def dashboard(platform: RecordingPlatform) -> Dashboard:
    return Dashboard(platform)  # type: ignore[arg-type]


def test_a_decision_goes_to_the_decide_function_with_the_callers_identity_and_the_rollout(
    dashboard: Dashboard, platform: RecordingPlatform
) -> None:
    said = dashboard.decide(form(dashboard), dashboard.token)

    assert said == ("payments-api", "payments-api-1_2_0-abc", "reject: done")
    assert platform.sent == [
        {
            "application": "payments-api",
            "action": "reject",
            "by": "arn:aws:sts::123456789012:assumed-role/oncall/alice",
            "reason": "error budget spent",
            "channel": "cli",
            "rollout_id": "payments-api-1_2_0-abc",
        }
    ]


def test_an_abort_refused_as_too_late_says_why(dashboard: Dashboard, platform: RecordingPlatform) -> None:
    too_late = too_late_to_abort("1.2.0")
    platform.decide = lambda payload: {  # type: ignore[method-assign]
        "rollout_id": payload["rollout_id"],
        "action": "abort",
        "outcome": "already_decided",
        "detail": too_late,
    }

    said = dashboard.decide(form(dashboard, action="abort"), dashboard.token)

    assert said[2] == f"abort: already decided; {too_late}"


@pytest.mark.parametrize(
    ("values", "cookie", "status"),
    [
        ({"token": "guessed"}, "guessed", HTTPStatus.FORBIDDEN),
        ({}, None, HTTPStatus.FORBIDDEN),
        ({}, "another-process", HTTPStatus.FORBIDDEN),
        ({"action": "delete"}, "own", HTTPStatus.BAD_REQUEST),
        ({"application": "../etc"}, "own", HTTPStatus.BAD_REQUEST),
        ({"rollout_id": "x y"}, "own", HTTPStatus.BAD_REQUEST),
        ({"action": "abort", "reason": "  "}, "own", HTTPStatus.BAD_REQUEST),
    ],
    ids=[
        "guessed token",
        "no cookie",
        "cookie of another",
        "unknown action",
        "bad app",
        "bad id",
        "no reason",
    ],
)
def test_a_form_not_from_its_pages_or_out_of_bounds_is_refused_and_decides_nothing(
    dashboard: Dashboard, platform: RecordingPlatform, values: dict[str, str], cookie: str | None, status: int
) -> None:
    with pytest.raises(Refused) as refused:
        dashboard.decide(form(dashboard, **values), dashboard.token if cookie == "own" else cookie)

    assert refused.value.status == status
    assert platform.sent == []


class StoredPlatform(RecordingPlatform):
    """A platform whose store holds payments-api's rollouts, none running."""

    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store

    def applications(self) -> list[Any]:
        return [an_app("payments-api")]


def test_the_index_links_an_applications_latest_rollout_not_its_first_by_name() -> None:
    # Given 10.0.0 came after 9.0.0 (by name, 10.0.0 sorts first: the table lists by id)
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    store = InMemoryRolloutStore(FixedClock(now))
    a_rollout(
        store, version="9.0.0", rollout_id="payments-api-9_0_0-aaa", received_at=now - timedelta(days=2)
    )
    a_rollout(
        store, version="10.0.0", rollout_id="payments-api-10_0_0-bbb", received_at=now - timedelta(days=1)
    )

    page = Dashboard(StoredPlatform(store)).index()  # type: ignore[arg-type]

    assert "payments-api-10_0_0-bbb" in page
    assert "payments-api-9_0_0-aaa" not in page


def test_the_index_says_how_the_latest_rollout_ended_when_none_runs() -> None:
    # Given payments-api's last rollout rolled back, and nothing runs now
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    store = InMemoryRolloutStore(FixedClock(now))
    a_rollout(
        store, version="3.1.0", rollout_id="payments-api-3_1_0-bbb", received_at=now - timedelta(hours=1)
    )
    store.record_outcome(
        "payments-api", "payments-api-3_1_0-bbb", "rolled_back", "canary 5xx 6% vs 0.4%", ended_at=now
    )

    page = Dashboard(StoredPlatform(store)).index()  # type: ignore[arg-type]

    # Then its row links that rollout by its outcome and reason
    row = re.search(r'<tr id="app-payments-api">.*?</tr>', page, re.S)
    assert row is not None
    assert ">rolled back canary 5xx 6% vs 0.4%</a>" in row.group(0)


class OnePlatform(StoredPlatform):
    def application(self, name: str) -> Any:
        return an_app(name)


def test_a_queued_rollouts_page_says_whom_it_waits_behind_and_marks_no_step() -> None:
    # Given 2.0.0 running (it holds payments-api's turn) and 2.1.0 uploaded after it, queued
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    store = InMemoryRolloutStore(FixedClock(now))
    running = a_rollout(store, version="2.0.0", rollout_id="payments-api-2_0_0-aaa")
    hold_lock(store, running.ref)
    a_rollout(store, version="2.1.0", rollout_id="payments-api-2_1_0-bbb")

    page = Dashboard(OnePlatform(store)).rollout("payments-api", "payments-api-2_1_0-bbb")  # type: ignore[arg-type]

    # Then its status says so and no step is marked as running; the running one's page marks one
    status = re.search(r'<td id="status"[^>]*>([^<]*)</td>', page)
    assert status is not None
    assert status.group(1) == "queued behind 2.0.0 (payments-api-2_0_0-aaa): it starts when that rollout ends"
    assert 'class="current"' not in page and 'id="awaited"' not in page
    ahead = Dashboard(OnePlatform(store)).rollout("payments-api", "payments-api-2_0_0-aaa")  # type: ignore[arg-type]
    assert 'class="current"' in ahead
