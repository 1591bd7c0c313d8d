"""CodeDeploy waits end by event, exactly once, whatever order the event and the token arrive in."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from canaryfleet.adapters.fleet import CodeDeploy, Metrics
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.errors import DeploymentGroupBusy, DeploymentTimedOut
from canaryfleet.logic.deployments import check_after_timeout, on_deployment_event, start_deployment
from canaryfleet.models.app_config import AppConfig
from canaryfleet.models.artifact import ArtifactRef
from canaryfleet.models.rollout import Revision, RolloutInput, RolloutRef
from canaryfleet.models.rollout_record import AbortRequest
from canaryfleet.models.tasks import DeploymentStateChange, DeployRequest
from canaryfleet.ports.clock import SystemClock

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import deploy_fleet
from canaryfleet_local.standins.eventbridge import emit_service_event, service_event
from tests.helpers import ForgetsTheFirstDeploymentId
from tests.integration.helpers import RecordingCallbacks, table_items

REVISION = Revision(bucket="artifacts", key="hello-app/2.0.0.zip", version_id="v1", etag="e", version="2.0.0")
REF = RolloutRef(application="hello-app", rollout_id="r1", version="2.0.0")


@pytest.fixture
def app(cloud: LocalCloud) -> Iterator[AppConfig]:
    yield deploy_fleet(cloud, "hello-app")


@pytest.fixture
def store(cloud: LocalCloud) -> DynamoRolloutStore:
    """The state table with rollout r1 of hello-app 2.0.0 received (a wait is stored on it)."""
    rollouts = DynamoRolloutStore(cloud.output("StateTableName"))
    artifact = ArtifactRef(
        bucket="artifacts", key="hello-app/2.0.0.zip", application="hello-app", version="2.0.0"
    )
    rollout = RolloutInput(rollout_id="r1", application="hello-app", version="2.0.0", artifact=artifact)
    rollouts.create(rollout, datetime.now(UTC))
    return rollouts


def request(app: AppConfig, token: str = "token-1") -> DeployRequest:
    return DeployRequest(token=token, ref=REF, purpose="canary", app=app, revision=REVISION)


def deploy(
    app: AppConfig,
    store: DynamoRolloutStore,
    callbacks: RecordingCallbacks | None = None,
    token: str = "token-1",
) -> str:
    """The deploy task for r1's canary, through the real CodeDeploy adapter, its alarms read by CloudWatch."""
    return start_deployment(
        request(app, token),
        store,
        CodeDeploy(),
        callbacks or RecordingCallbacks(),
        SystemClock(),
        alarms=Metrics(),
    )


def event(app: AppConfig, deployment_id: str, state: str) -> DeploymentStateChange:
    return DeploymentStateChange.model_validate(
        {
            "deploymentId": deployment_id,
            "state": state,
            "application": app.codedeploy_application,
            "deploymentGroup": app.canary.deployment_group,
        }
    )


def end(cloud: LocalCloud, deployment_id: str, status: str) -> None:
    """The deployment really ends (what the fleet simulator does)."""
    next(d for d in cloud.codedeploy.created if d.deployment_id == deployment_id).status = status


def test_an_event_ends_the_wait_once_however_often_it_is_delivered(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore
) -> None:
    callbacks = RecordingCallbacks()
    deployment_id = deploy(app, store, callbacks)
    end(cloud, deployment_id, "Succeeded")

    results = [
        on_deployment_event(event(app, deployment_id, "SUCCESS"), store, CodeDeploy(), callbacks)
        for _ in range(3)
    ]

    assert results == ["completed", "duplicate", "duplicate"]
    assert callbacks.succeeded == ["token-1"]


def test_an_event_that_comes_before_the_token_is_not_lost(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore
) -> None:
    deployment_id = CodeDeploy().create_deployment(
        app.codedeploy_application, app.canary.deployment_group, REVISION, "created by an earlier attempt"
    )
    store.remember_deployment("r1", "canary", deployment_id, app.canary.deployment_group)
    callbacks = RecordingCallbacks()

    early = on_deployment_event(event(app, deployment_id, "SUCCESS"), store, CodeDeploy(), callbacks)
    started = deploy(app, store, callbacks)

    assert (early, started) == ("recorded", deployment_id)
    assert callbacks.succeeded == ["token-1"]
    assert len(cloud.codedeploy.created) == 1, "the retried task reuses its deployment"


