"""One group of figures, measured in a process of its own: `python -m bench.child GROUP PROFILE OUT LOG`.

A fresh process per group keeps moto's state, the platform's module caches and the peak memory
of one group out of the next. The measures go to OUT as JSON; the platform's own output (its
logs and metrics on stdout) goes wherever the runner sent this process's output.
"""

# Each group imports its module when it runs, on purpose: a child loads only what it measures
# (PLC0415 is meant here; once that rule is on, these five imports carry its noqa).

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from bench.profiles import PROFILES, Profile
from bench.quiet import silence_platform_noise
from bench.results import Measure

# Each group imports its measures inside its function: a child process loads only its own
# group's modules (moto for the rollouts, none of them for the cold starts it times).


def _rollouts(profile: Profile, log: Path) -> list[Measure]:
    from bench.rollouts import measure_rollouts  # noqa: PLC0415

    return measure_rollouts(profile)


def _drains(profile: Profile, log: Path) -> list[Measure]:
    from bench.drains import measure_drains  # noqa: PLC0415

    return measure_drains(profile)


def _cold_start(profile: Profile, log: Path) -> list[Measure]:
    from bench.cold_start import measure_cold_starts  # noqa: PLC0415

    return measure_cold_starts(profile.import_repeats, profile.import_handlers, profile.skip_missing_pythons)


def _local_cloud(profile: Profile, log: Path) -> list[Measure]:
    from bench.local_cloud import measure_local_cloud  # noqa: PLC0415

    return measure_local_cloud(profile.run_suite, log)


def _scale(profile: Profile, log: Path) -> list[Measure]:
    from bench.scale import measure_scale  # noqa: PLC0415

    return measure_scale(profile.scale_apps)


def _analysis(profile: Profile, log: Path) -> list[Measure]:
    from bench.analysis import measure_analysis  # noqa: PLC0415

    return measure_analysis(profile)


def _blue_green(profile: Profile, log: Path) -> list[Measure]:
    from bench.blue_green import measure_blue_green  # noqa: PLC0415

    return measure_blue_green(profile)


def _bundle_check(profile: Profile, log: Path) -> list[Measure]:
    from bench.bundle_check import measure_bundle_check  # noqa: PLC0415

    return measure_bundle_check(profile)


def _log_flush(profile: Profile, log: Path) -> list[Measure]:
    from bench.log_flush import measure_log_flush  # noqa: PLC0415

    return measure_log_flush(profile)


GROUPS: dict[str, Callable[[Profile, Path], list[Measure]]] = {
    "rollouts": _rollouts,
    "drains": _drains,
    "cold_start": _cold_start,
    "local_cloud": _local_cloud,
    "scale": _scale,
    "analysis": _analysis,
    "blue_green": _blue_green,
    "bundle_check": _bundle_check,
    "log_flush": _log_flush,
}


def main(argv: list[str]) -> int:
    group, profile_name, out, log = argv
    silence_platform_noise()
    measures = GROUPS[group](PROFILES[profile_name], Path(log))
    Path(out).write_text(json.dumps([m.to_json() for m in measures], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
