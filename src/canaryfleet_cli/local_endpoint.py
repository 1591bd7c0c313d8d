"""`--local`: the operator commands pointed at `canaryfleet local up` instead of AWS.

`canaryfleet local up` writes ``.canaryfleet/local.json`` (its endpoint, region and stack) in
the folder it runs in. Under ``--local`` a command reads it and sets the environment boto3
reads (``AWS_ENDPOINT_URL``, dummy credentials, the region) before any client exists, so the
same boto3 code that talks to AWS talks to the local cloud. Nothing here imports the local
cloud: the AWS commands stay free of moto.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import typer

STATE_FILE = Path(".canaryfleet") / "local.json"

LocalOption = typer.Option(
    False,
    "--local",
    help="Talk to `canaryfleet local up` running in this folder (.canaryfleet/local.json), not to AWS.",
)


class NoLocalCloud(Exception):
    """No `canaryfleet local up` to talk to, said plainly."""


@dataclass(frozen=True)
class LocalEndpoint:
    endpoint: str
    region: str
    stack: str
    approval_page: str


def read_local_endpoint(folder: Path | None = None) -> LocalEndpoint:
    """The running local cloud's endpoint, from ``.canaryfleet/local.json`` in ``folder``."""
    path = (folder or Path.cwd()) / STATE_FILE
    try:
        data = json.loads(path.read_text())
        endpoint = LocalEndpoint(
            endpoint=str(data["endpoint"]),
            region=str(data["region"]),
            stack=str(data["stack"]),
            approval_page=str(data.get("approval_page", "")),
        )
    except FileNotFoundError:
        raise NoLocalCloud(
            f"no {STATE_FILE} here: start `canaryfleet local up` in this folder first"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NoLocalCloud(f"{path} is not what `canaryfleet local up` writes: {exc}") from None
    parts = urlsplit(endpoint.endpoint)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or parts.username:
        # The dummy credentials below must never be sent anywhere but this machine.
        raise NoLocalCloud(f"{path} names {endpoint.endpoint!r}, which is not on localhost")
    return endpoint


def use_local_endpoint(folder: Path | None = None) -> LocalEndpoint:
    """Point every boto3 client this process makes at the local cloud (see the module's docstring)."""
    local = read_local_endpoint(folder)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": local.endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": local.region,
            "AWS_REGION": local.region,
        }
    )
    return local