def test_a_failed_deployment_fails_the_wait_with_the_reason(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore
) -> None:
    callbacks = RecordingCallbacks()
    deployment_id = deploy(app, store, callbacks)
    end(cloud, deployment_id, "Failed")

    on_deployment_event(event(app, deployment_id, "FAILURE"), store, CodeDeploy(), callbacks)

    [(token, error, cause)] = callbacks.failed
    assert (token, error) == ("token-1", "DeploymentFailed")
    assert cause == f"deployment {deployment_id} failed"


SCRIPT_FAILED = {
    "code": "SCRIPT_FAILED",
    "message": "Script at specified location: scripts/start.sh run as user root failed with exit code 1",
}


@pytest.mark.parametrize("event_first", [False, True], ids=["token first", "event first"])
def test_a_failed_deployments_reason_reaches_the_rollout_whichever_comes_first(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore, event_first: bool
) -> None:
    # Given a canary deployment that failed on its instances with CodeDeploy's reason
    deployment_id = CodeDeploy().create_deployment(
        app.codedeploy_application, app.canary.deployment_group, REVISION, "created by an earlier attempt"
    )
    store.remember_deployment("r1", "canary", deployment_id, app.canary.deployment_group)
    cloud.codedeploy.finish(deployment_id, succeeded=False, error=SCRIPT_FAILED)
    callbacks = RecordingCallbacks()

    # When its state-change event and the task's token arrive, in either order
    def the_event() -> None:
        on_deployment_event(event(app, deployment_id, "FAILURE"), store, CodeDeploy(), callbacks)

    if event_first:
        the_event()
    deploy(app, store, callbacks)
    if not event_first:
        the_event()

    # Then the wait fails once, with CodeDeploy's reason for the rollback's reason and notices
    [(token, error, cause)] = callbacks.failed
    assert (token, error) == ("token-1", "DeploymentFailed")
    assert cause == f"deployment {deployment_id} failed: {SCRIPT_FAILED['message']}"


class AlarmAfterTheCheck(Metrics):
    """canaryfleet's check finds the canary group's alarms OK; one goes into ALARM just after."""

    def __init__(self, cloud: LocalCloud, alarm: str) -> None:
        self._cloud, self._alarm = cloud, alarm

    def alarms_in_alarm(self, names: tuple[str, ...]) -> list[dict[str, str]]:
        firing = super().alarms_in_alarm(names)
        self._cloud.client("cloudwatch").set_alarm_state(
            AlarmName=self._alarm, StateValue="ALARM", StateReason="5xx share over the threshold"
        )
        return firing


class EventBeforeTheAnswer(CodeDeploy):
    """The deployment's state-change event is handled before CreateDeployment's answer is recorded."""

    def __init__(self, app: AppConfig, store: DynamoRolloutStore, callbacks: RecordingCallbacks) -> None:
        self.early: list[str] = []
        self._app, self._store, self._callbacks = app, store, callbacks

    def create_deployment(self, *args: Any, **kwargs: Any) -> str:
        deployment_id = super().create_deployment(*args, **kwargs)
        state = {"Succeeded": "SUCCESS", "Failed": "FAILURE", "Stopped": "STOP"}[
            self.status(deployment_id)[0]
        ]
        self.early.append(
            on_deployment_event(
                event(self._app, deployment_id, state), self._store, CodeDeploy(), self._callbacks
            )
        )
        return deployment_id


def test_a_deployment_codedeploy_stops_as_it_starts_fails_the_wait_even_if_its_event_came_first(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore
) -> None:
    # Given a canary group whose alarm goes into ALARM between canaryfleet's check and
    # CreateDeployment, so that CodeDeploy stops the deployment as it starts (ALARM_ACTIVE), and
    # the STOP event that comes before canaryfleet recorded the deployment's id
    [alarm] = app.canary.alarms[:1]
    callbacks = RecordingCallbacks()
    codedeploy = EventBeforeTheAnswer(app, store, callbacks)

    # When the deploy task runs
    deployment_id = start_deployment(
        request(app), store, codedeploy, callbacks, SystemClock(), alarms=AlarmAfterTheCheck(cloud, alarm)
    )

    # Then the wait fails at once with CodeDeploy's reason, not at the deployment's timeout
    assert codedeploy.early == ["ignored: not canaryfleet's"]
    assert status_of(cloud, deployment_id) == "Stopped"
    [(token, error, cause)] = callbacks.failed
    assert (token, error) == ("token-1", "DeploymentFailed")
    assert cause.startswith(f"deployment {deployment_id} stopped: ") and alarm in cause
    # and the same event delivered again (EventBridge delivers at least once) changes nothing
    assert (
        on_deployment_event(event(app, deployment_id, "STOP"), store, CodeDeploy(), callbacks) == "duplicate"
    )
    assert len(callbacks.failed) == 1 and callbacks.succeeded == []


