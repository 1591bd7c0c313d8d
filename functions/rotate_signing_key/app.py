"""Entry point: Secrets Manager rotating the approval links' signing key (one step per call)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.approval import RotationEvent
from canaryfleet.models.events import parse_event
from canaryfleet.observability import entry_point
from canaryfleet.wiring.key_rotation import rotate_signing_key


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    rotation = parse_event(RotationEvent, event)
    return {"step": rotation.step, "result": rotate_signing_key(rotation)(rotation)}
