"""Application bundles for local runs: a folder zipped the way `canaryfleet publish` will."""

from __future__ import annotations

from pathlib import Path

from canaryfleet.logic.bundle.archive import zip_folder

from canaryfleet_local.template import REPO_ROOT

SAMPLE_APP = REPO_ROOT / "examples" / "hello-app"


def bundle(folder: Path = SAMPLE_APP) -> bytes:
    """The folder as a CodeDeploy bundle (appspec.yml at the root)."""
    if not (folder / "appspec.yml").is_file():
        raise FileNotFoundError(f"{folder} has no appspec.yml at its root")
    return zip_folder(folder)
