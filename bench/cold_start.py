"""Figure 4: each function's cold start (importing its handler module) and deployment package size.

Import time: a fresh interpreter per measurement, laid out as Lambda lays a function out (the
function's folder as the working directory and first on the path, then the layer's package,
Lambda's environment variables: tracing is on, as the template has it), timing
``import app`` inside the interpreter. The baseline is a bare ``import boto3`` measured the same
way in the same rounds. Each round measures every handler and twice the baseline, two fresh
interpreters at a time; the median of the rounds is kept.

Package size: the function's folder zipped as ``sam build`` ships it (no ``__pycache__``). The
baseline is the same function with the shared package vendored in, as functions without a
layer carry it.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.results import Measure, below, measure, ratio_at_most

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "functions"
LAYER = REPO / "layers" / "canaryfleet"
SHARED_PACKAGE = LAYER / "canaryfleet"
IMPORT_RATIO_GOAL = 1.5
PARALLEL_IMPORTS = 2
BOTO3 = "bare boto3"
PACKAGE_GOAL_KB = 100
_TIMED_IMPORT = (
    "import importlib, sys, time\n"
    "started = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(time.perf_counter() - started)\n"
)


def handlers() -> list[str]:
    return sorted(p.parent.name for p in FUNCTIONS.glob("*/app.py"))


def _lambda_environment(function: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "POWERTOOLS_"))}
    environment.update(
        {
            "PYTHONPATH": os.pathsep.join([str(FUNCTIONS / function), str(LAYER)]),
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": function,
        }
    )
    return environment


def import_seconds(module: str, function: str, *flags: str) -> tuple[float, str]:
    """Seconds a fresh interpreter takes to import ``module`` laid out as ``function``; and stderr."""
    done = subprocess.run(
        [sys.executable, *flags, "-c", _TIMED_IMPORT, module],
        cwd=FUNCTIONS / function,
        env=_lambda_environment(function),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(done.stdout.strip().splitlines()[-1]), done.stderr


def slowest_imports(function: str, count: int = 6) -> dict[str, float]:
    """The modules that take the longest to import themselves, in ms (python -X importtime)."""
    _, stderr = import_seconds("app", function, "-X", "importtime")
    rows: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        rows.append((name, round(int(self_us) / 1000, 1)))
    return dict(sorted(rows, key=lambda row: -row[1])[:count])


def _compile_sources() -> None:
    """Byte-compile the functions and the layer once, so no round pays for compiling them."""
    for folder in (FUNCTIONS, SHARED_PACKAGE):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder)], check=True, timeout=120)


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


def _round(names: list[str]) -> list[tuple[str, float]]:
    """One round: every handler's import and two bare boto3 imports among them, two at a time.

    Two interpreters at once on two cores: the baseline's imports run in the same conditions
    as the handlers', so the ratio holds, and the figure takes half the time.
    """
    half = len(names) // 2
    order = [BOTO3, *names[:half], BOTO3, *names[half:]]

    def timed(name: str) -> tuple[str, float]:
        module, function = ("boto3", names[0]) if name == BOTO3 else ("app", name)
        return name, import_seconds(module, function)[0]

    with ThreadPoolExecutor(max_workers=PARALLEL_IMPORTS) as pool:
        return list(pool.map(timed, order))


def measure_cold_starts(repeats: int, limit: int | None) -> list[Measure]:
    names = handlers()[:limit]
    _compile_sources()
    samples: dict[str, list[float]] = {name: [] for name in [BOTO3, *names]}
    for _ in range(repeats):
        for name, seconds in _round(names):
            samples[name].append(seconds)
    boto3_samples = samples.pop(BOTO3)
    boto3 = statistics.median(boto3_samples)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    slowest = max(medians, key=lambda name: medians[name])
    ratios = {name: round(value / boto3, 3) for name, value in medians.items()}
    return [
        measure(
            4,
            f"handler import, slowest of {len(names)} ({slowest})",
            "s",
            medians[slowest],
            boto3,
            "bare `import boto3`, fresh interpreter",
            ratio_at_most(IMPORT_RATIO_GOAL, f"<= {IMPORT_RATIO_GOAL:g}x the baseline, every handler"),
            {
                "ratios": ratios,
                "seconds": {name: round(value, 4) for name, value in medians.items()},
                "boto3_samples": [round(s, 4) for s in boto3_samples],
                "repeats": repeats,
                "within_goal": sum(1 for r in ratios.values() if r <= IMPORT_RATIO_GOAL),
                "slowest_imports_ms": slowest_imports(slowest),
                "python": sys.version.split()[0],
            },
        ),
        package_measure(handlers()),
    ]


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