def test_a_deployment_an_alarm_stops_midway_fails_the_wait_with_codedeploys_reason(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore
) -> None:
    # Given a canary deployment canaryfleet started, its instances at work
    callbacks = RecordingCallbacks()
    deployment_id = deploy(app, store, callbacks)
    end(cloud, deployment_id, "InProgress")

    # When one of the group's alarms goes off and clears before the instances are done, and
    # CodeDeploy's STOP event arrives once they finish their lifecycle event
    [alarm] = app.canary.alarms[:1]
    cloudwatch = cloud.client("cloudwatch")
    cloudwatch.set_alarm_state(
        AlarmName=alarm, StateValue="ALARM", StateReason="5xx share over the threshold"
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="calm again")
    cloud.codedeploy.complete_stop(deployment_id)
    result = on_deployment_event(event(app, deployment_id, "STOP"), store, CodeDeploy(), callbacks)

    # Then the wait fails once with CodeDeploy's reason, and CodeDeploy rolled nothing back
    assert (result, status_of(cloud, deployment_id)) == ("completed", "Stopped")
    [(token, error, cause)] = callbacks.failed
    assert (token, error) == ("token-1", "DeploymentFailed")
    assert cause.startswith(f"deployment {deployment_id} stopped: ") and alarm in cause
    assert [d.creator for d in cloud.codedeploy.created] == ["user"]


class ForgetsOnce(ForgetsTheFirstDeploymentId, DynamoRolloutStore):
    pass


def test_a_retry_takes_over_the_deployment_its_failed_attempt_created_rather_than_deploying_twice(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore
) -> None:
    # Given a deploy task whose attempt created the deployment and failed to record its id
    forgetful = ForgetsOnce(cloud.output("StateTableName"))
    with pytest.raises(RuntimeError):
        deploy(app, forgetful)
    [created] = [d.deployment_id for d in cloud.codedeploy.created]
    assert store.deployment_for("r1", "canary") is None

    # When the state machine retries the task, and the deployment ends
    callbacks = RecordingCallbacks()
    retried = deploy(app, forgetful, callbacks, token="token-2")
    cloud.codedeploy.finish(created, succeeded=True)
    result = on_deployment_event(event(app, created, "SUCCESS"), store, CodeDeploy(), callbacks)

    # Then the retry waits for the deployment the first attempt created: one deployment, not two
    assert retried == created and [d.deployment_id for d in cloud.codedeploy.created] == [created]
    assert store.deployment_for("r1", "canary") == created
    assert (result, callbacks.succeeded) == ("completed", ["token-2"])


def test_an_aborted_retry_records_the_deployment_its_failed_attempt_created_though_it_ended(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore
) -> None:
    # Given a deploy task whose attempt created the deployment and failed to record its id, an
    # older deployment of the group with another description, and the new one already ended
    CodeDeploy().create_deployment(app.codedeploy_application, app.canary.deployment_group, REVISION, "older")
    cloud.codedeploy.finish(cloud.codedeploy.created[0].deployment_id, succeeded=True)
    forgetful = ForgetsOnce(cloud.output("StateTableName"))
    with pytest.raises(RuntimeError):
        deploy(app, forgetful)
    created = cloud.codedeploy.created[-1].deployment_id
    cloud.codedeploy.finish(created, succeeded=True)

    # When on-call aborts (no wait open) and the state machine retries the task
    store.request_abort("hello-app", "r1", AbortRequest(by="oncall@example.com", reason="bad metrics"))
    callbacks = RecordingCallbacks()
    retried = deploy(app, forgetful, callbacks, token="token-2")

    # Then ListDeployments since the rollout began found it by its description: recorded for the
    # rollback to restore, its wait ended as an abort's, and nothing deployed again
    assert retried == created and store.deployment_for("r1", "canary") == created
    assert callbacks.failed == [("token-2", "Aborted", "aborted by oncall@example.com: bad metrics")]
    assert len(cloud.codedeploy.created) == 2


def test_a_group_busy_with_a_deployment_canaryfleet_did_not_create_stays_busy(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore
) -> None:
    other = cloud.client("codedeploy").create_deployment(
        applicationName=app.codedeploy_application,
        deploymentGroupName=app.canary.deployment_group,
        revision=REVISION.codedeploy(),
        description="a hotfix deployed by hand",
    )["deploymentId"]

    with pytest.raises(DeploymentGroupBusy, match=other):
        deploy(app, store)

    assert store.deployment_for("r1", "canary") is None
    assert [d.deployment_id for d in cloud.codedeploy.created] == [other]


