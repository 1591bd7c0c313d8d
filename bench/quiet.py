"""Keep the platform's own output out of the bench's: its logs, metrics and moto's warnings."""

from __future__ import annotations

import logging
import warnings

# The platform stack's parameters for a measured run: warnings and errors only in its logs.
QUIET_PLATFORM = {"LogLevel": "WARNING"}


def silence_platform_noise() -> None:
    """moto logs every failed state with its parse tree; Powertools warns of empty metrics."""
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
