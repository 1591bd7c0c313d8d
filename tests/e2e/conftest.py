from collections.abc import Iterator

import pytest

from canaryfleet_local.cloud import LocalCloud
from tests.e2e.headless_chromium import Browser, ChromiumUnavailable, headless_chromium, require_chromium


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as local:
        yield local


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium's path; where there is none, the browser tests skip with one line (fail under CI)."""
    return require_chromium()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    """One headless Chromium for a module's tests."""
    try:
        with headless_chromium() as started:
            yield started
    except ChromiumUnavailable as exc:
        require_chromium(start_error=str(exc))
