"""A new canaryfleet version, proved on a real account (or a local cloud): the whole story, once.

One test on purpose: each part needs the one before it (a rollback needs a release to go back
to, a drain needs a live group that runs it), and a run costs money, so it stops at the first
broken promise. Every part says what it does as it goes (`-s`).
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from tests.aws.checks import failing_build, good_build
from tests.aws.config import StoryConfig
from tests.aws.story import Story


def test_a_canaryfleet_version_releases_rolls_back_and_drains(
    story_config: StoryConfig, tmp_path: Path
) -> None:
    # Given the platform and one application's fleet, with traffic on its listener rule
    story = Story(story_config)
    run = datetime.now(UTC).strftime("r%Y%m%dt%H%M%S")
    good, bad, stopped = f"1.0.0-{run}", f"1.1.0-{run}", f"1.2.0-{run}"
    traffic = story.traffic()
    with story.approval_inbox() as inbox, traffic if traffic is not None else nullcontext():
        # When a good build is published and approved through the emailed link
        story.publish(good, good_build(tmp_path / "good"))
        page = story.approve_by_email(inbox, good, comment="acceptance suite")
        released = story.outcome_of(good)

        # Then it is released, and the audit names the approver
        assert "Approved" in page
        assert released["outcome"] == "released", released
        assert any(story_config.approver_email in who for who in released["decided_by"]), released

        # When a build whose every request fails is published
        story.publish(bad, failing_build(tmp_path / "bad"))
        rolled_back = story.outcome_of(bad)

        # Then the canary alarm rolls it back, and nothing is left running
        assert rolled_back["outcome"] == "rolled_back", rolled_back
        assert "canary alarm" in rolled_back["reason"], rolled_back
        assert story.cli("status", story_config.application)["running"] is False

        # When a good build's execution is stopped in Step Functions while it waits for its approval
        story.publish(stopped, good_build(tmp_path / "stopped"))
        story.stop_when_awaiting_approval(inbox, stopped)
        recovered = story.outcome_of(stopped)

        # Then a recovery execution rolls it back with the stop's reason, and nothing is left running
        assert recovered["outcome"] == "rolled_back", recovered
        assert recovered["reason"].startswith("stopped outside canaryfleet: AcceptanceSuite"), recovered
        assert story.cli("status", story_config.application)["running"] is False

    # When the live group scales in by one instance
    instance = story.scale_in_live()
    drain = story.drain_of(instance)

    # Then the instance drained, its hook was completed, and its logs are in S3 as the manifest says
    assert drain["outcome"] == "drained", drain
    assert drain["hook_completed_at"], drain
    assert story.manifest_problems(drain) == []

    # When one of the platform's own alarms goes off (a dead-letter queue holding an event)
    notice = story.platform_alarm_notice("EventDeadLetterQueueAlarm")

    # Then CloudWatch could publish it through the alarm topic's own key, and on-call reads which
    assert notice["NewStateValue"] == "ALARM", notice
    assert "EventDeadLetterQueue" in notice["AlarmDescription"], notice
