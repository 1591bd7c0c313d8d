"""Rollout logic on the in-memory ports: queue and lock, deployment waits, rollbacks, decisions."""

from __future__ import annotations

from typing import Any

import pytest
from canaryfleet.errors import DeploymentGroupBusy, RolloutNotRunning
from canaryfleet.logic.decisions import decide
from canaryfleet.logic.deployments import on_deployment_event, start_deployment
from canaryfleet.logic.outcome import record_rollback, roll_back
from canaryfleet.logic.queue import queue_rollout, release_turn
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.decision import Decision
from canaryfleet.models.rollout import Revision, RolloutRef
from canaryfleet.models.rollout_record import Wait
from canaryfleet.models.tasks import DeploymentStateChange, DeployRequest, QueueTask, RollbackTask
from canaryfleet.ports.clock import FixedClock

from tests.helpers import ForgetsTheFirstDeploymentId
from tests.unit.fakes import (
    T0,
    FakeAlarms,
    FakeDeployments,
    FakeExecutions,
    InMemoryRolloutStore,
    RecordingCallbacks,
    a_rollout,
    an_app,
    hold_lock,
)

APP = "payments-api"
REVISION = Revision(bucket="artifacts", key=f"{APP}/2.7.0.zip", version="2.7.0")


@pytest.fixture
def store(clock: FixedClock) -> InMemoryRolloutStore:
    return InMemoryRolloutStore(clock)


@pytest.fixture
def app_config() -> AppConfig:
    return an_app(APP)


def _queue(
    store: InMemoryRolloutStore, name: str, arrival: str, callbacks: RecordingCallbacks, clock: FixedClock
) -> FakeExecutions:
    executions = FakeExecutions()
    executions.running.update({f"arn:{n}" for n in ("first", "second", "third")})
    ref = RolloutRef(application=APP, rollout_id=name, version="2.7.0")
    task = QueueTask(token=f"token-{name}", ref=ref, arrival=arrival, execution_arn=f"arn:{name}")
    queue_rollout(task, store, callbacks, executions, clock)
    return executions


