from collections.abc import Iterator

import pytest

from canaryfleet_local.cloud import LocalCloud
from tests.e2e.headless_chromium import require_chromium


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as local:
        yield local


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium's path; where there is none, the browser tests skip with one line (fail under CI)."""
    return require_chromium()
