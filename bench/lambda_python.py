"""Interpreters laid out as Lambda runs a function: the layer's requirements only, Lambda's variables.

The development environment (.venv) carries moto, the CLI's and the linters' packages, and an
editable install of the runtime: a handler imported there can load what the layer does not ship
(``requests``, which the X-Ray SDK patches when it finds it) and pays for a larger path. The
figures run each Python in a virtual environment of its own, ``.venv-lambda-<version>`` at the
repository's root, with exactly ``layers/canaryfleet/requirements.txt`` installed (transitive
pins from ``requirements/dev.lock``), made on first use and again when either file changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "functions"
LAYER = REPO / "layers" / "canaryfleet"
REQUIREMENTS = (LAYER / "requirements.txt", REPO / "requirements" / "dev.lock")
# The functions' runtime (template.yaml: python3.13) and the oldest Python they must run on.
LAMBDA_PYTHONS = ("3.11", "3.13")
# What the template's Globals give every function (its Environment), as Lambda would.
TEMPLATE_ENVIRONMENT = {
    "POWERTOOLS_METRICS_NAMESPACE": "canaryfleet",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_LOGGER_LOG_EVENT": "false",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
    "STATE_TABLE_NAME": "canaryfleet-state",
}


class NoSuchPython(RuntimeError):
    """The Python a figure needs is not installed here (pyenv install <version>)."""


def _base_interpreter(version: str) -> Path:
    if sys.version.startswith(version + "."):
        return Path(getattr(sys, "_base_executable", sys.executable))
    found = shutil.which(f"python{version}")
    if found and "/shims/" not in found:  # a pyenv shim runs only the version pyenv has selected
        return Path(found)
    if shutil.which("pyenv"):
        listed = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True, check=False)
        for installed in sorted(listed.stdout.split(), reverse=True):
            if installed.startswith(version + "."):
                prefix = subprocess.run(
                    ["pyenv", "prefix", installed], capture_output=True, text=True, check=True
                ).stdout.strip()
                return Path(prefix) / "bin" / f"python{version}"
    raise NoSuchPython(f"python{version} is not installed (pyenv install {version})")


def _requirements_digest() -> str:
    digest = hashlib.sha256()
    for path in REQUIREMENTS:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def lambda_python(version: str) -> Path:
    """The interpreter of ``.venv-lambda-<version>``, made (or remade) to hold the layer's requirements."""
    folder = REPO / f".venv-lambda-{version}"
    python = folder / "bin" / "python"
    marker = folder / ".requirements-sha256"
    wanted = _requirements_digest()
    if python.is_file() and marker.is_file() and marker.read_text() == wanted:
        return python
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([str(_base_interpreter(version)), "-m", "venv", str(folder)], check=True, timeout=300)
    layer, lock = REQUIREMENTS
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(lock),
            "-r",
            str(layer),
        ],
        check=True,
        timeout=900,
    )
    marker.write_text(wanted)
    return python


def lambda_environment(function: str, python: Path) -> dict[str, str]:
    """The variables Lambda gives ``function`` with active tracing, the layer's package on the path.

    ``LAMBDA_TASK_ROOT`` matters: without it Powertools' tracer and the X-Ray SDK believe they run
    outside Lambda (tracing off, a centralised sampler that builds two botocore clients at import).
    """
    version = ".".join(python.resolve().name.removeprefix("python").split(".")[:2]) or "3"
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "POWERTOOLS_", "AWS_", "_X_AMZN"))
    }
    environment.update(TEMPLATE_ENVIRONMENT)
    environment.update(
        {
            "PYTHONPATH": os.pathsep.join([str(FUNCTIONS / function), str(LAYER)]),
            "LAMBDA_TASK_ROOT": str(FUNCTIONS / function),
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "POWERTOOLS_SERVICE_NAME": function,
        }
    )
    return environment
