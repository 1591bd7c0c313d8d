"""Typed errors. Class names are the error names the state machines catch."""

from __future__ import annotations


class CanaryfleetError(Exception):
    """Base class of every error canaryfleet raises on purpose."""


class InvalidEvent(CanaryfleetError):
    """An event or state input does not match its model; nothing was written."""

    def __init__(self, model: str, problems: list[str]) -> None:
        self.model = model
        self.problems = problems
        super().__init__(f"invalid {model}: " + "; ".join(problems))


class InvalidArtifactKey(CanaryfleetError):
    """An artifact key does not follow `<app>/<version>.zip`."""


class ConfigurationError(CanaryfleetError):
    """A function's environment is missing or malformed."""


class TransientAwsError(CanaryfleetError):
    """An AWS call failed in a way that a retry may fix (throttling, 5xx)."""
