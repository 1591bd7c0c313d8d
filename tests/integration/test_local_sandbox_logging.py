"""A function's logger on the local cloud is configured by its own environment at each cold start.

On AWS every function's sandbox is a new process, so its Powertools Logger takes the level the
template gives it (``POWERTOOLS_LOG_LEVEL``, from the stack's ``LogLevel``). The local cloud runs
every function in one process, whose ``logging`` registry outlives a cloud: without a fresh
logger at each cold start, a later cloud's functions kept the level of the first cloud of the
process (a test of one file could then miss a warning because another file ran first).
"""

from __future__ import annotations

import logging

from canaryfleet_local.cloud import LocalCloud


def _record_stage_logger(log_level: str) -> logging.Logger:
    """The ``logging`` logger of the record_stage function's Logger, on a cloud of ``log_level``."""
    with LocalCloud(parameters={"LogLevel": log_level}) as cloud:
        name = cloud.resource("RecordStageFunction")
        cloud.client("lambda").invoke(FunctionName=name, Payload=b"{}")  # a cold start
        powertools = cloud.runtime.module_state(name, "canaryfleet.observability").logger
        return powertools._logger  # type: ignore[no-any-return]


def test_each_clouds_functions_log_at_the_level_its_stack_gives_them() -> None:
    quiet = _record_stage_logger("CRITICAL")
    talkative = _record_stage_logger("DEBUG")

    assert quiet.level == logging.CRITICAL
    assert talkative.level == logging.DEBUG
    assert talkative is not quiet
