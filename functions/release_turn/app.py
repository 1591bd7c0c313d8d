"""Entry point: a rollout that ended releases its application's lock; the next queued one starts.

A recovery execution (logic/recovery.py) asks it first to take over the turn of the rollout whose
execution ended outside its own paths (``"action": "take_over"``).
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from canaryfleet.models.events import parse_event
from canaryfleet.models.tasks import ReleaseTask, TakeOverTask
from canaryfleet.observability import entry_point
from canaryfleet.settings import BaseSettings, ReleaseTurnSettings, load_settings
from canaryfleet.wiring import rollouts


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("action") == "take_over":
        return rollouts.take_over(load_settings(ReleaseTurnSettings))(parse_event(TakeOverTask, event))
    task = parse_event(ReleaseTask, event)
    return {"next_rollout": rollouts.release_turn(load_settings(BaseSettings))(task)}