def test_states_that_do_not_end_a_deployment_are_ignored(app: AppConfig, store: DynamoRolloutStore) -> None:
    callbacks = RecordingCallbacks()
    deployment_id = deploy(app, store, callbacks)

    result = on_deployment_event(event(app, deployment_id, "START"), store, CodeDeploy(), callbacks)

    assert result == "ignored" and callbacks.succeeded == [] and callbacks.failed == []


def test_a_lost_event_is_caught_up_by_reading_the_real_status_once(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore
) -> None:
    deployment_id = deploy(app, store)
    end(cloud, deployment_id, "Succeeded")

    assert check_after_timeout(REF, "canary", store, CodeDeploy()) == {
        "deployment_id": deployment_id,
        "status": "Succeeded",
    }


def test_a_deployment_still_running_at_the_timeout_is_stopped_without_codedeploys_rollback(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore
) -> None:
    deployment_id = deploy(app, store)
    end(cloud, deployment_id, "InProgress")

    with pytest.raises(DeploymentTimedOut, match="still InProgress at the deployment timeout; stopped it"):
        check_after_timeout(REF, "canary", store, CodeDeploy())
    cloud.codedeploy.complete_stop(deployment_id)  # its instances finish their lifecycle event

    assert status_of(cloud, deployment_id) == "Stopped"
    assert [d.creator for d in cloud.codedeploy.created] == ["user"], "no rollback deployment of CodeDeploy's"


def test_a_failed_deployment_of_canaryfleet_is_not_rolled_back_by_codedeploy(
    cloud: LocalCloud, app: AppConfig, store: DynamoRolloutStore
) -> None:
    good = CodeDeploy().create_deployment(
        app.codedeploy_application, app.canary.deployment_group, REVISION, "an earlier release"
    )
    cloud.codedeploy.finish(good, succeeded=True)
    deployment_id = deploy(app, store)

    cloud.codedeploy.finish(deployment_id, succeeded=False)

    group = cloud.client("codedeploy").get_deployment_group(
        applicationName=app.codedeploy_application, deploymentGroupName=app.canary.deployment_group
    )["deploymentGroupInfo"]
    assert "DEPLOYMENT_FAILURE" in group["autoRollbackConfiguration"]["events"], (
        "the group rolls back others'"
    )
    assert [d.creator for d in cloud.codedeploy.created] == ["user", "user"]


@pytest.mark.parametrize("state", ["SUCCESS", "FAILURE", "STOP"])
def test_an_event_of_a_deployment_canaryfleet_did_not_create_is_ignored_without_a_write(
    cloud: LocalCloud, store: DynamoRolloutStore, state: str
) -> None:
    foreign = DeploymentStateChange.model_validate(
        {
            "deploymentId": "d-OTHERTEAM1",
            "state": state,
            "application": "billing",
            "deploymentGroup": "billing-canary",
        }
    )
    callbacks = RecordingCallbacks()

    result = on_deployment_event(foreign, store, CodeDeploy(), callbacks)

    assert result == "ignored: not canaryfleet's"
    assert table_items(cloud, "DEPLOYMENT#d-OTHERTEAM1") == []
    assert callbacks.succeeded == [] and callbacks.failed == []


def test_other_teams_deployment_events_reach_no_function_or_end_ignored_and_none_is_dead_lettered(
    cloud: LocalCloud,
) -> None:
    def other_team(group: str, state: str) -> None:
        event = service_event(
            cloud.account_id,
            cloud.region,
            "aws.codedeploy",
            "CodeDeploy Deployment State-change Notification",
            [],
            {
                "deploymentId": f"d-{group}-{state}",
                "state": state,
                "application": "billing",
                "deploymentGroup": group,
            },
        )
        emit_service_event(cloud.account_id, cloud.region, event)

    for state in ("SUCCESS", "FAILURE", "STOP"):
        other_team("billing-blue", state)  # outside the rule's pattern
        other_team("billing-canary", state)  # inside it: the function ignores it
    cloud.wait_idle()

    calls = [i for i in cloud.runtime.invocations if i.function == cloud.resource("DeploymentEventFunction")]
    assert len(calls) == 3, "only the -canary group's three events match the rule"
    assert cloud.queue.failed == []
    assert table_items(cloud, "DEPLOYMENT#d-billing-canary-FAILURE") == []


def status_of(cloud: LocalCloud, deployment_id: str) -> str:
    info = cloud.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return str(info["status"])
