"""The CLI and AWS: an error a command did not expect is one line and exit 2; its clients retry
in botocore's standard mode."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import after_cli_main

# A command whose AWS call fails: `status` against an endpoint that answers as AWS would (a stub
# raising, in the command, botocore's ClientError for a refusal, or the runtime's own typed error
# for an AWS call, as `report`'s GetMetricData left incomplete).
_FAILING = """
import sys
from unittest import mock
from botocore.exceptions import ClientError, TokenRetrievalError
from canaryfleet.errors import TransientAwsError
failures = {{
    "login expired": TokenRetrievalError(provider="sso", error_msg="Token has expired and refresh failed"),
    "refused": ClientError(
        {{"Error": {{"Code": "AccessDeniedException", "Message": "not allowed"}}}}, "GetParameter"
    ),
    "typed": TransientAwsError("CloudWatch GetMetricData returned incomplete data for m0cv (InternalError)"),
}}
sys.argv = ["canaryfleet", "status", "--stack", "canaryfleet"]
with mock.patch("canaryfleet_cli.platform.Platform.connect", side_effect=failures["{failure}"]):
    from canaryfleet_cli.main import main
    main()
"""


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        ("refused", "error: AWS refused GetParameter: AccessDeniedException: not allowed"),
        ("typed", "error: CloudWatch GetMetricData returned incomplete data for m0cv (InternalError)"),
        # The login expired while the command ran (Platform.connect itself says it at the start)
        (
            "login expired",
            "error: the AWS SSO login of profile 'oncall' has expired (or was never made): "
            "run `aws sso login --profile oncall`, then try again",
        ),
    ],
)
def test_an_aws_failure_is_said_in_one_line_and_exits_2(failure: str, said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FAILING.format(failure=failure)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_PROFILE": "oncall"},
    )

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == said


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
