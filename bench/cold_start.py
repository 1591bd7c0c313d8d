"""Figure 4: each function's cold start (importing its handler module) and deployment package size.

Import time: a fresh interpreter per measurement, laid out as Lambda lays a function out (the
function's folder as the working directory and first on the path, then the layer's package, and
only the layer's requirements installed: ``bench.lambda_python``; Lambda's environment variables,
``LAMBDA_TASK_ROOT`` included, so that tracing is on as the template has it), timing
``import app`` inside the interpreter, on each Python the functions must run on. The baseline
is a bare ``import boto3`` measured the same way in the same rounds. The clock is the
interpreter's CPU time (``time.process_time``): an import is CPU work, and on a shared machine
the wall clock also counts the time the process waited for a core (other people's work), which
would drown the figure; Lambda gives a function its share of a CPU to itself. Each round
measures every handler and twice the baseline, two fresh interpreters at a time; the median of
the rounds is kept. The floor (boto3, a pydantic model, Powertools' logger, metrics and tracer with its X-Ray
patches, nothing of canaryfleet) is measured beside them and recorded in the details.

Package size: the function's folder zipped as ``sam build`` ships it (no ``__pycache__``). The
baseline is the same function with the shared package vendored in, as functions without a
layer carry it.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.lambda_python import LAMBDA_PYTHONS, NoSuchPython, lambda_environment, lambda_python
from bench.results import Measure, below, measure, ratio_at_most

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "functions"
LAYER = REPO / "layers" / "canaryfleet"
SHARED_PACKAGE = LAYER / "canaryfleet"
IMPORT_RATIO_GOAL = 1.5
PARALLEL_IMPORTS = 2
BOTO3 = "bare boto3"
FLOOR = "floor"
_FLOOR_IMPORT = "bench_cold_start_floor"
# What every handler needs before any canaryfleet code: boto3, pydantic with one model, and the
# Powertools logger, metrics and tracer as canaryfleet.observability makes them.
_FLOOR_SOURCE = (
    "import boto3\n"
    "from pydantic import BaseModel\n"
    "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
    "class Event(BaseModel):\n"
    "    name: str\n"
    "Logger(); Metrics(); Tracer(patch_modules=('botocore', 'httplib'))\n"
)
PACKAGE_GOAL_KB = 100
_TIMED_IMPORT = (
    "import importlib, sys, time\n"
    "started = time.process_time()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(time.process_time() - started)\n"
)


def handlers() -> list[str]:
    return sorted(p.parent.name for p in FUNCTIONS.glob("*/app.py"))


def import_seconds(module: str, function: str, python: Path, *flags: str) -> tuple[float, str]:
    """Seconds a fresh ``python`` takes to import ``module`` laid out as ``function``; and stderr."""
    done = subprocess.run(
        [str(python), *flags, "-c", _TIMED_IMPORT, module],
        cwd=FUNCTIONS / function,
        env=lambda_environment(function, python),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(done.stdout.strip().splitlines()[-1]), done.stderr


def slowest_imports(function: str, python: Path, count: int = 8) -> dict[str, float]:
    """The modules that take the longest to import themselves, in ms (python -X importtime)."""
    _, stderr = import_seconds("app", function, python, "-X", "importtime")
    rows: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        rows.append((name, round(int(self_us) / 1000, 1)))
    return dict(sorted(rows, key=lambda row: -row[1])[:count])


def _compile_sources(python: Path, floor: Path) -> None:
    """Byte-compile the functions and the layer once per Python, so no round pays for compiling."""
    for folder in (FUNCTIONS, SHARED_PACKAGE, floor):
        subprocess.run([str(python), "-m", "compileall", "-q", str(folder)], check=True, timeout=120)


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path


def zipped_size(*folders: tuple[Path, str]) -> int:
    """Bytes of a deflated zip of the folders, each under its archive prefix."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, prefix in folders:
            for path in _files(folder):
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return len(buffer.getvalue())


def _round(names: list[str], python: Path, floor: Path) -> list[tuple[str, float]]:
    """One round: every handler's import, two bare boto3 imports and the floor, two at a time.

    Two interpreters at once on two cores: the baseline's imports run in the same conditions
    as the handlers', so the ratio holds, and the figure takes half the time.
    """
    half = len(names) // 2
    order = [BOTO3, *names[:half], FLOOR, BOTO3, *names[half:]]

    def timed(name: str) -> tuple[str, float]:
        if name == BOTO3:
            return name, import_seconds("boto3", names[0], python)[0]
        if name == FLOOR:
            return name, _floor_seconds(names[0], python, floor)
        return name, import_seconds("app", name, python)[0]

    with ThreadPoolExecutor(max_workers=PARALLEL_IMPORTS) as pool:
        return list(pool.map(timed, order))