def test_given_three_uploads_when_their_executions_wait_out_of_order_then_the_first_to_arrive_runs(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    callbacks = RecordingCallbacks()

    _queue(store, "first", "1#a", callbacks, clock)
    _queue(store, "third", "3#c", callbacks, clock)
    _queue(store, "second", "2#b", callbacks, clock)

    assert list(callbacks.succeeded) == ["token-first"]
    lock = store.lock(APP)
    assert lock is not None and lock.rollout_id == "first"
    assert store.queue_length(APP) == 2


def test_given_a_running_rollout_when_it_releases_its_turn_then_the_next_in_arrival_order_takes_it(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    callbacks = RecordingCallbacks()
    for name, arrival in (("first", "1#a"), ("third", "3#c"), ("second", "2#b")):
        executions = _queue(store, name, arrival, callbacks, clock)

    started = release_turn(APP, "arn:first", store, callbacks, executions, clock)

    assert started == "second"
    assert list(callbacks.succeeded) == ["token-first", "token-second"]
    lock = store.lock(APP)
    assert lock is not None and lock.owner == "arn:second"


def test_given_a_lock_held_by_someone_else_when_released_by_another_execution_then_it_stays(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    callbacks = RecordingCallbacks()
    executions = _queue(store, "first", "1#a", callbacks, clock)

    release_turn(APP, "arn:second", store, callbacks, executions, clock)

    lock = store.lock(APP)
    assert lock is not None and lock.owner == "arn:first"


ROLLOUT_ID = "payments-api-2_7_0-5e0c2c7a41d2b7b3b1f04a6d"
REF = RolloutRef(application=APP, rollout_id=ROLLOUT_ID, version="2.7.0")
LAST_GOOD = Revision(bucket="artifacts", key=f"{APP}/2.6.0.zip", version="2.6.0")


def _deploy_request(
    app: AppConfig, token: str = "token-deploy", purpose: str = "canary", revision: Revision = REVISION
) -> DeployRequest:
    return DeployRequest(token=token, ref=REF, purpose=purpose, app=app, revision=revision)


def _start(
    app: AppConfig,
    store: InMemoryRolloutStore,
    codedeploy: FakeDeployments,
    callbacks: RecordingCallbacks,
    clock: FixedClock,
) -> str:
    """The deploy task for the canary, its group's alarms all OK: the deployment's id."""
    return start_deployment(_deploy_request(app), store, codedeploy, callbacks, clock, alarms=FakeAlarms())


def _canary_deployed(
    store: InMemoryRolloutStore, app: AppConfig, clock: FixedClock
) -> tuple[RecordingCallbacks, FakeDeployments, str]:
    """A rollout whose deploy task has created its canary deployment (still InProgress)."""
    a_rollout(store)
    callbacks, codedeploy = RecordingCallbacks(), FakeDeployments()
    return callbacks, codedeploy, _start(app, store, codedeploy, callbacks, clock)


def _rollback_task(error: str = "DeploymentFailed") -> RollbackTask:
    return RollbackTask.model_validate(
        {
            "ref": REF.model_dump(),
            "error": {"Error": error, "Cause": "deployment d-1 failed"},
        }
    )


def _event(app: AppConfig, deployment_id: str, state: str) -> DeploymentStateChange:
    return DeploymentStateChange.model_validate(
        {
            "deploymentId": deployment_id,
            "state": state,
            "application": app.codedeploy_application,
            "deploymentGroup": app.canary.deployment_group,
        }
    )


def test_given_a_deployment_event_after_its_token_then_the_wait_ends_once(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    callbacks, codedeploy, deployment_id = _canary_deployed(store, app_config, clock)

    results = [
        on_deployment_event(_event(app_config, deployment_id, "SUCCESS"), store, codedeploy, callbacks)
    ]
    results.append(
        on_deployment_event(_event(app_config, deployment_id, "SUCCESS"), store, codedeploy, callbacks)
    )

    assert results == ["completed", "duplicate"]
    assert list(callbacks.succeeded) == ["token-deploy"]


def test_given_a_deployment_event_before_its_token_then_storing_the_token_ends_the_wait(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    a_rollout(store)
    callbacks, codedeploy = RecordingCallbacks(), FakeDeployments()
    deployment_id = codedeploy.create_deployment("app", "group", REVISION, "made before the token")
    store.remember_deployment(_deploy_request(app_config).ref.rollout_id, "canary", deployment_id, "group")

    early = on_deployment_event(_event(app_config, deployment_id, "FAILURE"), store, codedeploy, callbacks)
    _start(app_config, store, codedeploy, callbacks, clock)

    assert early == "recorded"
    assert callbacks.failed["token-deploy"][0] == "DeploymentFailed"


class EveryCall(RecordingCallbacks):
    """Callbacks that also count the calls a closed token refuses: a wait ends with one call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        self.calls.append(f"succeed {token}")
        return super().succeed(token, output)

    def fail(self, token: str, error: str, cause: str) -> bool:
        self.calls.append(f"fail {token}")
        return super().fail(token, error, cause)


ALARM_ACTIVE = "The deployment was stopped because its alarms were activated: payments-api-canary-5xx."


class EndsAsItStarts(FakeDeployments):
    """CodeDeploy stops the deployment as it starts (an alarm went into ALARM after canaryfleet's
    check) and its STOP event is delivered before CreateDeployment's answer is recorded."""

    def __init__(self, store: InMemoryRolloutStore, app: AppConfig, callbacks: RecordingCallbacks) -> None:
        super().__init__()
        self.early: list[str] = []
        self._deliver = lambda deployment_id: self.early.append(
            on_deployment_event(_event(app, deployment_id, "STOP"), store, self, callbacks)
        )

    def create_deployment(
        self, application: str, group: str, revision: Revision, description: str, *, restore: bool = False
    ) -> str:
        deployment_id = super().create_deployment(application, group, revision, description)
        self.statuses[deployment_id] = ("Stopped", ALARM_ACTIVE)
        self._deliver(deployment_id)
        return deployment_id


def test_given_a_deployment_that_ended_before_its_id_was_recorded_then_the_wait_ends_at_once(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    a_rollout(store)
    callbacks = EveryCall()
    codedeploy = EndsAsItStarts(store, app_config, callbacks)

    deployment_id = _start(app_config, store, codedeploy, callbacks, clock)
    again = on_deployment_event(_event(app_config, deployment_id, "STOP"), store, codedeploy, callbacks)

    assert codedeploy.early == ["ignored: not canaryfleet's"], "the event came before the id was recorded"
    assert callbacks.failed == {
        "token-deploy": (
            "DeploymentFailed",
            f"deployment {deployment_id} stopped: {ALARM_ACTIVE}",
        )
    }
    assert again == "duplicate" and callbacks.calls == ["fail token-deploy"]


def test_given_a_success_that_left_an_instance_without_the_build_then_the_wait_fails_saying_so(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    # Given a canary deployment that CodeDeploy ends SUCCESS by its minimum healthy hosts, with
    # one of its two instances failed (what the adapter reads from deploymentOverview)
    callbacks, codedeploy, deployment_id = _canary_deployed(store, app_config, clock)
    partial = "1 of 2 instance(s) failed and 0 skipped, though CodeDeploy counted the deployment a success"
    codedeploy.statuses[deployment_id] = ("Failed", partial)

    # When its SUCCESS event comes
    result = on_deployment_event(_event(app_config, deployment_id, "SUCCESS"), store, codedeploy, callbacks)

    # Then the rollout's wait fails as for a failed deployment, saying why, and the record says so
    assert result == "completed"
    assert callbacks.succeeded == {}
    said = f"deployment {deployment_id} failed: {partial}"
    assert callbacks.failed["token-deploy"] == ("DeploymentFailed", said)
    assert store.deployment_waits[deployment_id]["final_status"] == "Failed"


class EventDuringTheRead(FakeDeployments):
    """The deployment's SUCCESS event is handled while start_deployment reads its status."""

    def __init__(self, store: InMemoryRolloutStore, app: AppConfig, callbacks: RecordingCallbacks) -> None:
        super().__init__()
        self.during: list[str] = []
        self._store, self._app, self._callbacks = store, app, callbacks

    def status(self, deployment_id: str) -> tuple[str, str]:
        if self.statuses[deployment_id][0] != "Succeeded":  # once: the event reads the status too
            self.statuses[deployment_id] = ("Succeeded", "")
            self.during.append(
                on_deployment_event(
                    _event(self._app, deployment_id, "SUCCESS"), self._store, self, self._callbacks
                )
            )
        return super().status(deployment_id)


def test_given_the_event_between_the_token_and_the_status_read_then_the_wait_ends_once(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    a_rollout(store)
    callbacks = EveryCall()
    codedeploy = EventDuringTheRead(store, app_config, callbacks)

    _start(app_config, store, codedeploy, callbacks, clock)

    assert codedeploy.during == ["completed"], "the event found the token and ended the wait"
    assert callbacks.calls == ["succeed token-deploy"], "the status read sent nothing more"


def test_given_a_deployment_still_running_after_its_token_is_stored_then_the_event_ends_the_wait(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    callbacks, _, deployment_id = _canary_deployed(store, app_config, clock)

    assert callbacks.succeeded == {} and callbacks.failed == {}, "still InProgress: the wait goes on"
    assert "final_status" not in store.deployment_waits[deployment_id]


def test_given_a_deployment_canaryfleet_did_not_create_when_its_event_comes_then_nothing_is_written(
    store: InMemoryRolloutStore, app_config: AppConfig
) -> None:
    callbacks, codedeploy = RecordingCallbacks(), FakeDeployments()

    result = on_deployment_event(_event(app_config, "d-other-team", "FAILURE"), store, codedeploy, callbacks)

    assert result == "ignored: not canaryfleet's"
    assert store.deployment_waits == {}, "no item, no CodeDeploy call for someone else's deployment"


def test_given_a_stopped_deployment_still_finishing_when_the_restore_starts_then_the_group_is_busy(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    callbacks, codedeploy, _ = _canary_deployed(store, app_config, clock)  # still InProgress
    restore = _deploy_request(app_config, "token-restore", "canary-restore", LAST_GOOD)

    with pytest.raises(DeploymentGroupBusy):
        start_deployment(restore, store, codedeploy, callbacks, clock, alarms=FakeAlarms())

    assert store.deployment_for(ROLLOUT_ID, "canary-restore") is None, "a retry creates it afresh"


class ForgetsOnce(ForgetsTheFirstDeploymentId, InMemoryRolloutStore):
    pass


def test_given_an_attempt_that_created_its_deployment_but_failed_to_record_it_then_the_retry_takes_it_over(
    clock: FixedClock, app_config: AppConfig
) -> None:
    store = ForgetsOnce(clock)
    a_rollout(store)
    callbacks, codedeploy = RecordingCallbacks(), FakeDeployments()
    with pytest.raises(RuntimeError):
        _start(app_config, store, codedeploy, callbacks, clock)
    [created] = codedeploy.statuses

    retried = start_deployment(
        _deploy_request(app_config, "token-retry"), store, codedeploy, callbacks, clock, alarms=FakeAlarms()
    )
    codedeploy.statuses[created] = ("Succeeded", "")
    on_deployment_event(_event(app_config, created, "SUCCESS"), store, codedeploy, callbacks)

    assert retried == created and list(codedeploy.statuses) == [created], "one deployment, not two"
    assert store.deployment_for(ROLLOUT_ID, "canary") == created
    assert list(callbacks.succeeded) == ["token-retry"]


def test_given_another_deployment_of_the_group_running_then_it_is_busy_and_nothing_is_taken_over(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    a_rollout(store)
    codedeploy = FakeDeployments()
    other = codedeploy.create_deployment(
        app_config.codedeploy_application,
        app_config.canary.deployment_group,
        REVISION,
        f"canaryfleet canary {ROLLOUT_ID}-earlier",
    )

    with pytest.raises(DeploymentGroupBusy):
        start_deployment(
            _deploy_request(app_config), store, codedeploy, RecordingCallbacks(), clock, alarms=FakeAlarms()
        )

    assert store.deployment_for(ROLLOUT_ID, "canary") is None and list(codedeploy.statuses) == [other]


def test_given_a_group_alarm_in_alarm_when_a_build_is_deployed_then_it_waits_and_creates_nothing(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    # CodeDeploy would stop the deployment at once (the group's alarm configuration): an alarm a
    # rollback left behind is waited out (DeploymentGroupBusy, retried) rather than failing on it.
    app = an_app(APP, canary_alarms=("payments-api-canary-5xx-rate", "payments-api-canary-latency"))
    a_rollout(store)
    alarms, codedeploy = FakeAlarms(), FakeDeployments()
    alarms.states["payments-api-canary-5xx-rate"] = "ALARM"
    alarms.states["payments-api-canary-latency"] = "OK"

    with pytest.raises(DeploymentGroupBusy, match="payments-api-canary-5xx-rate in ALARM"):
        start_deployment(_deploy_request(app), store, codedeploy, RecordingCallbacks(), clock, alarms=alarms)
    alarms.states["payments-api-canary-5xx-rate"] = "OK"
    created = start_deployment(
        _deploy_request(app), store, codedeploy, RecordingCallbacks(), clock, alarms=alarms
    )

    assert list(codedeploy.statuses) == [created], "nothing was created while the alarm fired"
    assert codedeploy.restores[created] is False, "a new build keeps the group's alarms watching it"


@pytest.mark.parametrize(("purpose", "side"), [("canary-restore", "canary"), ("live-restore", "live")])
def test_given_the_alarms_that_caused_a_rollback_still_in_alarm_then_the_restore_starts_without_polling_them(
    store: InMemoryRolloutStore, clock: FixedClock, purpose: str, side: str
) -> None:
    app = an_app(
        APP, canary_alarms=("payments-api-canary-5xx-rate",), live_alarms=("payments-api-live-5xx-rate",)
    )
    a_rollout(store)
    alarms, codedeploy = FakeAlarms(), FakeDeployments()
    alarms.states.update({"payments-api-canary-5xx-rate": "ALARM", "payments-api-live-5xx-rate": "ALARM"})
    restore = _deploy_request(app, "token-restore", purpose, LAST_GOOD)

    deployment_id = start_deployment(restore, store, codedeploy, RecordingCallbacks(), clock, alarms=alarms)

    assert codedeploy.groups[deployment_id] == f"{APP}/{APP}-{side}"
    assert codedeploy.restores[deployment_id] is True


def _aborted_with_no_wait_open(store: InMemoryRolloutStore) -> str:
    """The canary approved, then on-call aborts before the deploy task begins its wait: the answer."""
    hold_lock(store, REF)
    store.set_wait(
        APP, ROLLOUT_ID, Wait(kind="approval", token="token-approval", started_at=store.clock.now())
    )
    by = {"application": APP, "by": "oncall@example.com", "channel": "cli"}
    decide(Decision(action="approve", **by), store, RecordingCallbacks(), store.clock)
    abort = Decision(action="abort", reason="bad metrics", **by)
    return decide(abort, store, RecordingCallbacks(), store.clock).outcome


def _deploy_live(
    store: InMemoryRolloutStore, codedeploy: FakeDeployments, callbacks: RecordingCallbacks, app: AppConfig
) -> str:
    """The state machine's "Deploy live" task, its group's alarms all OK: the deployment's id."""
    return start_deployment(
        _deploy_request(app, "token-live", "live"),
        store,
        codedeploy,
        callbacks,
        store.clock,
        alarms=FakeAlarms(),
    )


def test_given_an_abort_between_the_approval_and_going_live_then_no_live_deployment_is_created(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    # Given a canary deployed and approved, and on-call's abort, which found no wait to end
    callbacks, codedeploy, canary = _canary_deployed(store, app_config, clock)
    codedeploy.statuses[canary] = ("Succeeded", "")
    on_deployment_event(_event(app_config, canary, "SUCCESS"), store, codedeploy, callbacks)
    store.set_last_good(APP, LAST_GOOD, "an-earlier-rollout")
    answer = _aborted_with_no_wait_open(store)

    # When the state machine deploys live
    live = _deploy_live(store, codedeploy, callbacks, app_config)

    # Then nothing is created on the live group, and its wait ends as an abort at a wait does
    assert answer == "recorded"
    assert live == "" and list(codedeploy.statuses) == [canary]
    assert callbacks.failed["token-live"] == ("Aborted", "aborted by oncall@example.com: bad metrics")
    # So the rollback has no live deployment to stop, and restores the canary only
    result = roll_back(_rollback_task("Aborted"), store, codedeploy, clock)
    assert (result["stopped_deployments"], result["restore_live"]) == ([], False)


@pytest.mark.parametrize("ended", [False, True])
def test_given_an_abort_when_a_retry_finds_the_live_deployment_of_its_first_attempt_then_live_is_restored(
    clock: FixedClock, app_config: AppConfig, ended: bool
) -> None:
    # Given a live deploy task whose first attempt created the deployment but failed to record
    # it; the deployment still runs, or already succeeded before the retry (the build on live)
    store = ForgetsOnce(clock)
    a_rollout(store)
    store.set_last_good(APP, LAST_GOOD, "an-earlier-rollout")
    callbacks, codedeploy = RecordingCallbacks(), FakeDeployments()
    with pytest.raises(RuntimeError):
        _deploy_live(store, codedeploy, callbacks, app_config)
    [created] = codedeploy.statuses
    if ended:
        codedeploy.statuses[created] = ("Succeeded", "")

    # When on-call aborts before the retry
    _aborted_with_no_wait_open(store)
    retried = _deploy_live(store, codedeploy, callbacks, app_config)

    # Then the retry takes that deployment over: recorded, its wait failed Aborted, and the
    # rollback stops it if it still runs and restores the last good revision on live
    assert retried == created and store.deployment_for(ROLLOUT_ID, "live") == created
    assert callbacks.failed["token-live"] == ("Aborted", "aborted by oncall@example.com: bad metrics")
    result = roll_back(_rollback_task("Aborted"), store, codedeploy, clock)
    assert (result["stopped_deployments"], result["restore_live"]) == ([] if ended else [created], True)


@pytest.mark.parametrize("purpose", ["canary-restore", "live-restore"])
def test_given_an_abort_then_the_rollbacks_restore_is_still_created(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig, purpose: str
) -> None:
    a_rollout(store)
    _aborted_with_no_wait_open(store)
    codedeploy = FakeDeployments()
    restore = _deploy_request(app_config, "token-restore", purpose, LAST_GOOD)

    restored = start_deployment(restore, store, codedeploy, RecordingCallbacks(), clock, alarms=FakeAlarms())

    assert list(codedeploy.statuses) == [restored] and codedeploy.restores[restored] is True


def test_given_a_failed_live_deployment_when_rolled_back_then_both_groups_get_the_last_good_revision(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    a_rollout(store)
    store.set_last_good(APP, LAST_GOOD, "an-earlier-rollout")
    callbacks, codedeploy = RecordingCallbacks(), FakeDeployments()
    for purpose in ("canary", "live"):
        deployment_id = start_deployment(
            _deploy_request(app_config, purpose=purpose),
            store,
            codedeploy,
            callbacks,
            clock,
            alarms=FakeAlarms(),
        )
        codedeploy.statuses[deployment_id] = ("Succeeded" if purpose == "canary" else "Failed", "")

    result = roll_back(_rollback_task(), store, codedeploy, clock)

    assert result["last_good"]["version"] == "2.6.0"
    assert result["restore_live"] is True


def test_given_a_rollback_before_live_was_deployed_then_only_the_canary_is_restored(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    a_rollout(store)
    store.set_last_good(APP, LAST_GOOD, "an-earlier-rollout")
    codedeploy = FakeDeployments()
    running = start_deployment(
        _deploy_request(app_config), store, codedeploy, RecordingCallbacks(), clock, alarms=FakeAlarms()
    )

    result = roll_back(_rollback_task("Aborted"), store, codedeploy, clock)

    assert (result["restore_live"], result["stopped_deployments"]) == (False, [running])


def test_given_no_last_good_revision_then_nothing_is_restored(
    store: InMemoryRolloutStore, clock: FixedClock, app_config: AppConfig
) -> None:
    a_rollout(store)
    codedeploy = FakeDeployments()
    start_deployment(
        _deploy_request(app_config, purpose="live"),
        store,
        codedeploy,
        RecordingCallbacks(),
        clock,
        alarms=FakeAlarms(),
    )

    result = roll_back(_rollback_task(), store, codedeploy, clock)

    assert (result["last_good"], result["restore_live"]) == (None, False)


def test_given_an_abort_before_the_canary_was_deployed_then_nothing_is_deployed_to_restore(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    # Aborted while it waited for its deployment window: no instance has the build.
    a_rollout(store)
    store.set_last_good(APP, LAST_GOOD, "an-earlier-rollout")

    result = roll_back(_rollback_task("Aborted"), store, FakeDeployments(), clock)

    assert (result["last_good"], result["restore_live"], result["outcome"]) == (None, False, "rolled_back")


@pytest.mark.parametrize(
    ("error", "cause", "outcome", "reason"),
    [
        ("CanaryAlarm", "canary alarm hello-5xx is in ALARM: 5xx", "rolled_back", "canary alarm hello-5xx"),
        ("Rejected", '{"by": "bob", "reason": "too slow"}', "rejected", "rejected by bob: too slow"),
        ("ApprovalTimedOut", None, "rolled_back", "nobody approved before the approval timeout"),
    ],
)
def test_given_a_rollback_then_the_record_says_why_in_words(
    store: InMemoryRolloutStore, clock: FixedClock, error: str, cause: str | None, outcome: str, reason: str
) -> None:
    record = a_rollout(store)
    store.remember_deployment(record.rollout_id, "canary", "d-1", "payments-api-canary")

    record_rollback(record.ref, error, cause, store, clock)

    ended = store.get(APP, record.rollout_id)
    assert ended is not None and ended.outcome == outcome and ended.status == outcome
    assert ended.reason is not None and ended.reason.startswith(reason)
    assert ended.error == error and ended.ended_at == T0
    decided = store.version_status(APP, record.version)
    assert decided is not None and decided.status == "rejected"


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (
            "ColorStillServing",
            "the listener rule sends requests to both colors (blue 50%, green 50%), or to none",
        ),
        ("CapacityUnavailable", "no healthy capacity: payments-api-green stayed at 0 of 2 instances"),
        ("ExecutionTimedOut", "execution timed out while queued"),
    ],
)
def test_given_a_rollout_that_failed_before_deploying_anything_then_its_version_may_be_uploaded_again(
    store: InMemoryRolloutStore, clock: FixedClock, error: str, cause: str
) -> None:
    # Given a rollout that ended before it created any deployment: its build never ran
    record = a_rollout(store)

    # When its rollback is recorded
    result = record_rollback(record.ref, error, cause, store, clock)

    # Then it ended rolled back with its reason, and the version is left undecided, said so
    ended = store.get(APP, record.rollout_id)
    hint = "; nothing was deployed, so version 2.7.0 may be uploaded again"
    assert ended is not None and ended.outcome == "rolled_back"
    assert ended.reason is not None and ended.reason.endswith(hint) and cause in ended.reason
    assert result["reason"] == ended.reason
    assert store.version_status(APP, record.version) is None


@pytest.mark.parametrize(
    ("error", "cause"),
    [("Aborted", "aborted by bob: wrong build"), ("Rejected", '{"by": "bob", "reason": "no"}')],
)
def test_given_a_person_ended_a_rollout_before_it_deployed_then_its_version_is_decided(
    store: InMemoryRolloutStore, clock: FixedClock, error: str, cause: str
) -> None:
    # Aborted while it waited for its deployment window: a person's call about the build
    record = a_rollout(store)

    record_rollback(record.ref, error, cause, store, clock)

    decided = store.version_status(APP, record.version)
    assert decided is not None and decided.status == "rejected"
    ended = store.get(APP, record.rollout_id)
    assert ended is not None and ended.reason is not None and "uploaded again" not in ended.reason


def test_given_a_rollback_of_a_rollout_that_deployed_nothing_then_the_version_is_left_free(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    # The rollback's function, for a rollout that failed in "Choose colors" (blue/green)
    record = a_rollout(store)
    task = RollbackTask.model_validate(
        {"ref": REF.model_dump(), "error": {"Error": "ColorStillServing", "Cause": "split between colors"}}
    )

    result = roll_back(task, store, FakeDeployments(), clock)

    assert result["outcome"] == "rolled_back" and result["reason"].endswith("may be uploaded again")
    assert store.version_status(APP, record.version) is None


def test_given_a_finished_rollout_when_someone_decides_then_nothing_is_running(
    store: InMemoryRolloutStore, clock: FixedClock
) -> None:
    record = a_rollout(store)
    record_rollback(record.ref, "Aborted", "aborted by bob: no", store, clock)

    with pytest.raises(RolloutNotRunning, match="has no running rollout"):
        decide(Decision(application=APP, action="approve", by="alice"), store, RecordingCallbacks(), clock)
