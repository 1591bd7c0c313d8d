"""An AWS error a command did not expect is one line saying what AWS said, and exit 2."""

from __future__ import annotations

import subprocess
import sys

# A command whose AWS call is refused: `status` with credentials AWS does not know, against an
# endpoint that answers as AWS would (a stub raising botocore's ClientError in the command).
_REFUSED = """
import sys
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
