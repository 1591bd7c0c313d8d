"""`make test-aws`: the acceptance suite on a real account, or one line saying why not.

    python -m tests.aws              # check credentials, then run tests/aws (deploy, story, teardown)
    python -m tests.aws --teardown   # only delete what a run creates (after an interrupted run)

Extra arguments go to pytest.
"""

from __future__ import annotations

import sys

import pytest

from tests.aws.config import AcceptanceConfigError, load_deploy_config, load_story_config
from tests.aws.gate import HERE, credentials_problem


def main(arguments: list[str]) -> int:
    try:
        story = load_story_config()
    except AcceptanceConfigError as exc:
        print(f"acceptance suite configuration: {exc}")
        return 2
    problem = credentials_problem(story)
    if problem is not None:
        print(problem)
        return 0
    if arguments[:1] == ["--teardown"]:
        # Loaded only when asked: the skip without credentials stays under a second.
        from tests.aws.deploy import teardown_all  # noqa: PLC0415

        failures = teardown_all(load_deploy_config(), story, lambda line: print(f"[acceptance] {line}"))
        return 1 if failures else 0
    return pytest.main([str(HERE), "-p", "no:cacheprovider", "-s", "-x", *arguments])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
