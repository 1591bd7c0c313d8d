"""Events the platform consumes, parsed at the edge."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from canaryfleet.errors import InvalidEvent

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_event(model: type[ModelT], event: Any) -> ModelT:
    """Validate ``event`` against ``model``; raise InvalidEvent naming every problem."""
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        ]
        raise InvalidEvent(model.__name__, problems) from None
