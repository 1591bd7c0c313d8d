"""The CLI and AWS: an error a command did not expect is one line and exit 2; its clients retry
in botocore's standard mode."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import after_cli_main

# A command whose AWS call is refused: `status` with credentials AWS does not know, against an
# endpoint that answers as AWS would (a stub raising botocore's ClientError in the command).
_REFUSED = """
import sys

import pytest
from unittest import mock
from botocore.exceptions import ClientError
refused = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "GetParameter")
sys.argv = ["canaryfleet", "status", "--stack", "canaryfleet"]
with mock.patch("canaryfleet_cli.platform.Platform.connect", side_effect=refused):
    from canaryfleet_cli.main import main
    main()
"""


def test_an_aws_refusal_is_said_in_one_line_and_exits_2() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _REFUSED], check=False, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == "error: AWS refused GetParameter: AccessDeniedException: not allowed"


# The runtime's own typed error for an AWS call (GetMetricData left incomplete, in `report`).
_TYPED = """
import sys
from unittest import mock
from canaryfleet.errors import TransientAwsError
said = TransientAwsError("CloudWatch GetMetricData returned incomplete data for m0cv (InternalError)")
sys.argv = ["canaryfleet", "status", "--stack", "canaryfleet"]
with mock.patch("canaryfleet_cli.platform.Platform.connect", side_effect=said):
    from canaryfleet_cli.main import main
    main()
"""


def test_the_runtimes_typed_error_is_said_in_one_line_and_exits_2() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _TYPED], check=False, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "error: CloudWatch GetMetricData returned incomplete data for m0cv (InternalError)"
    )


@pytest.mark.parametrize(("own", "used"), [(None, "standard 5"), ("adaptive", "adaptive 5")])
def test_the_clis_clients_retry_in_botocores_standard_mode_unless_the_operator_chose(
    own: str | None, used: str
) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in ("AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS")}
    if own:
        environment["AWS_RETRY_MODE"] = own
    done = after_cli_main(
        '"retry:", os.environ.get("AWS_RETRY_MODE"), os.environ.get("AWS_MAX_ATTEMPTS")', environment
    )

    assert done.stdout.strip().splitlines()[-1] == f"retry: {used}"
