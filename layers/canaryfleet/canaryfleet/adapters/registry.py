"""The application registry: one SSM parameter per onboarded application."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from functools import lru_cache

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from canaryfleet.adapters.clients import client, error_code
from canaryfleet.errors import RegistryEntryMalformed, UnknownApplication
from canaryfleet.models.app_config import REGISTRY_PREFIX, AppConfig, read_registry_entry, registry_parameter
from canaryfleet.models.fail_fast import metric_of
from canaryfleet.observability import logger, metrics

# Registry entries change when a fleet stack is updated; a minute of caching spares SSM
# on bursts (a Spot storm, fifty apps releasing) without hiding an update for long.
_CACHE_SECONDS = 60


class Registry(abc.ABC):
    @abc.abstractmethod
    def get(self, application: str) -> AppConfig:
        """The application's entry; UnknownApplication if it has none."""

    @abc.abstractmethod
    def all(self) -> list[AppConfig]:
        """Every onboarded application."""

    def owner_of_alarm(self, alarm_name: str) -> tuple[AppConfig, str] | None:
        """The application and side ("canary" or "live") an alarm watches, if any."""
        for app in self.all():
            # A critical metric's fail-fast alarm compares the canary with live: the canary's.
            if alarm_name in app.canary.alarms or metric_of(alarm_name, app.application) is not None:
                return app, "canary"
            if alarm_name in app.live.alarms:
                return app, "live"
        return None


def _parse(name: str, value: object) -> AppConfig:
    if not isinstance(value, str | bytes):
        raise RegistryEntryMalformed(name, "not text")
    return read_registry_entry(name, value)


@dataclass(frozen=True)
class RegistryListing:
    """The registry read whole: the entries that read, and why each other one does not."""

    found: list[AppConfig] = field(default_factory=list)
    # A left-out entry's parameter name, and what is wrong with it (RegistryEntryMalformed's words).
    left_out: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _provider() -> SSMProvider:
    return SSMProvider(boto3_client=client("ssm"))


class SsmRegistry(Registry):
    def get(self, application: str) -> AppConfig:
        name = registry_parameter(application)
        try:
            value = _provider().get(name, max_age=_CACHE_SECONDS)
        except GetParameterError as exc:
            # Powertools wraps every error; only a missing parameter means "not onboarded".
            # Throttling, an expired token or a denied read must not reject an upload for good:
            # they are raised as they are, and the event is retried.
            cause = exc.__context__
            if isinstance(cause, Exception) and error_code(cause) != "ParameterNotFound":
                raise cause from None
            raise UnknownApplication(
                f"application {application!r} is not onboarded ({name} does not exist)"
            ) from None
        return _parse(name, value)

    def all(self) -> list[AppConfig]:
        """Every application whose entry reads; one that does not is logged and left out.

        One entry broken by hand must not stop every other application's alarms from finding
        their owner (``owner_of_alarm``) or the operators' listing: its own rollouts still fail
        on it (``get`` raises ConfigurationError), and each read of the whole registry logs it
        as an error with the ``RegistryEntriesMalformed`` metric.
        """
        listing = self.listing()
        for name, error in listing.left_out.items():
            logger.error("registry entry left out", extra={"parameter": name, "error": error})
            metrics.add_metric(name="RegistryEntriesMalformed", unit=MetricUnit.Count, value=1)
        return listing.found

    def listing(self) -> RegistryListing:
        """Every entry that reads, and each left out with why, logged by no one: the operator's CLI
        says them in its own words (its stdout holds only what a command prints)."""
        try:
            values = _provider().get_multiple(
                REGISTRY_PREFIX.rstrip("/"), max_age=_CACHE_SECONDS, recursive=True
            )
        except GetParameterError as exc:
            # Powertools wraps every error: what SSM said (throttling, a denied or expired read)
            # is raised as it is, as ``get`` does, for the callers' and the CLI's handling.
            cause = exc.__context__
            if isinstance(cause, Exception):
                raise cause from None
            raise
        listing = RegistryListing()
        for relative, value in values.items():
            name = registry_parameter(relative)  # Powertools names each below the path
            try:
                listing.found.append(_parse(name, value))
            except RegistryEntryMalformed as exc:
                listing.left_out[name] = str(exc)
        return listing
