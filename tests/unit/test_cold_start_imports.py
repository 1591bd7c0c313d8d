"""What a function loads at cold start: its handler module imports only what its own paths need.

Each handler is imported in a fresh interpreter laid out as Lambda lays it out (its folder first on
the path, then the layer's package; ``LAMBDA_TASK_ROOT`` set, so tracing is on), and the modules
it loaded are compared with what no path of that function needs. bench/README.md (figure 4) says
what each of these costs; nothing here is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.lambda_python import lambda_environment

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
LAYER = REPO / "layers" / "canaryfleet"
HANDLERS = sorted(p.parent.name for p in FUNCTIONS.glob("*/app.py"))

_LOADED = "import json, sys\nimport app\nprint(json.dumps(sorted(sys.modules)))\n"

# Only the approval page renders HTML; only the Slack app answers Slack's forms.
PAGE_ONLY = {
    "jinja2",
    "canaryfleet.api.approval_page",
    "canaryfleet.api.html",
    "canaryfleet.api.timeline_page",
}
SLACK_APP_ONLY = {"canaryfleet.api.slack_app"}
# Only the alarm handler and the notifications record their events for idempotency.
IDEMPOTENT_FUNCTIONS = {"alarm_event", "notify"}
# Only the functions that talk to Slack load its SDK.
SLACK_FUNCTIONS = {
    "approval_page",
    "decide",
    "expire_approval",
    "notify",
    "request_approval",
    "slack_interactions",
}
# Only the notifications function parses notices (Powertools' SQS and SNS models).
NOTIFY_ONLY = {"canaryfleet.models.notification"}
# Only start_rollout opens build bundles (zip, YAML).
START_ROLLOUT_ONLY = {"yaml", "canaryfleet.logic.bundle", "canaryfleet.wiring.start_rollout"}
# Never at cold start: what the X-Ray SDK's patch_all probes for (the layer does not carry them),
# and wrapt 2's locks, which import asyncio (the runtime holds wrapt below 2).
NEVER = {"requests", "sqlite3", "wrapt.synchronization"}


def loaded_modules(function: str) -> set[str]:
    # The layout and variables the bench's figure 4 uses: what Lambda gives the function.
    environment = lambda_environment(function, Path(sys.executable))
    done = subprocess.run(
        [sys.executable, "-c", _LOADED],
        cwd=FUNCTIONS / function,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _present(loaded: set[str], names: set[str]) -> set[str]:
    return {name for name in names if name in loaded}


@pytest.mark.parametrize("function", HANDLERS)
def test_a_handler_loads_no_other_functions_paths_at_cold_start(function: str) -> None:
    # Given a fresh interpreter laid out as Lambda lays out this function
    # When it imports the handler module
    loaded = loaded_modules(function)

    # Then what only another function needs is not loaded
    unwanted = set(NEVER)
    if function != "approval_page":
        unwanted |= PAGE_ONLY
    if function != "slack_interactions":
        unwanted |= SLACK_APP_ONLY
    if function != "start_rollout":
        unwanted |= START_ROLLOUT_ONLY
    if function != "notify":
        unwanted |= NOTIFY_ONLY
    if function not in IDEMPOTENT_FUNCTIONS:
        unwanted.add("aws_lambda_powertools.utilities.idempotency")
    if function not in SLACK_FUNCTIONS:
        unwanted.add("slack_sdk")
    assert _present(loaded, unwanted) == set()
    # And every function is traced from its cold start: the Tracer is made when first imported
    # (canaryfleet/observability.py), and every handler's entry point imports it.
    assert {"aws_xray_sdk.core", "aws_xray_sdk.ext.botocore.patch"} <= loaded


def test_tracing_is_on_at_cold_start_with_the_x_ray_sdk_and_its_botocore_patch() -> None:
    # Given a handler imported as in Lambda with active tracing
    loaded = loaded_modules("bake")

    # Then the X-Ray SDK is loaded and patches botocore (the segments of every AWS call stay)
    assert {
        "aws_xray_sdk.core",
        "aws_xray_sdk.ext.botocore.patch",
        "aws_xray_sdk.ext.httplib.patch",
    } <= loaded


def test_the_pages_and_the_slack_app_load_what_they_answer_with() -> None:
    # The guard above is not vacuous: each function does load its own path's modules.
    assert _present(loaded_modules("approval_page"), PAGE_ONLY) == PAGE_ONLY
    assert _present(loaded_modules("slack_interactions"), SLACK_APP_ONLY) == SLACK_APP_ONLY
    assert _present(loaded_modules("start_rollout"), START_ROLLOUT_ONLY) == START_ROLLOUT_ONLY
