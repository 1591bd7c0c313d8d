"""`canaryfleet freeze add|list|remove` and `promote --override-window` against the local cloud."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from canaryfleet_local.bundles import bundle
from canaryfleet_local.cloud import LocalCloud
from canaryfleet_local.rollout_job import scenario_cloud, upload_build
from canaryfleet_local.simulator import FleetSimulator
from tests.e2e.test_operator_cli import cli, cli_error, ended
from tests.integration.helpers import eventually


@pytest.fixture
def onboarded() -> Iterator[tuple[LocalCloud, FleetSimulator]]:
    """hello-app onboarded (no window: it may release at any time), no rollout yet."""
    with scenario_cloud("healthy", parameters={"LogLevel": "ERROR"}) as (cloud, simulator):
        yield cloud, simulator


def waiting_for() -> str:
    return str(cli("status", "hello-app").get("waiting_for") or "")


def test_a_freeze_holds_an_upload_and_removing_it_releases_the_build_at_once(
    onboarded: tuple[LocalCloud, FleetSimulator],
) -> None:
    cloud, _ = onboarded

    added = cli("freeze", "add", "--for", "2h", "--reason", "biggest sale of the year", "--id", "sale-day")
    upload_build(cloud, "hello-app", "1.0.0", bundle())
    eventually(lambda: "the end of a freeze" in waiting_for(), timeout=300)
    said = waiting_for()
    row = cli("status", "hello-app")
    rollout_id = row["rollout_id"]
    [wait] = row["window_waits"]
    listed = cli("freeze", "list")
    removed = cli("freeze", "remove", "sale-day", "--reason", "the sale moved to next week")

    assert added["freeze"]["freeze_id"] == "sale-day" and added["freeze"]["declared_by"]
    assert "(in 1h 59m)" in said or "(in 2h 0m)" in said
    assert "biggest sale of the year" in said
    assert (wait["guard"], wait["kind"], wait["ended"]) == ("canary", "freeze", False)
    assert [f["freeze_id"] for f in listed] == ["sale-day"]
    assert removed["rechecked"] == [rollout_id]
    # Without the wake-up the rollout would wait two hours: ending now is the freeze's removal.
    assert ended(cloud).status == "SUCCEEDED"
    assert cli("freeze", "list") == []
    [kept] = cli("freeze", "list", "--all")
    assert kept["removed_reason"] == "the sale moved to next week" and kept["removed_by"]


def test_an_override_without_a_reason_is_refused_and_a_bad_freeze_changes_nothing(
    onboarded: tuple[LocalCloud, FleetSimulator],
) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    assert "say why" in cli_error("promote", "hello-app", "--override-window")
    assert "would have ended already" in cli_error("freeze", "add", "--end", past, "--reason", "x")
    assert "give the offset too" in cli_error(
        "freeze", "add", "--end", "2030-01-01T10:00:00", "--reason", "x"
    )
    assert "exactly one of --end and --for" in cli_error("freeze", "add", "--reason", "x")
    assert "a duration such as" in cli_error("freeze", "add", "--for", "soon", "--reason", "x")
    assert "no standing freeze nope" in cli_error("freeze", "remove", "nope", "--reason", "x")
    assert cli("freeze", "list", "--all") == []
