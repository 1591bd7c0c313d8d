"""The operator commands against the local cloud: the same code that talks to AWS."""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from canaryfleet.adapters.approval_store import DynamoApprovalStore
from canaryfleet.adapters.rollout_store import DynamoRolloutStore
from canaryfleet.models.approval import ApprovalStatus
from canaryfleet.models.rollout import Stage
from typer.testing import CliRunner

from canaryfleet_cli.main import app
from canaryfleet_local.bundles import SAMPLE_APP, bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.rollout_job import scenario_cloud, upload_build
from canaryfleet_local.simulator import FleetSimulator
from tests.helpers import without_aws_credentials
from tests.integration.helpers import eventually

runner = CliRunner()


def cli(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def cli_error(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture
def onboarded() -> Iterator[tuple[LocalCloud, FleetSimulator]]:
    """hello-app onboarded on a fresh local cloud, no rollout yet."""
    with scenario_cloud("awaiting-decision", parameters={"LogLevel": "ERROR"}) as (cloud, simulator):
        yield cloud, simulator


@pytest.fixture
def waiting() -> Iterator[tuple[LocalCloud, FleetSimulator]]:
    """hello-app 1.0.0 waiting for approval on a fresh local cloud."""
    with scenario_cloud("awaiting-decision", parameters={"LogLevel": "ERROR"}) as (cloud, simulator):
        upload_build(cloud, "hello-app", "1.0.0", bundle())
        eventually(lambda: cli("status", "hello-app").get("stage") == "awaiting_approval", timeout=300)
        yield cloud, simulator


def ended(cloud: LocalCloud) -> Any:
    [execution] = cloud.executions("RolloutStateMachine")
    return cloud.wait_for_execution(execution, timeout=300)


def test_status_shows_the_stage_weight_verdict_and_who_is_awaited(
    waiting: tuple[LocalCloud, FleetSimulator],
) -> None:
    row = cli("status", "hello-app")

    assert (row["running"], row["version"], row["canary_weight"], row["verdict"]) == (
        True,
        "1.0.0",
        10,
        "pass",
    )
    assert row["waiting_for"] and row["waiting_since"]
    assert [r["application"] for r in cli("status")] == ["hello-app"]


def test_approve_from_the_cli_releases_and_history_says_who(
    waiting: tuple[LocalCloud, FleetSimulator], tmp_path: Path
) -> None:
    cloud, _ = waiting

    result = cli("approve", "hello-app", "--reason", "checked the dashboards")

    assert result["outcome"] == "applied"
    assert ended(cloud).status == "SUCCEEDED"
    [row] = cli("history", "hello-app")
    assert row["outcome"] == "released"
    assert row["decided_by"] == ["approve by arn:aws:sts::123456789012:user/moto"]
    assert cli("status", "hello-app")["running"] is False
    # And its timeline page is written from the same record.
    page = tmp_path / "timeline.html"
    written = runner.invoke(app, ["report", row["rollout_id"], "--html", str(page)])
    assert written.exit_code == 0, written.output
    assert "1.0.0" in page.read_text() and "released" in page.read_text()


def test_a_decision_for_the_version_reviewed_waits_for_that_version_only(
    waiting: tuple[LocalCloud, FleetSimulator],
) -> None:
    cloud, _ = waiting

    # The operator reviewed 0.9.0; 1.0.0 is the one waiting now: nothing is decided
    refused = cli_error("approve", "hello-app", "--version", "0.9.0")

    assert "the running rollout of hello-app is version 1.0.0" in refused
    assert "not 0.9.0; nothing decided" in refused
    assert cli("status", "hello-app")["stage"] == "awaiting_approval"

    # The version reviewed: decided, and the platform checked it was still the running rollout
    result = cli("approve", "hello-app", "--version", "1.0.0")

    assert result["outcome"] == "applied"
    assert ended(cloud).status == "SUCCEEDED"


def test_reject_from_the_cli_rolls_back_with_the_reason(waiting: tuple[LocalCloud, FleetSimulator]) -> None:
    cloud, _ = waiting

    cli("reject", "hello-app", "--reason", "release freeze")

    assert ended(cloud).error == "Rejected"
    [row] = cli("history", "hello-app")
    assert (row["outcome"], row["reason"]) == (
        "rejected",
        "rejected by arn:aws:sts::123456789012:user/moto: release freeze",
    )


def test_abort_from_the_cli_rolls_back_at_once(waiting: tuple[LocalCloud, FleetSimulator]) -> None:
    cloud, _ = waiting

    cli("abort", "hello-app", "--reason", "incident")

    assert ended(cloud).error == "RolledBack"
    assert cli("history", "hello-app")[0]["reason"].endswith(": incident")


def test_an_abort_between_the_approval_and_going_live_creates_no_live_deployment(
    waiting: tuple[LocalCloud, FleetSimulator],
) -> None:
    # Given hello-app approved while a live alarm is in ALARM ("Deploy live" waits for it: CodeDeploy
    # would stop the deployment), and on-call's abort then, which finds no wait open
    cloud, _ = waiting
    cloudwatch = cloud.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName="hello-app-live-5xx-rate", StateValue="ALARM", StateReason="5xx")
    cli("approve", "hello-app")
    aborted = cli("abort", "hello-app", "--reason", "incident")

    # When the live alarm clears
    cloudwatch.set_alarm_state(AlarmName="hello-app-live-5xx-rate", StateValue="OK", StateReason="calm")

    # Then the rollout rolls back with the abort's reason, and the live group never got the build
    assert aborted["outcome"] == "recorded"
    assert ended(cloud).error == "RolledBack"
    [row] = cli("history", "hello-app")
    assert (row["outcome"], row["reason"]) == (
        "rolled_back",
        "aborted by arn:aws:sts::123456789012:user/moto: incident",
    )
    live = cloud.client("codedeploy").list_deployments(
        applicationName="hello-app", deploymentGroupName="hello-app-live"
    )
    assert live["deployments"] == []


def test_a_rollout_stopped_in_step_functions_is_rolled_back_and_the_next_one_runs(
    waiting: tuple[LocalCloud, FleetSimulator],
) -> None:
    cloud, _ = waiting
    [stopped] = cloud.executions("RolloutStateMachine")
    upload_build(cloud, "hello-app", "1.1.0", bundle())  # queued behind 1.0.0
    eventually(lambda: len(cloud.executions("RolloutStateMachine")) == 2, timeout=300)

    # As the console's Stop button does: no Catch of the state machine runs
    cloud.client("stepfunctions").stop_execution(executionArn=stopped, error="Manual", cause="paged")

    # A recovery rolls 1.0.0 back; then 1.1.0 has its turn and waits for its approval
    def next_one_waits() -> bool:
        row = cli("status", "hello-app")
        return bool(row.get("version") == "1.1.0" and row.get("stage") == "awaiting_approval")

    eventually(next_one_waits, timeout=300)
    [recovery] = [arn for arn in cloud.executions("RolloutStateMachine") if "-recovery-" in arn]
    assert cloud.wait_for_execution(recovery, timeout=300).error == "RolledBack"
    rows = {row["version"]: row for row in cli("history", "hello-app")}
    assert (rows["1.0.0"]["outcome"], rows["1.0.0"]["reason"]) == (
        "rolled_back",
        "stopped outside canaryfleet: Manual: paged",
    )
    table = cloud.output("StateTableName")
    record = DynamoRolloutStore(table).get("hello-app", rows["1.0.0"]["rollout_id"])
    assert record is not None and record.weight_log["rollback"].weight == 0  # its traffic went back

    # and its approval is settled now, not at its expiry, saying why: a click is told so
    assert record.approval_id is not None and record.wait_kind is None
    approvals = DynamoApprovalStore(table)

    def settled() -> bool:
        approval = approvals.get(str(record.approval_id))
        return approval is not None and approval.status is ApprovalStatus.CLOSED

    eventually(settled, timeout=300)
    approval = approvals.get(str(record.approval_id))
    assert approval is not None
    assert approval.closed_reason == "stopped outside canaryfleet: Manual: paged; the rollout rolls back"


def test_a_queued_rollout_stopped_in_step_functions_is_recovered_and_its_uploader_told(
    waiting: tuple[LocalCloud, FleetSimulator],
) -> None:
    # Given 1.0.0 waiting for its approval, and 1.1.0 queued behind it
    cloud, _ = waiting
    [running] = cloud.executions("RolloutStateMachine")
    upload_build(cloud, "hello-app", "1.1.0", bundle())
    sfn = cloud.client("stepfunctions")

    def queued() -> str | None:
        others = [arn for arn in cloud.executions("RolloutStateMachine") if arn != running]
        history = sfn.get_execution_history(executionArn=others[0])["events"] if others else []
        return others[0] if any(e["type"] == "TaskSubmitted" for e in history) else None

    stopped = eventually(queued, timeout=300)

    # When someone stops the queued one with the console's Stop button
    sfn.stop_execution(executionArn=stopped, error="Manual", cause="not this one")

    # Then its recovery records and tells its end, and 1.0.0 keeps its turn
    recovery = eventually(
        lambda: next((a for a in cloud.executions("RolloutStateMachine") if "-recovery-" in a), None),
        timeout=300,
    )
    ended_as = cloud.wait_for_execution(recovery, timeout=300)
    rows = {row["version"]: row for row in cli("history", "hello-app")}
    record = DynamoRolloutStore(cloud.output("StateTableName")).get("hello-app", rows["1.1.0"]["rollout_id"])
    assert (ended_as.status, ended_as.error) == ("FAILED", "RolledBack"), ended_as.states_entered
    assert ended_as.states_entered == [
        "Is it a recovery",
        "Take over the stopped rollout",
        "Did the stopped rollout hold its turn",
        "Say the queued rollout was stopped",
        "Record rollout rolled back",
        "Release rollout lock after rollback",
        "Was it rejected",
        "Rollout rolled back",
    ]
    assert record is not None and record.outcome == "rolled_back"
    assert record.reason is not None and record.reason.startswith(
        "stopped outside canaryfleet: Manual: not this one"
    )
    assert record.stage_at(Stage.ROLLED_BACK) is not None, "the rolled-back notice went out"
    assert cli("status", "hello-app")["version"] == "1.0.0"


def test_deciding_when_nothing_runs_is_a_clear_error(onboarded: tuple[LocalCloud, FleetSimulator]) -> None:
    output = cli_error("approve", "hello-app")

    assert "hello-app has no running rollout" in output


def test_an_unknown_application_is_a_clear_error(onboarded: tuple[LocalCloud, FleetSimulator]) -> None:
    assert "application 'ledger' is not onboarded" in cli_error("status", "ledger")
    assert "application 'ledger' is not onboarded" in cli_error("history", "ledger")


def test_publish_checks_the_bundle_then_uploads_it_with_its_metadata(
    onboarded: tuple[LocalCloud, FleetSimulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud, _ = onboarded
    monkeypatch.setenv("GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("BUILD_URL", "https://jenkins.example.com/job/hello-app/42/")

    published = cli("publish", "hello-app", "1.0.1", str(SAMPLE_APP))

    head = cloud.client("s3").head_object(Bucket=published["bucket"], Key="hello-app/1.0.1.zip")
    assert head["Metadata"] == {
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "build-url": "https://jenkins.example.com/job/hello-app/42/",
    }
    assert published["hooks"] == {
        "ApplicationStop": ["scripts/stop.sh"],
        "ApplicationStart": ["scripts/start.sh"],
        "ValidateService": ["scripts/validate.sh"],
    }
    cloud.wait_idle()
    assert len(cloud.executions("RolloutStateMachine")) == 1, "the upload started its rollout"


def test_publish_refuses_a_bundle_the_platform_would_reject(
    onboarded: tuple[LocalCloud, FleetSimulator], tmp_path: Path
) -> None:
    cloud, _ = onboarded
    (tmp_path / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: go.sh\n"
    )

    output = cli_error("publish", "hello-app", "1.0.2", str(tmp_path))

    assert "hook script go.sh named in appspec.yml (ApplicationStart) is not in the bundle" in output
    builds = cloud.client("s3").list_objects_v2(
        Bucket=cloud.output("ArtifactBucketName"), Prefix="hello-app/"
    )
    assert builds.get("Contents", []) == []


def test_without_credentials_the_cli_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    without_aws_credentials(monkeypatch, tmp_path)

    output = cli_error("status", "--region", "us-east-1")

    assert "no AWS credentials found" in output


def test_status_shows_what_codedeploy_will_ignore_in_the_running_bundle(
    onboarded: tuple[LocalCloud, FleetSimulator], tmp_path: Path
) -> None:
    folder = tmp_path / "app"
    shutil.copytree(SAMPLE_APP, folder)
    appspec = folder / "appspec.yml"
    appspec.write_text(
        appspec.read_text().replace(
            "destination: /opt/hello-app", "destination: /opt/hello-app\n    overwrite: true"
        )
    )
    cloud, _ = onboarded
    upload_build(cloud, "hello-app", "1.0.0", bundle(folder))
    eventually(lambda: cli("status", "hello-app").get("running"), timeout=30)

    row = cli("status", "hello-app")
    printed = runner.invoke(app, ["status", "hello-app"]).stdout

    note = "appspec.yml: files[0].overwrite (line 6) is ignored by CodeDeploy on EC2"
    assert row["bundle_notes"] == [note]
    assert f"hello-app: note: {note}" in printed
