"""What the state table holds about rollouts, as typed records.

The rollout record (sk ``ROLLOUT#<id>``) is written by several functions over a rollout's
life, each setting only its own attributes; every field below says who writes it and what
it is until then. The other items (the lock, queue entries, decided versions, deployments)
are small and written once. Times are stored as ISO 8601 text and read back as aware
datetimes; ``IsoTime`` writes them back out the same way in JSON, so reports built from a
record show the stored text.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from canaryfleet.models.app_config import Color, Strategy
from canaryfleet.models.policy import RolloutPolicy
from canaryfleet.models.rollout import RolloutRef, Stage, Verdict

IsoTime = Annotated[datetime, PlainSerializer(lambda at: at.isoformat(), return_type=str, when_used="json")]

RolloutStatus = Literal["received", "started", "released", "rolled_back", "rejected"]
RolloutOutcome = Literal["released", "rolled_back", "rejected"]
WaitKind = Literal["deployment", "bake", "approval", "window"]
AuditKind = Literal[
    "approve",
    "reject",
    "abort",
    "promote",
    "alarm",
    "approval_expired",
    "canary_spot_interruption",
    "window_override",
]
DecisionChannel = Literal["slack", "page", "cli", "local"]


class _Stored(BaseModel):
    # Attributes this version does not know (pk, sk, or written by a newer version) are
    # skipped rather than refused: reading a record never fails on what it does not need.
    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")


class WeightEntry(_Stored):
    """One canary weight the rollout set (the weight log is keyed by the step's ``seq``)."""

    weight: int = Field(ge=0, le=100)
    at: IsoTime


# The alarm entries one rollout record's audit lists; later ones are only counted
# (``alarms_not_listed``): a record is one DynamoDB item, and an item holds at most 400 KB.
MAX_LISTED_ALARMS = 200


class AuditEntry(_Stored):
    """Something that happened to the rollout from outside: a decision, an alarm, an expiry.

    A decision has ``by``, ``reason`` and ``channel``; an alarm ``alarm`` and ``side``; an
    unanswered approval ``approval_id``; a canary Spot interruption (written by the drain)
    ``instance``. The rest stay None and are not stored.
    """

    kind: AuditKind
    by: str | None = Field(default=None, description="Who decided (decisions only).")
    reason: str | None = Field(default=None, description="What they said (decisions only; may be empty).")
    channel: DecisionChannel | None = Field(default=None, description="Where they decided (decisions only).")
    alarm: str | None = Field(default=None, description="The alarm's name (alarms only).")
    side: str | None = Field(default=None, description="canary or live (alarms only).")
    approval_id: str | None = Field(default=None, description="The approval that expired (expiries only).")
    instance: str | None = Field(default=None, description="The interrupted instance (interruptions only).")
    at: IsoTime

    def stored(self) -> dict[str, Any]:
        """The entry as written to the table (no None fields)."""
        return self.model_dump(mode="json", exclude_none=True)

    def once_key(self) -> str:
        """What the same entry written again has too: the same decision completed twice (two
        answers' retries at once, an invocation retried) is listed once."""
        said = json.dumps(self.stored(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(said.encode()).hexdigest()[:32]


class AbortRequest(_Stored):
    """On-call asked to abort; every wait that begins later ends at once too."""

    by: str
    reason: str = ""


class CanaryInterruption(_Stored):
    """A canary instance reclaimed (Spot) or scaled in while the rollout ran (the drain writes it)."""

    instance: str
    at: IsoTime


class WindowWait(_Stored):
    """A guarded step's wait for the calendar (a closed window or a freeze), kept by guard."""

    guard: Literal["canary", "live"]
    started: IsoTime
    until: IsoTime = Field(description="When it may run, while waiting; when it did, once ended.")
    reason: str
    kind: Literal["window", "freeze"] = Field(description="What held it when the wait was last checked.")
    timezone: str = Field(default="UTC", description="Where ``until`` is shown (the window's zone).")
    ended: bool = False


class WindowOverride(_Stored):
    """A named person let this rollout run its guarded steps outside its windows and freezes."""

    by: str
    reason: str
    at: IsoTime


class RolloutRecord(_Stored):
    """One rollout, as the state table holds it (sk ``ROLLOUT#<rollout id>``)."""

    # Written once by start_rollout when the upload arrives.
    rollout_id: str
    application: str
    version: str
    artifact_bucket: str
    artifact_key: str
    artifact_version_id: str | None = Field(default=None, description="None: an unversioned bucket.")
    artifact_etag: str | None = None
    commit: str | None = Field(default=None, description="From the object's metadata; None if not given.")
    build_url: str | None = Field(default=None, description="From the object's metadata; None if not given.")
    arrival: str | None = Field(default=None, description="Its queue sort key; None for a rejected upload.")
    bundle_notes: list[str] = Field(
        default_factory=list,
        description="What the upload check noted (start_rollout): bakes too short to judge, what "
        "CodeDeploy's agent ignores in the bundle, metadata dropped.",
    )
    policy: RolloutPolicy | None = Field(
        default=None, description="The policy it runs by (its rollout.yaml's, if any); None: older records."
    )
    received_at: IsoTime
    status: RolloutStatus = Field(default="received", description="started once its execution runs.")
    execution_arn: str | None = Field(default=None, description="Set when the execution is started.")

    # record_stage: each stage's first entry time, and the latest stage entered.
    stage_started_at: IsoTime | None = None
    stage_canary_deployed_at: IsoTime | None = None
    stage_traffic_shifted_at: IsoTime | None = None
    stage_verdict_at: IsoTime | None = None
    stage_awaiting_approval_at: IsoTime | None = None
    stage_released_at: IsoTime | None = None
    stage_rolled_back_at: IsoTime | None = None
    current_stage: Stage | None = Field(default=None, description="None until the first stage is recorded.")
    current_stage_at: IsoTime | None = None

    # shift_traffic: every weight set, by step.
    weight_log: dict[str, WeightEntry] = Field(default_factory=dict)

    # The wait in progress (deployment, bake, approval); the token ends it.
    wait_kind: WaitKind | None = Field(default=None, description="None between waits, after a decision.")
    wait_token: str | None = Field(default=None, repr=False, description="A secret: never shown.")
    wait_started_at: IsoTime | None = None
    bake_started_at: IsoTime | None = Field(default=None, description="Start of the latest bake's window.")
    approval_id: str | None = Field(default=None, description="The latest approval asked for.")
    approval_expires_at: IsoTime | None = None
    approval_step: int | None = Field(default=None, description="The canary step of the latest approval.")
    stopped_because: str | None = Field(
        default=None,
        description="Why its execution ended outside canaryfleet (a stop, a time-out), written with its"
        " wait's end when its recovery took over: an approval it waited for closes saying so.",
    )

    # analyse, people, the drain.
    verdict: Verdict | None = Field(default=None, description="The latest analysis; None before one ran.")
    decision: AuditEntry | None = Field(default=None, description="The approval's decision, once made.")
    abort_requested: AbortRequest | None = None
    promoted_by: str | None = Field(default=None, description="Who promoted it past its waits, if anyone.")
    audit: list[AuditEntry] = Field(default_factory=list)
    alarms_not_listed: int = Field(
        default=0, description="Alarm state changes past the ones the audit lists (an item's 400 KB)."
    )
    canary_interruptions: list[CanaryInterruption] = Field(default_factory=list)
    canary_interrupted_instances: list[str] = Field(
        default_factory=list, description="The interrupted instances, as a set (the drain's guard)."
    )
    # window: waits for deployment windows and freezes (by guard), and who overrode them.
    window_waits: dict[str, WindowWait] = Field(default_factory=dict)
    window_overrides: list[WindowOverride] = Field(default_factory=list)

    # blue/green (the color task, once it holds the lock): which color served when it began,
    # and which carries the release. None: an in-place rollout, or one that has not begun.
    strategy: Strategy | None = None
    live_color: Color | None = None
    release_color: Color | None = None
    old_color_left_up: str | None = Field(
        default=None,
        description="Blue/green, released: why the color that served before it was not scaled to"
        " zero after the scale-down delay (it keeps its instances); None when it was, or not yet.",
    )

    # How it ended (finalize, record_rollback, or start_rollout for a rejected upload).
    outcome: RolloutOutcome | None = Field(default=None, description="None while it runs.")
    reason: str | None = Field(
        default=None, description="Why it ended that way; empty when released and recorded."
    )
    error: str | None = Field(default=None, description="The state machine error that rolled it back.")
    ended_at: IsoTime | None = None

    @property
    def ref(self) -> RolloutRef:
        """Which rollout this is, as task payloads and logic calls carry it."""
        return RolloutRef(application=self.application, rollout_id=self.rollout_id, version=self.version)

    def color_text(self) -> str | None:
        """Blue/green: which color serves and which carries this release, in words; None in place."""
        if self.strategy != "blue_green" or self.live_color is None or self.release_color is None:
            return None
        live, release = self.live_color, self.release_color
        if self.outcome == "released":
            said = f"{release} carries {self.version} and is live now; {live} served before it"
            return f"{said}, and {self.old_color_left_up}" if self.old_color_left_up else said
        if self.outcome is not None:
            return f"{live} is live; {release} carried {self.version} and goes back to zero"
        return f"{live} is live; {release} carries {self.version}"

    def serves_all_traffic(self) -> bool:
        """Whether the build already took every request for good: released, or the last shift
        of its release logged (blue/green's move of all traffic to the release color, ``release``;
        in place, the canary's share back to live after the live deployment, ``final``), and no
        rollback's shift since. From there on the rollout only records and ends: no step reads
        an abort any more."""
        if self.stage_released_at is not None:
            return True
        if "rollback" in self.weight_log:
            return False
        moved = self.weight_log.get("release")
        return (moved is not None and moved.weight == 100) or "final" in self.weight_log

    def stage_at(self, stage: Stage) -> datetime | None:
        """When the rollout first entered ``stage``; None if it never did."""
        at: datetime | None = getattr(self, f"stage_{stage.value}_at")
        return at

    def calendar_waits(self) -> list[WindowWait]:
        """The waits for the calendar as they stand, oldest first. A wait the rollout ended in
        (an abort, an alarm, a failure: only the window check marks one ended) ended with it."""
        waits = sorted(self.window_waits.values(), key=lambda w: w.started)
        if self.ended_at is None:
            return waits
        ended_at = self.ended_at
        return [
            w if w.ended else w.model_copy(update={"until": min(w.until, ended_at), "ended": True})
            for w in waits
        ]

    def waits_with(self, kind: WaitKind) -> str | None:
        """The token of the wait of ``kind`` in progress, if that is the wait it is in."""
        return self.wait_token if self.wait_kind == kind and self.wait_token else None

    @property
    def current_weight(self) -> int:
        """The canary weight set last (0 before any)."""
        if not self.weight_log:
            return 0
        return max(self.weight_log.values(), key=lambda entry: entry.at).weight

    def weight_history(self) -> list[tuple[str, WeightEntry]]:
        """The weight log in time order, as (step, entry)."""
        return sorted(self.weight_log.items(), key=lambda item: item[1].at)


class Wait(_Stored):
    """A wait the rollout begins: what ``begin_wait`` stores on the record."""

    kind: WaitKind
    token: str = Field(repr=False)
    started_at: IsoTime
    bake_started_at: IsoTime | None = Field(default=None, description="Bakes only.")
    approval_id: str | None = Field(default=None, description="Approvals only.")
    approval_expires_at: IsoTime | None = Field(default=None, description="Approvals only.")
    approval_step: int | None = Field(default=None, description="Approvals only: the canary step's index.")


class LockRecord(_Stored):
    """The application's running rollout (sk ``LOCK``): one at a time."""

    owner: str = Field(description="The execution ARN holding the lock.")
    rollout_id: str
    acquired_at: IsoTime | None = Field(default=None, description="None for a lock written by hand.")
    token: str | None = Field(
        default=None,
        repr=False,
        description="A secret: never shown. The owner's 'Wait for turn' task token while its turn "
        "may not have reached it yet: kept from the hand-over until SendTaskSuccess is known to "
        "have ended the wait.",
    )


def queue_sk(arrival: str, rollout_id: str) -> str:
    """A queued rollout's sort key: arrival order first."""
    return f"QUEUE#{arrival}#{rollout_id}"


class QueuedRollout(_Stored):
    """A rollout waiting for its turn (sk ``QUEUE#<arrival>#<rollout id>``)."""

    sk: str
    rollout_id: str
    execution_arn: str
    token: str | None = Field(default=None, repr=False, description="None until its execution waits.")
    enqueued_at: IsoTime | None = Field(default=None, description="None: an entry from an older version.")


class VersionDecision(_Stored):
    """A version released or rejected (sk ``VERSION#<version>``): it is never rolled out again."""

    status: Literal["released", "rejected"]
    rollout_id: str
    reason: str = Field(default="", description="Why it was rejected; empty for an item written by hand.")
    at: IsoTime | None = Field(default=None, description="None for an item written by hand.")


class VersionClaim(_Stored):
    """The one rollout a version is being rolled out by (sk ``ROLLING#<version>``).

    Written with a condition when an upload is accepted, so that of two uploads of one version at
    the same moment one rolls out; it stands until that rollout ends or is found gone.
    """

    rollout_id: str
    claimed_at: IsoTime


class DeploymentRecord(_Stored):
    """A CodeDeploy deployment a rollout created, by purpose (pk ``ROLLOUT-DEPLOYMENTS#<id>``)."""

    purpose: str = Field(description="canary, live or canary-restore (the item's sk).")
    deployment_id: str
    group: str
    at: IsoTime


class DeploymentWait(_Stored):
    """Where a deployment's token and its final status meet (pk ``DEPLOYMENT#<id>``)."""

    task_token: str | None = Field(default=None, repr=False, description="None until the wait stores it.")
    final_status: str | None = Field(default=None, description="None until the state-change event came.")
    final_detail: str = ""


class StageTransition(_Stored):
    """What recording a stage changed: whether it was new, and the stage it followed."""

    first_time: bool
    previous_stage: Stage | None = None
    previous_at: datetime | None = None
    notified: bool = Field(
        default=False, description="Recorded before: whether its notice was published since."
    )
