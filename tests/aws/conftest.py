"""The acceptance suite's fixtures: configuration, the deployed stacks (torn down whatever happens),
the story.

With ``CANARYFLEET_AWS_ENDPOINT_URL`` set, the stacks are taken as they are (a local cloud kept
up by `canaryfleet local up`) and nothing is deployed or deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.aws.config import StoryConfig, load_deploy_config, load_story_config
from tests.aws.gate import HERE, reason_to_skip


def _say(line: str) -> None:
    print(f"[acceptance] {line}", flush=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if HERE in Path(str(item.path)).resolve().parents]
    if not ours:
        return
    reason = reason_to_skip(config.args, Path(str(config.invocation_params.dir)))
    if reason is not None:
        for item in ours:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def story_config(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StoryConfig]:
    """The story's configuration; on a real account, after deploying the stacks it names."""
    config = load_story_config()
    if config.endpoint_url is not None:
        yield config
        return
    # Loaded only for a real run: the skip without credentials stays under a second.
    from tests.aws.deploy import deploy_all, teardown_all  # noqa: PLC0415

    deploy = load_deploy_config()
    failures: list[str] = []

    def teardown() -> None:
        failures.extend(teardown_all(deploy, config, _say))
        if failures:
            pytest.fail("teardown left resources behind: " + "; ".join(failures))

    # Registered before the first resource exists: a deploy that fails half-way is torn down too.
    request.addfinalizer(teardown)
    deployed = deploy_all(deploy, config, tmp_path_factory.mktemp("fleet"), _say)
    yield config.model_copy(update={"traffic_url": f"http://{deployed.load_balancer_dns}"})
