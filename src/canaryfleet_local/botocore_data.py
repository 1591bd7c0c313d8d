"""Not an AWS behaviour: botocore's JSON data (endpoints, service models) read once per process.

Every botocore session makes its own data loader, and a loader keeps what it reads for itself
only. On AWS each function's execution environment reads the models it needs once; here every
function of every local cloud shares one process, and so does moto, which makes sessions of its
own. Sessions made under :func:`one_botocore_data_loader` share one loader per data path, so
each file is read once; what they read is botocore's own data, unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
from collections.abc import Iterator
from unittest import mock

import botocore.loaders
import botocore.session

# Imported by the package's ``__init__``: see ``import_moto_ec2_models``.
MOTO_EC2_MODELS = "moto.ec2.models"


class _SearchPaths(list[str]):
    """A shared loader's search paths: each folder once.

    Every boto3 session appends boto3's own data folder to its loader's search paths; on one
    loader shared by thousands of sessions the list would grow by one copy per session, and
    every lookup of a model not yet read would look in each copy.
    """

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.lru_cache(maxsize=4)
def _shared_data_loader(search_path: str | None) -> botocore.loaders.Loader:
    loader = botocore.loaders.create_loader(search_path)
    loader._search_paths = _SearchPaths(loader.search_paths)  # type: ignore[attr-defined]  # the list boto3 appends to
    return loader


@contextlib.contextmanager
def one_botocore_data_loader() -> Iterator[None]:
    """Every botocore session made inside reads botocore's data through one loader.

    Installed for the life of each local cloud: each in-process function's own session (a copy
    of the layer each) would otherwise read the models again, a third of a second per function
    and cloud.
    """
    with mock.patch.object(botocore.session, "create_loader", _shared_data_loader):
        yield


def import_moto_ec2_models() -> None:
    """Import moto's EC2 models with botocore's data read once.

    At import, moto's ``RegionsAndZonesBackend`` lists EC2's regions in three partitions, each
    through a new boto3 session, and each of those reads botocore's endpoints and EC2's service
    model (the largest botocore carries) again: 0.3 to 0.5 s of every process that starts a
    local cloud (the demo, each test worker, `canaryfleet local up`). Under one loader they are
    read once, and moto lists the same regions.
    """
    if MOTO_EC2_MODELS in sys.modules:
        return
    with one_botocore_data_loader():
        importlib.import_module(MOTO_EC2_MODELS)