def _floor_seconds(function: str, python: Path, floor: Path) -> float:
    done = subprocess.run(
        [str(python), "-c", _TIMED_IMPORT, _FLOOR_IMPORT],
        cwd=FUNCTIONS / function,
        env={**lambda_environment(function, python), "PYTHONPATH": str(floor)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(done.stdout.strip().splitlines()[-1])


def _import_measure(names: list[str], repeats: int, version: str, floor: Path) -> Measure:
    python = lambda_python(version)
    _compile_sources(python, floor)
    samples: dict[str, list[float]] = {name: [] for name in [BOTO3, FLOOR, *names]}
    for _ in range(repeats):
        for name, seconds in _round(names, python, floor):
            samples[name].append(seconds)
    boto3_samples = samples.pop(BOTO3)
    boto3 = statistics.median(boto3_samples)
    floor_seconds = statistics.median(samples.pop(FLOOR))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    slowest = max(medians, key=lambda name: medians[name])
    ratios = {name: round(value / boto3, 3) for name, value in medians.items()}
    return measure(
        4,
        f"handler import, slowest of {len(names)} ({slowest}), python {version}",
        "s",
        medians[slowest],
        boto3,
        f"bare `import boto3`, fresh python {version}",
        ratio_at_most(IMPORT_RATIO_GOAL, f"<= {IMPORT_RATIO_GOAL:g}x the baseline, every handler"),
        {
            "ratios": ratios,
            "seconds": {name: round(value, 4) for name, value in medians.items()},
            "boto3_samples": [round(s, 4) for s in boto3_samples],
            "floor_seconds": round(floor_seconds, 4),
            "floor_ratio": round(floor_seconds / boto3, 3),
            "floor": "boto3, a pydantic model, Powertools logger, metrics and tracer (X-Ray patches on)",
            "repeats": repeats,
            "within_goal": sum(1 for r in ratios.values() if r <= IMPORT_RATIO_GOAL),
            "slowest_imports_ms": slowest_imports(slowest, python),
            "python": version,
        },
    )


def _installed(versions: tuple[str, ...], skip_missing: bool) -> list[str]:
    """The versions to measure; a missing one fails the figure unless ``skip_missing`` (said on stderr)."""
    found = []
    for version in versions:
        try:
            lambda_python(version)
        except NoSuchPython as missing:
            if not skip_missing:
                raise
            print(f"figure 4: python {version} skipped: {missing}", file=sys.stderr)
            continue
        found.append(version)
    return found


def measure_cold_starts(repeats: int, limit: int | None, skip_missing_pythons: bool = False) -> list[Measure]:
    # Imported here: the Slack figure starts a moto server, which the import figures do not need.
    from bench.slack_cold_path import measure_slack_cold_path  # noqa: PLC0415

    names = handlers()[:limit]
    versions = _installed(LAMBDA_PYTHONS, skip_missing_pythons)
    with tempfile.TemporaryDirectory() as folder:
        floor = Path(folder)
        (floor / f"{_FLOOR_IMPORT}.py").write_text(_FLOOR_SOURCE)
        imports = [_import_measure(names, repeats, version, floor) for version in versions]
    slack = [measure_slack_cold_path(version, repeats) for version in versions]
    return [*imports, *slack, package_measure(handlers())]


def package_measure(names: list[str]) -> Measure:
    sizes = {name: zipped_size((FUNCTIONS / name, "")) / 1024 for name in names}
    largest = max(sizes, key=lambda name: sizes[name])
    vendored = zipped_size((FUNCTIONS / largest, ""), (SHARED_PACKAGE, "canaryfleet/")) / 1024
    return measure(
        4,
        f"deployment package, largest of {len(names)} ({largest})",
        "KB",
        sizes[largest],
        vendored,
        "the same function with the shared package vendored in",
        below(PACKAGE_GOAL_KB, " KB, every function"),
        {
            "sizes_kb": {name: round(size, 2) for name, size in sizes.items()},
            "layer_package_kb": round(zipped_size((SHARED_PACKAGE, "canaryfleet/")) / 1024, 1),
            "within_goal": sum(1 for size in sizes.values() if size < PACKAGE_GOAL_KB),
        },
    )
