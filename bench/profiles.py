"""How much each run measures: `make bench` (full) and `make bench-quick` (CI proves it still works).

Local durations stand for AWS durations divided by ``TIME_SCALE``: the polling baselines poll
every 30 s (rollout) and 5 s (drain) on AWS, so here every 1 s and 1/6 s. One local second is
also the shortest Wait moto's Step Functions interpreter takes (it takes whole seconds only).
"""

from __future__ import annotations

from dataclasses import dataclass

# When each group of figures runs: stages one after the other; in a stage, lanes side by side;
# in a lane, groups one after the other.
Lane = tuple[str, ...]
Stage = tuple[Lane, ...]

TIME_SCALE = 30  # AWS seconds per local second
AWS_ROLLOUT_POLL_SECONDS = 30
AWS_DRAIN_POLL_SECONDS = 5
ROLLOUT_POLL_SECONDS = AWS_ROLLOUT_POLL_SECONDS // TIME_SCALE
DRAIN_POLL_SECONDS = AWS_DRAIN_POLL_SECONDS / TIME_SCALE
# What the drain document takes on each instance on AWS, for both sides of the drain figure:
# the graceful stop of a service finishing its in-flight work (half the document's default
# StopBudgetSeconds of 60) and the upload of the hour's logs to S3 in the same Region.
AWS_DRAIN_STOP_SECONDS = 30
AWS_DRAIN_UPLOAD_SECONDS = 10
DRAIN_STOP_SECONDS = AWS_DRAIN_STOP_SECONDS / TIME_SCALE
DRAIN_UPLOAD_SECONDS = AWS_DRAIN_UPLOAD_SECONDS / TIME_SCALE


@dataclass(frozen=True)
class Profile:
    name: str
    deployment_seconds: float  # one CodeDeploy deployment, short durations
    # The canary bake, short durations: at least 5 one-second intervals, so the judge can fail a
    # build on its latency (two metrics at alpha 0.05 need 4 a side; canaryfleet.logic.analysis.judge)
    # and a passing build is not extended as inconclusive.
    bake_seconds: int
    decide_seconds: float  # how long the approver takes, short durations
    duration_factor: int  # the long run's durations are this many times the short ones
    failing_builds: int  # builds whose canary alarm fires (reaction latency samples)
    drain_instances: int  # instances leaving at once
    scale_apps: int  # applications rolling out at once
    import_repeats: int  # fresh interpreters per handler (and per bare boto3 import)
    import_handlers: int | None  # how many handlers to time (None: all)
    run_suite: bool  # time the whole test suite
    schedule: tuple[Stage, ...]
    # A Python of bench.lambda_python.LAMBDA_PYTHONS that is not installed: skipped (quick) or a failure.
    skip_missing_pythons: bool = False
    window_seconds: int = 4  # the released build's wait for its deployment window, short durations
    analysis_trials: int = 2_000  # seeded synthetic analyses per truth (figure 7)
    blue_green_delay_seconds: int = 2  # figure 8's scale-down delay, local seconds (60 s on AWS)
    bundle_mib: int = 256  # figure 9's bundle, unpacked
    flush_files: int = 40  # figure 10: logs changed since the last flush, on one instance
    flush_repeats: int = 3  # figure 10: runs of each side, the best kept


FULL = Profile(
    name="full",
    deployment_seconds=1.25,
    bake_seconds=5,
    decide_seconds=0.3,
    duration_factor=10,
    failing_builds=2,
    drain_instances=500,
    scale_apps=50,
    import_repeats=5,
    import_handlers=None,
    run_suite=True,
    # The drains and the rollouts side by side first: the rollouts mostly wait on their timers,
    # and take little of the second core. Every other group runs alone: the cold starts take a
    # core of their own (and slowed the drains' functions twofold when they overlapped), the
    # suite takes both, and the scale figure's goal is a wall time.
    schedule=(
        (("drains",), ("rollouts",)),
        (("cold_start",),),
        (("scale",),),
        (("local_cloud",),),
        (("analysis",),),
        (("blue_green",),),
        (("bundle_check",),),
        (("log_flush",),),
    ),
)

QUICK = Profile(
    name="quick",
    deployment_seconds=1.25,
    bake_seconds=5,
    decide_seconds=0.3,
    duration_factor=2,
    failing_builds=1,
    drain_instances=50,
    scale_apps=5,
    import_repeats=1,
    import_handlers=3,
    run_suite=False,
    # Two lanes at once: the quick run only proves in CI that every figure can still be measured.
    schedule=(
        (
            ("rollouts", "local_cloud", "analysis"),
            ("drains", "scale", "cold_start", "blue_green", "bundle_check", "log_flush"),
        ),
    ),
    analysis_trials=200,
    bundle_mib=32,
    flush_files=20,
    flush_repeats=1,
    skip_missing_pythons=True,
)

PROFILES = {p.name: p for p in (FULL, QUICK)}
