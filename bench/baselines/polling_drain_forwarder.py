"""BASELINE, never shipped: the EventBridge target of the polling drain's rule.

It does what an SQS target of the rule would do, put the event on the baseline's queue, where
PollingDrainLambda picks it up. The local cloud loads this file as a function's handler module.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import boto3


@functools.cache
def _sqs() -> Any:
    return boto3.client("sqs")


def forward(event: dict[str, Any], context: Any) -> dict[str, str]:
    response = _sqs().send_message(QueueUrl=os.environ["EVENTS_QUEUE_URL"], MessageBody=json.dumps(event))
    return {"message_id": response["MessageId"]}
