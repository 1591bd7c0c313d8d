"""What every local-cloud command sets up before it starts the platform."""

from __future__ import annotations

import logging
import os


def local_parameters(verbose: bool) -> dict[str, str]:
    """Template parameters for a local run: the functions' logs and metrics only when asked for."""
    # moto logs each failed state (a rollback's expected path) with its whole parse tree.
    logging.getLogger("moto").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    if not verbose:
        # Metrics print EMF JSON to stdout; on the local cloud nobody collects them.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    return {"LogLevel": "DEBUG" if verbose else "ERROR"}
