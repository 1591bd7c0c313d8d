"""Function settings: the environment the template gives a function, as pydantic models.

Logic never reads ``os.environ``; handlers call :func:`load_settings` once per invocation.
Parsing is cached on the relevant variables' values, so it costs nothing after the first
call and stays correct when several functions share one interpreter (the local cloud).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from canaryfleet.errors import ConfigurationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class BaseSettings(BaseModel):
    """Variables every function has (Globals in template.yaml)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state_table_name: str = Field(alias="STATE_TABLE_NAME", min_length=3)


class RecordStageSettings(BaseSettings):
    notification_topic_arn: str = Field(alias="NOTIFICATION_TOPIC_ARN", pattern=r"^arn:aws[a-z-]*:sns:")


class StartRolloutSettings(RecordStageSettings):
    rollout_state_machine_arn: str = Field(
        alias="ROLLOUT_STATE_MACHINE_ARN", pattern=r"^arn:aws[a-z-]*:states:"
    )


def _aliases(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(field.alias or name for name, field in model.model_fields.items())


@lru_cache(maxsize=64)
def _parse(model: type[ModelT], values: tuple[tuple[str, str], ...]) -> ModelT:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigurationError(f"{model.__name__}: " + "; ".join(problems)) from None


def load_settings(model: type[ModelT]) -> ModelT:
    """Parse the variables ``model`` declares from the environment (cached)."""
    values = tuple((alias, os.environ[alias]) for alias in _aliases(model) if alias in os.environ)
    return cast(ModelT, _parse(model, values))
