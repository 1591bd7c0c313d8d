"""The local cloud's CodeDeploy refuses what AWS refuses and rolls back as AWS does.

Each test holds one rule of the ``CodeDeployLifecycle`` stand-in (its docstring cites the
sources): one active deployment per deployment group, CodeDeploy's automatic rollback as a new
deployment (group setting unless the deployment overrides it), StopDeployment, GetDeployment.
The test plays the instances, as the fleet simulator does: ``finish`` and ``complete_stop``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from canaryfleet.adapters.fleet import CodeDeploy
from canaryfleet.errors import DeploymentGroupBusy
from canaryfleet.models.rollout import Revision
from moto.codedeploy.models import codedeploy_backends

from canaryfleet_local.cloud import LocalCloud

ROLE = "arn:aws:iam::123456789012:role/codedeploy"
ROLLS_BACK = {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    """One platform for the module; each test makes its own application and groups."""
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as local:
        yield local


@pytest.fixture
def codedeploy(cloud: LocalCloud) -> Any:
    return cloud.client("codedeploy")


def a_group(
    codedeploy: Any, rollback: dict[str, Any] | None = None, alarms: tuple[str, ...] = ()
) -> tuple[str, str]:
    """A new application with one deployment group (automatic rollback and alarms as given); its names."""
    application = f"app-{uuid.uuid4().hex[:8]}"
    codedeploy.create_application(applicationName=application, computePlatform="Server")
    extra: dict[str, Any] = {"autoRollbackConfiguration": rollback} if rollback else {}
    if alarms:
        extra["alarmConfiguration"] = {"enabled": True, "alarms": [{"name": name} for name in alarms]}
    codedeploy.create_deployment_group(
        applicationName=application, deploymentGroupName=f"{application}-canary", serviceRoleArn=ROLE, **extra
    )
    return application, f"{application}-canary"


def revision(version: str) -> dict[str, Any]:
    return {
        "revisionType": "S3",
        "s3Location": {"bucket": "artifacts", "key": f"app/{version}.zip", "bundleType": "zip"},
    }


def deploy(codedeploy: Any, group: tuple[str, str], version: str, **extra: Any) -> str:
    application, name = group
    response = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=name, revision=revision(version), **extra
    )
    return str(response["deploymentId"])


def info(codedeploy: Any, deployment_id: str) -> dict[str, Any]:
    return dict(codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"])


def deployments_of(codedeploy: Any, group: tuple[str, str]) -> list[dict[str, Any]]:
    ids = codedeploy.list_deployments(applicationName=group[0], deploymentGroupName=group[1])["deployments"]
    return [info(codedeploy, i) for i in ids]


def started(cloud: LocalCloud, deployment_id: str) -> None:
    """The instances have started on the deployment (the fleet simulator does it at once)."""
    next(d for d in cloud.codedeploy.created if d.deployment_id == deployment_id).status = "InProgress"


def error_code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def test_a_second_deployment_while_one_is_active_in_the_group_is_refused(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    group, other_group = a_group(codedeploy), a_group(codedeploy)
    first = deploy(codedeploy, group, "1.0.0")

    with pytest.raises(ClientError) as refused:
        deploy(codedeploy, group, "1.1.0")
    in_other_group = deploy(codedeploy, other_group, "1.1.0")
    cloud.codedeploy.finish(first, succeeded=True)
    after_it_ended = deploy(codedeploy, group, "1.1.0")

    assert error_code(refused) == "DeploymentLimitExceededException"
    assert first in str(refused.value)
    assert in_other_group and after_it_ended


def test_canaryfleet_reads_a_busy_group_as_a_typed_error(cloud: LocalCloud, codedeploy: Any) -> None:
    application, name = a_group(codedeploy)
    deploy(codedeploy, (application, name), "1.0.0")
    build = Revision(bucket="artifacts", key="app/1.1.0.zip", version_id="v", etag="e", version="1.1.0")

    with pytest.raises(DeploymentGroupBusy, match="already in progress"):
        CodeDeploy().create_deployment(application, name, build, "canaryfleet r1 canary-restore")


def test_a_failure_with_the_groups_automatic_rollback_redeploys_the_last_successful_revision(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    group = a_group(codedeploy, ROLLS_BACK)
    good = deploy(codedeploy, group, "1.0.0")
    cloud.codedeploy.finish(good, succeeded=True)
    bad = deploy(codedeploy, group, "1.1.0")

    cloud.codedeploy.finish(bad, succeeded=False, error={"code": "HEALTH_CONSTRAINTS", "message": "too few"})

    [rollback] = [d for d in deployments_of(codedeploy, group) if d["deploymentId"] not in (good, bad)]
    failed = info(codedeploy, bad)
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["revision"]["s3Location"]["key"] == "app/1.0.0.zip"
    assert rollback["status"] == "Created", "a new deployment, active until its instances end it"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == bad
    assert failed["rollbackInfo"]["rollbackDeploymentId"] == rollback["deploymentId"]
    assert failed["errorInformation"] == {"code": "HEALTH_CONSTRAINTS", "message": "too few"}


def test_a_failure_in_a_group_with_no_earlier_success_is_not_rolled_back(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    group = a_group(codedeploy, ROLLS_BACK)
    first = deploy(codedeploy, group, "1.0.0")

    cloud.codedeploy.finish(first, succeeded=False)

    assert [d["deploymentId"] for d in deployments_of(codedeploy, group)] == [first]
    assert "no earlier successful deployment" in info(codedeploy, first)["rollbackInfo"]["rollbackMessage"]


def test_a_deployment_that_turns_automatic_rollback_off_for_itself_is_not_rolled_back(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    group = a_group(codedeploy, ROLLS_BACK)
    good = deploy(codedeploy, group, "1.0.0")
    cloud.codedeploy.finish(good, succeeded=True)
    bad = deploy(codedeploy, group, "1.1.0", autoRollbackConfiguration={"enabled": False})

    cloud.codedeploy.finish(bad, succeeded=False)

    assert len(deployments_of(codedeploy, group)) == 2
    assert info(codedeploy, bad)["rollbackInfo"] == {}


def test_a_stop_is_pending_and_the_group_busy_until_the_instances_finish(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    group = a_group(codedeploy)
    running = deploy(codedeploy, group, "1.1.0")
    started(cloud, running)

    answer = codedeploy.stop_deployment(deploymentId=running, autoRollbackEnabled=False)
    with pytest.raises(ClientError) as busy:
        deploy(codedeploy, group, "1.0.0")
    cloud.codedeploy.complete_stop(running)

    assert answer["status"] == "Pending"
    assert error_code(busy) == "DeploymentLimitExceededException"
    stopped = info(codedeploy, running)
    assert stopped["status"] == "Stopped" and stopped["completeTime"] is not None
    assert deploy(codedeploy, group, "1.0.0")


def test_a_stop_asking_for_a_rollback_gets_codedeploys_rollback_deployment(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    group = a_group(codedeploy)  # the group itself has no automatic rollback
    good = deploy(codedeploy, group, "1.0.0")
    cloud.codedeploy.finish(good, succeeded=True)
    running = deploy(codedeploy, group, "1.1.0")
    started(cloud, running)

    codedeploy.stop_deployment(deploymentId=running, autoRollbackEnabled=True)
    cloud.codedeploy.complete_stop(running)

    creators = [d["creator"] for d in deployments_of(codedeploy, group)]
    assert sorted(creators) == ["codeDeployRollback", "user", "user"]


def test_a_deployment_that_has_not_started_stops_at_once(cloud: LocalCloud, codedeploy: Any) -> None:
    group = a_group(codedeploy)
    created = deploy(codedeploy, group, "1.1.0")

    answer = codedeploy.stop_deployment(deploymentId=created, autoRollbackEnabled=False)

    assert answer["status"] == "Succeeded"
    assert info(codedeploy, created)["status"] == "Stopped"


def test_stopping_a_deployment_that_ended_is_refused(cloud: LocalCloud, codedeploy: Any) -> None:
    group = a_group(codedeploy)
    ended = deploy(codedeploy, group, "1.0.0")
    cloud.codedeploy.finish(ended, succeeded=True)

    with pytest.raises(ClientError) as refused:
        codedeploy.stop_deployment(deploymentId=ended, autoRollbackEnabled=False)

    assert error_code(refused) == "DeploymentAlreadyCompletedException"
    assert CodeDeploy().stop(ended) is False


def test_get_deployment_reports_who_created_it_and_when_it_began_and_ended(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    group = a_group(codedeploy)
    deployment_id = deploy(codedeploy, group, "1.0.0")
    active = info(codedeploy, deployment_id)
    cloud.codedeploy.finish(deployment_id, succeeded=True)

    ended = info(codedeploy, deployment_id)

    assert active["creator"] == "user" and active.get("completeTime") is None
    assert ended["createTime"] <= ended["completeTime"]


def an_alarm(cloud: LocalCloud, state: str) -> str:
    """A CloudWatch alarm in ``state``; its name."""
    name = f"alarm-{uuid.uuid4().hex[:8]}"
    cloudwatch = cloud.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="set by the test")
    return name


def test_a_deployment_started_while_one_of_its_groups_alarms_is_in_alarm_is_stopped(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    firing, calm = an_alarm(cloud, "ALARM"), an_alarm(cloud, "OK")
    group = a_group(codedeploy, ROLLS_BACK, alarms=(calm, firing))
    quiet_group = a_group(codedeploy, alarms=(calm,))

    stopped = info(codedeploy, deploy(codedeploy, group, "1.0.0"))
    runs = info(codedeploy, deploy(codedeploy, quiet_group, "1.0.0"))
    after_the_stop = deploy(codedeploy, group, "1.0.1")

    assert stopped["status"] == "Stopped"
    assert stopped["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert firing in stopped["errorInformation"]["message"]
    assert calm not in stopped["errorInformation"]["message"]
    assert "rollbackDeploymentId" not in stopped["rollbackInfo"], "no earlier success to roll back to"
    assert runs["status"] == "Created"
    assert after_the_stop, "a stopped deployment leaves the group free"


def test_a_deployment_that_turns_its_alarm_polling_off_is_not_stopped_by_them(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    firing = an_alarm(cloud, "ALARM")
    group = a_group(codedeploy, alarms=(firing,))

    restore = deploy(codedeploy, group, "1.0.0", overrideAlarmConfiguration={"enabled": False})
    cloud.codedeploy.finish(restore, succeeded=True)

    assert info(codedeploy, restore)["status"] == "Succeeded"


def test_an_alarm_that_goes_off_and_clears_during_a_deployment_stops_it(
    cloud: LocalCloud, codedeploy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running deployment of a group that rolls back on an alarm's stop, after a success
    alarm = an_alarm(cloud, "OK")
    group = a_group(codedeploy, ROLLS_BACK, alarms=(alarm,))
    good = deploy(codedeploy, group, "1.0.0")
    cloud.codedeploy.finish(good, succeeded=True)
    running = deploy(codedeploy, group, "1.1.0")
    started(cloud, running)
    told: list[Any] = []
    monkeypatch.setattr(cloud.codedeploy, "on_stop_requested", told.append)

    # When its alarm goes to ALARM and back to OK before its instances are done
    cloudwatch = cloud.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="calm again")
    finished = cloud.codedeploy.finish(running, succeeded=True)
    stopping = info(codedeploy, running)
    cloud.codedeploy.complete_stop(running)  # its instances finish the lifecycle event they were in

    # Then CodeDeploy stopped it: its instances were told, it ended Stopped and was rolled back
    assert [d.deployment_id for d in told] == [running]
    assert finished is False and stopping["status"] == "InProgress"
    ended = info(codedeploy, running)
    assert (ended["status"], ended["errorInformation"]["code"]) == ("Stopped", "ALARM_ACTIVE")
    assert alarm in ended["errorInformation"]["message"]
    rollback = info(codedeploy, ended["rollbackInfo"]["rollbackDeploymentId"])
    assert rollback["revision"]["s3Location"]["key"] == "app/1.0.0.zip"


def test_a_deployment_that_turns_its_alarm_polling_off_is_not_stopped_by_an_alarm_during_it(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    alarm = an_alarm(cloud, "OK")
    group = a_group(codedeploy, alarms=(alarm,))
    restore = deploy(codedeploy, group, "1.0.0", overrideAlarmConfiguration={"enabled": False})
    started(cloud, restore)

    cloud.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx")
    cloud.codedeploy.finish(restore, succeeded=True)

    assert info(codedeploy, restore)["status"] == "Succeeded"


def test_a_group_whose_alarm_configuration_is_off_is_not_stopped_by_its_alarms(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    firing = an_alarm(cloud, "ALARM")
    application = f"app-{uuid.uuid4().hex[:8]}"
    codedeploy.create_application(applicationName=application, computePlatform="Server")
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=f"{application}-canary",
        serviceRoleArn=ROLE,
        alarmConfiguration={"enabled": False, "alarms": [{"name": firing}]},
    )

    deployment_id = deploy(codedeploy, (application, f"{application}-canary"), "1.0.0")

    assert info(codedeploy, deployment_id)["status"] == "Created"


def test_canaryfleets_restore_turns_the_groups_alarm_polling_off_and_its_deployments_keep_it(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    firing = an_alarm(cloud, "ALARM")
    restore_group, forward_group = (
        a_group(codedeploy, alarms=(firing,)),
        a_group(codedeploy, alarms=(firing,)),
    )
    build = Revision(bucket="artifacts", key="app/1.0.0.zip", version_id="v", etag="e", version="1.0.0")

    restore = CodeDeploy().create_deployment(*restore_group, build, "r1 canary-restore", restore=True)
    forward = CodeDeploy().create_deployment(*forward_group, build, "r2 canary")

    assert info(codedeploy, restore)["status"] == "Created"
    assert info(codedeploy, forward)["status"] == "Stopped"
    # and the restore ignores the failed build's stop scripts (CodeDeploy runs ApplicationStop,
    # BeforeBlockTraffic and AfterBlockTraffic from the build being removed); a new build does not
    assert info(codedeploy, restore)["ignoreApplicationStopFailures"] is True
    assert info(codedeploy, forward).get("ignoreApplicationStopFailures") in (False, None)


def test_a_success_by_minimum_healthy_hosts_with_a_failed_instance_reads_as_failed(
    cloud: LocalCloud, codedeploy: Any
) -> None:
    # Given a deployment CodeDeploy ended Succeeded with one of its two instances failed (AllAtOnce
    # "succeeds if deployment to even a single instance is successful"): GetDeployment's
    # deploymentOverview counts them
    group = a_group(codedeploy)
    build = Revision(bucket="artifacts", key="app/1.0.0.zip", version_id="v", etag="e", version="1.0.0")
    deployment_id = CodeDeploy().create_deployment(*group, build, "r1 canary")
    deployment = codedeploy_backends[cloud.account_id][cloud.region].deployments[deployment_id]
    deployment.status = "Succeeded"
    deployment.deployment_overview.update({"Succeeded": 1, "Failed": 1})

    # When canaryfleet reads it
    status, message = CodeDeploy().status(deployment_id)

    # Then it is a failure that says how many instances lack the build
    assert status == "Failed"
    assert message.startswith("1 of 2 instance(s) failed and 0 skipped, though CodeDeploy counted")
    deployment.deployment_overview.update({"Succeeded": 2, "Failed": 0})
    assert CodeDeploy().status(deployment_id) == ("Succeeded", "")
