"""`canaryfleet publish` with a zip that CI already built: checked, then uploaded byte for byte."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from canaryfleet.logic.bundle.archive import zip_folder
from typer.testing import CliRunner

from canaryfleet_cli.main import app
from canaryfleet_local.bundles import SAMPLE_APP
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.rollout_job import scenario_cloud
from canaryfleet_local.simulator import FleetSimulator

runner = CliRunner()


@pytest.fixture
def onboarded() -> Iterator[tuple[LocalCloud, FleetSimulator]]:
    """hello-app onboarded on a fresh local cloud, no rollout yet."""
    with scenario_cloud("awaiting-decision", parameters={"LogLevel": "ERROR"}) as (cloud, simulator):
        yield cloud, simulator


def test_publish_uploads_a_zip_built_by_ci_as_it_is(
    onboarded: tuple[LocalCloud, FleetSimulator], tmp_path: Path
) -> None:
    # Given a zip that CI built
    cloud, _ = onboarded
    built = tmp_path / "hello-app-1.0.1.zip"
    built.write_bytes(zip_folder(SAMPLE_APP))

    # When it is published
    result = runner.invoke(app, ["publish", "hello-app", "1.0.1", str(built), "--json"])

    # Then the object in S3 is that file, byte for byte, and its rollout started
    assert result.exit_code == 0, result.output
    published = json.loads(result.stdout)
    body = cloud.client("s3").get_object(Bucket=published["bucket"], Key="hello-app/1.0.1.zip")["Body"]
    assert body.read() == built.read_bytes()
    cloud.wait_idle()
    assert len(cloud.executions("RolloutStateMachine")) == 1


def test_publish_checks_a_ci_zip_before_uploading_it(
    onboarded: tuple[LocalCloud, FleetSimulator], tmp_path: Path
) -> None:
    # Given a zip with no appspec.yml
    cloud, _ = onboarded
    built = tmp_path / "broken.zip"
    built.write_bytes(zip_folder(SAMPLE_APP / "scripts"))

    # When it is published
    result = runner.invoke(app, ["publish", "hello-app", "1.0.2", str(built)])

    # Then the platform's reason is shown and nothing is uploaded
    assert result.exit_code == 1
    assert "the bundle has no appspec.yml at its root" in result.output
    builds = cloud.client("s3").list_objects_v2(
        Bucket=cloud.output("ArtifactBucketName"), Prefix="hello-app/"
    )
    assert builds.get("Contents", []) == []


def test_publish_refuses_a_file_that_is_not_a_zip(tmp_path: Path) -> None:
    # Given a tarball where a zip or a folder is expected
    tarball = tmp_path / "build.tar.gz"
    tarball.write_bytes(b"\x1f\x8b")

    # When it is published
    result = runner.invoke(app, ["publish", "hello-app", "1.0.3", str(tarball)])

    # Then the path is refused before anything else happens
    assert result.exit_code == 2
    message = " ".join(result.output.replace("│", " ").split())  # Rich boxes and wraps the error
    assert "a folder with appspec.yml at its root, or a .zip file" in message
