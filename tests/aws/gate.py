"""Whether the acceptance suite runs: only when asked, and only with credentials that work.

`make test` collects tests/aws with everything else; there it never touches AWS (not even
boto3's credential chain) and skips with one reason. Asked for (`make test-aws`, `pytest
tests/aws`), it looks for credentials through boto3's chain and asks STS who they belong to,
with short timeouts, so that a machine without an account says so within seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.aws.config import AcceptanceConfigError, StoryConfig, load_story_config

HERE = Path(__file__).resolve().parent
NOT_ASKED = (
    "real-account acceptance suite: runs only when asked (`make test-aws` or `pytest tests/aws`); "
    "see tests/aws/README.md"
)
NO_CREDENTIALS = (
    "no AWS credentials (boto3's credential chain found none): the real-account acceptance suite "
    "did not run; see tests/aws/README.md"
)
_STS = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})


def asked_for(arguments: Iterable[str], root: Path) -> bool:
    """True when a command-line path names tests/aws or something inside it."""
    for argument in arguments:
        path = Path(argument.split("::", 1)[0])
        resolved = (path if path.is_absolute() else root / path).resolve()
        if resolved == HERE or HERE in resolved.parents:
            return True
    return False


def credentials_problem(config: StoryConfig) -> str | None:
    """None when boto3 finds credentials and STS accepts them; otherwise one line saying why not."""
    try:
        session = boto3.Session(profile_name=config.profile, region_name=config.region)
        credentials = session.get_credentials()
    except BotoCoreError as exc:
        return f"AWS credentials could not be read ({exc}); the acceptance suite did not run"
    if credentials is None:
        return NO_CREDENTIALS
    try:
        sts = session.client("sts", endpoint_url=config.endpoint_url, config=_STS)
        sts.get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        return f"AWS credentials found but STS refused them ({exc}); the acceptance suite did not run"
    return None


def reason_to_skip(arguments: Iterable[str], root: Path) -> str | None:
    """Why tests/aws does not run in this session, in one line; None when it runs."""
    if not asked_for(arguments, root):
        return NOT_ASKED
    try:
        config = load_story_config()
    except AcceptanceConfigError as exc:
        return f"acceptance suite configuration: {exc}"
    return credentials_problem(config)
