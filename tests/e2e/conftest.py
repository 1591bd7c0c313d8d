from collections.abc import Iterator

import pytest

from canaryfleet_local.cloud import LocalCloud


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as local:
        yield local
