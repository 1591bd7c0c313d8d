"""Hostile bundles uploaded to the local cloud: each rollout is rejected with its reason, nothing deploys."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator

import pytest
from canaryfleet.models.app_config import registry_parameter
from canaryfleet.models.policy import default_policy

from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.fleet import deploy_fleet
from tests.integration.helpers import table_items
from tests.unit.hostile_bundles import (
    APPSPEC,
    overlapping_bomb,
    set_utf8_flag,
    valid_bundle,
    with_raw_name,
    with_stated,
    zip_of,
)

APP = "hello-app"
LAUGHS = "version: 0.0\nos: linux\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{x}: &{x} [{', '.join([f'*{p}'] * 9)}]\n" for p, x in zip("abcdefgh", "bcdefghi", strict=True)
)


def _symlink() -> bytes:
    link = zipfile.ZipInfo("app/link")
    link.external_attr = 0o120777 << 16
    return valid_bundle((link, b"/etc/shadow"))


# name -> (the bundle, what its rejection reason says)
BUNDLES: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty": (lambda: b"", "the bundle is empty (0 bytes)"),
    "slip-dotdot": (lambda: valid_bundle(("app/../../etc/cron.d/x", b"")), "contains '..'"),
    "slip-backslash": (lambda: valid_bundle(("..\\..\\Windows\\x", b"")), "contains '..'"),
    "slip-absolute": (lambda: valid_bundle(("/etc/cron.d/x", b"")), "is an absolute path"),
    "bomb-ratio": (lambda: valid_bundle(("app/zeros", b"\0" * 4 * 1024**2)), "a zip bomb"),
    "bomb-count": (
        lambda: zip_of([("appspec.yml", APPSPEC), *((f"f/{i}", b"") for i in range(100_000))]),
        "100,001 entries",
    ),
    "bomb-overlap": (lambda: overlapping_bomb(300), "overlap in the zip"),
    "bomb-understated": (
        lambda: with_stated(valid_bundle(("app/zeros", b"\0" * 4 * 1024**2)), "app/zeros", size=100),
        "unpacks to more than the 100 bytes it states",
    ),
    "duplicate": (lambda: valid_bundle(("app/a", b"1"), ("app/a", b"2")), "appears more than once"),
    "non-utf8-name": (
        lambda: set_utf8_flag(
            with_raw_name(valid_bundle(("app/XX", b"")), b"app/XX", b"app/\xff\xfe"), on=True
        ),
        "is not valid UTF-8",
    ),
    "billion-laughs": (lambda: zip_of([("appspec.yml", LAUGHS.encode())]), "uses a YAML alias"),
    "symlink": (_symlink, "symbolic link 'app/link' points to '/etc/shadow', an absolute path"),
}


@pytest.fixture(scope="module")
def onboarded() -> Iterator[LocalCloud]:
    with LocalCloud(parameters={"LogLevel": "CRITICAL"}) as cloud:
        app = deploy_fleet(cloud, APP).model_copy(update={"policy": default_policy()})
        cloud.client("ssm").put_parameter(
            Name=registry_parameter(APP), Value=app.model_dump_json(), Type="String", Overwrite=True
        )
        yield cloud


def test_hostile_bundles_are_rejected_with_their_reasons_and_nothing_is_deployed(
    onboarded: LocalCloud,
) -> None:
    s3 = onboarded.client("s3")
    bucket = onboarded.output("ArtifactBucketName")

    for index, (make, _) in enumerate(BUNDLES.values()):
        s3.put_object(Bucket=bucket, Key=f"{APP}/9.{index}.0.zip", Body=make())
    onboarded.wait_idle()

    records = {
        item["version"]: item
        for item in table_items(onboarded, f"APP#{APP}")
        if item["sk"].startswith("ROLLOUT#")
    }
    for index, (name, (_, reason)) in enumerate(BUNDLES.items()):
        record = records[f"9.{index}.0"]
        assert (record["status"], record["outcome"]) == ("rejected", "rejected"), name
        assert reason in record["reason"], (name, record["reason"])
    assert onboarded.executions("RolloutStateMachine") == []
    assert onboarded.codedeploy.created == []
    assert onboarded.codedeploy.revisions == {}
    assert onboarded.client("codedeploy").list_deployments()["deployments"] == []
