"""The rollout view: numbered steps with the current one marked, who is awaited, one line per state."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from canaryfleet.models.app_config import AppConfig, Approvers, FleetGroup
from canaryfleet.models.policy import RolloutPolicy
from canaryfleet.models.rollout_record import AuditEntry, RolloutRecord, WeightEntry, WindowWait

from canaryfleet_cli.local_endpoint import NoLocalCloud, read_local_endpoint
from canaryfleet_cli.rollout_view import awaited, summary_line, view_steps

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
POLICY = RolloutPolicy.model_validate(
    {
        "steps": [
            {"kind": "set_weight", "weight": 5},
            {"kind": "bake", "duration_seconds": 600},
            {"kind": "approval", "timeout_seconds": 86400},
        ]
    }
)


def app() -> AppConfig:
    group = FleetGroup(
        deployment_group="g",
        target_group_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/x/1",
        auto_scaling_group="asg",
    )
    return AppConfig(
        application="payments-api",
        codedeploy_application="payments-api",
        listener_rule_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/x/1/2/3",
        canary=group,
        live=group,
        approvers=Approvers(emails=("alice@example.com",)),
        policy=POLICY,
    )


def record(**values: object) -> RolloutRecord:
    base: dict[str, object] = {
        "rollout_id": "payments-api-1_2_0-abc",
        "application": "payments-api",
        "version": "1.2.0",
        "artifact_bucket": "b",
        "artifact_key": "payments-api/1.2.0.zip",
        "received_at": T0,
        "status": "started",
    }
    return RolloutRecord.model_validate(base | values)


SHIFTED = {
    "stage_canary_deployed_at": T0,
    "stage_traffic_shifted_at": T0,
    "weight_log": {"0001": WeightEntry(weight=5, at=T0)},
}


def current(r: RolloutRecord) -> int | None:
    return next((s.number for s in view_steps(app(), r) if s.state == "current"), None)


@pytest.mark.parametrize(
    ("values", "step"),
    [
        ({"wait_kind": "deployment", "wait_started_at": T0}, 0),
        ({**SHIFTED, "wait_kind": "bake", "wait_started_at": T0, "bake_started_at": T0}, 2),
        ({**SHIFTED, "wait_kind": "approval", "wait_started_at": T0}, 3),
        (
            {
                **SHIFTED,
                "wait_kind": "deployment",
                "decision": AuditEntry(kind="approve", by="alice@example.com", channel="cli", at=T0),
            },
            4,
        ),
    ],
    ids=["canary deployment", "bake", "approval", "live deployment"],
)
def test_the_current_step_follows_the_wait(values: dict[str, object], step: int) -> None:
    assert current(record(**values)) == step


def test_a_bake_says_its_time_left_and_an_approval_who_and_until_when() -> None:
    now = T0 + timedelta(minutes=4)
    baking = record(**SHIFTED, wait_kind="bake", wait_started_at=T0, bake_started_at=T0)
    asking = record(
        **SHIFTED, wait_kind="approval", wait_started_at=T0, approval_expires_at=T0 + timedelta(hours=24)
    )

    assert "step 2/4 bake 10 min" in summary_line(app(), baking, now)
    assert "canary 5%" in summary_line(app(), baking, now)
    assert "waiting for alice@example.com to approve or reject" in summary_line(app(), asking, now)


def test_an_ended_rollout_is_its_outcome_and_marks_no_step() -> None:
    ended = record(**SHIFTED, status="rolled_back", outcome="rolled_back", reason="canary alarm")

    assert summary_line(app(), ended) == "payments-api 1.2.0: rolled back canary alarm"
    assert current(ended) is None


def test_local_requires_the_state_file_local_up_writes_and_an_endpoint_on_localhost(tmp_path: Path) -> None:
    with pytest.raises(NoLocalCloud, match="start `canaryfleet local up`"):
        read_local_endpoint(tmp_path)
    (tmp_path / ".canaryfleet").mkdir()
    state = tmp_path / ".canaryfleet" / "local.json"
    state.write_text('{"endpoint": "https://evil.example.com", "region": "us-east-1", "stack": "s"}')
    with pytest.raises(NoLocalCloud, match="not on localhost"):
        read_local_endpoint(tmp_path)
    state.write_text(
        '{"endpoint": "http://127.0.0.1:@evil.example.com", "region": "us-east-1", "stack": "s"}'
    )
    with pytest.raises(NoLocalCloud, match="not on localhost"):
        read_local_endpoint(tmp_path)
    state.write_text('{"endpoint": "http://127.0.0.1:4566", "region": "us-east-1", "stack": "s"}')
    assert read_local_endpoint(tmp_path).endpoint == "http://127.0.0.1:4566"


def test_a_rollout_waiting_for_its_window_says_when_it_opens_in_the_windows_zone() -> None:
    # Given a rollout held before its canary until 06:00 IST (00:30 UTC), read at 15:18 UTC
    wait = WindowWait(
        guard="canary",
        started=T0,
        until=datetime(2026, 12, 3, 0, 30, tzinfo=UTC),
        reason="outside the deployment window",
        kind="window",
        timezone="Asia/Kolkata",
    )
    held = record(wait_kind="window", window_waits={"canary": wait})

    said = awaited(app(), held, now=datetime(2026, 12, 2, 15, 18, tzinfo=UTC))

    assert said == (
        "the window that opens at 06:00 IST (in 9h 12m) before the canary: outside the deployment window"
    )


def test_the_steps_are_the_policy_the_rollout_runs_by_its_bundles_when_it_has_one() -> None:
    # Given a bundle whose rollout.yaml adds a second canary step to the application's policy
    own = RolloutPolicy.model_validate(
        {
            "steps": [
                {"kind": "set_weight", "weight": 5},
                {"kind": "bake", "duration_seconds": 600},
                {"kind": "set_weight", "weight": 25},
                {"kind": "bake", "duration_seconds": 900},
                {"kind": "approval"},
            ]
        }
    )
    baking = record(**SHIFTED, policy=own, wait_kind="bake", wait_started_at=T0, bake_started_at=T0)

    texts = [s.text for s in view_steps(app(), baking)]

    assert len(texts) == 7, texts  # deploy canary, its five steps, deploy live
    assert any("25%" in t for t in texts) and any("15 min" in t for t in texts)
    assert "step 2/6 bake 10 min" in summary_line(app(), baking, T0)


STARTED = {"execution_arn": "arn:aws:states:eu-west-1:123456789012:execution:rollout:x"}
ALARMED = {
    **STARTED,
    **SHIFTED,
    "stage_rolled_back_at": T0,
    "outcome": "rolled_back",
    "status": "rolled_back",
}


@pytest.mark.parametrize(
    ("values", "stopped"),
    [
        ({**STARTED, "outcome": "rolled_back", "status": "rolled_back"}, 0),
        (ALARMED, 2),
        (
            {
                **ALARMED,
                "stage_awaiting_approval_at": T0,
                "outcome": "rejected",
                "status": "rejected",
                "decision": AuditEntry(kind="reject", by="alice@example.com", channel="cli", at=T0),
            },
            3,
        ),
        (
            {**ALARMED, "decision": AuditEntry(kind="approve", by="alice@example.com", channel="cli", at=T0)},
            4,
        ),
        ({"outcome": "rejected", "status": "rejected"}, None),
    ],
    ids=[
        "canary deployment failed",
        "alarm in the bake",
        "rejected",
        "live deployment failed",
        "refused upload",
    ],
)
def test_an_ended_rollout_marks_the_step_it_stopped_at(
    values: dict[str, object], stopped: int | None
) -> None:
    steps = view_steps(app(), record(**values))

    assert [s.number for s in steps if s.state == "stopped"] == ([] if stopped is None else [stopped])
    assert all(s.state == "done" for s in steps if stopped is not None and s.number < stopped)


def test_a_blue_green_rollout_says_which_color_serves_and_which_carries_it() -> None:
    running = record(**SHIFTED, strategy="blue_green", live_color="blue", release_color="green")
    released = running.model_copy(update={"outcome": "released", "status": "released"})
    rolled_back = running.model_copy(update={"outcome": "rolled_back", "status": "rolled_back"})

    assert running.color_text() == "blue is live; green carries 1.2.0"
    assert summary_line(app(), running, T0).endswith("; blue is live; green carries 1.2.0")
    assert released.color_text() == "green carries 1.2.0 and is live now; blue served before it"
    assert rolled_back.color_text() == "blue is live; green carried 1.2.0 and goes back to zero"
    assert record(**SHIFTED).color_text() is None, "in place: nothing about colors"


def test_a_queued_rollout_says_whom_it_waits_behind_and_marks_no_step() -> None:
    # Given a rollout whose execution waits for its turn (started, no stage yet)
    queued = record()

    # Then its line names the rollout ahead of it, not the canary deployment as its current step
    said = summary_line(app(), queued, queued_behind="1.1.0 (payments-api-1_1_0-aaa)")
    assert said == (
        "payments-api 1.2.0: queued behind 1.1.0 (payments-api-1_1_0-aaa): it starts when that rollout ends"
    )
    assert {step.state for step in view_steps(app(), queued, queued=True)} == {"pending"}
