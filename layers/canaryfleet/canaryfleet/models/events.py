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
    except (TypeError, AttributeError, KeyError) as exc:
        # Validators of event models that are not ours (Powertools') read fields before
        # checking their types; a malformed event is still a malformed event.
        raise InvalidEvent(model.__name__, [f"<root>: {type(exc).__name__}: {exc}"]) from None
