"""Figure 4: a Slack button click answered by a cold ``slack_interactions``, end to end.

Slack gives an interaction three seconds for its HTTP answer. A fresh interpreter laid out as
Lambda lays the function out (``bench.lambda_python``: the layer's requirements only, tracing on,
a sampled trace header) imports the handler and handles one signed click on "Approve": it reads
the Slack app's secret from Secrets Manager, checks the request's signature, records the
signature against replays, reads the approval, settles it (the rollout no longer waits for it,
so the approval closes: claim, read the rollout, finish) and answers in Slack through the
click's ``response_url``. AWS is a moto server in this process (the function's boto3 talks to it
over HTTP as it would to AWS, credentials and all); ``response_url`` is a local HTTP endpoint.
The timer starts before ``import app`` and stops when the handler returns.

Baseline, in the same run and the same way: the least any Python function answering Slack does
on a cold start: import boto3, read the same secret, check the signature with ``hmac``, and read
the approval item from DynamoDB.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import statistics
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import yaml
from moto.server import ThreadedMotoServer

from bench.lambda_python import FUNCTIONS, REPO, TEMPLATE_ENVIRONMENT, lambda_environment, lambda_python
from bench.results import Goal, Measure, measure

FUNCTION = "slack_interactions"
SLACK_LIMIT_SECONDS = 3.0
GOAL_SECONDS = 1.0  # a third of Slack's limit, on this machine
# Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB (Lambda's
# "Memory and computing power"); slack_interactions' memory is read from template.yaml.
FULL_VCPU_MB = 1769
REGION = "us-east-1"
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
USER_ID = "U0BENCH01"
_MARK = "BENCH-COLD-PATH "
# A sampled request, as Lambda sets it for each invocation with active tracing.
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

_HANDLER_RUN = (
    "import json, sys, time\n"
    "started = time.perf_counter()\n"
    "import app\n"
    "imported = time.perf_counter()\n"
    "class Context:\n"
    "    function_name = 'slack_interactions'\n"
    "    memory_limit_in_mb = __MEMORY_MB__\n"
    "    invoked_function_arn = 'arn:aws:lambda:us-east-1:123456789012:function:slack_interactions'\n"
    "    aws_request_id = '00000000-0000-0000-0000-000000000001'\n"
    "    def get_remaining_time_in_millis(self): return 30000\n"
    "answer = app.lambda_handler(json.loads(sys.argv[1]), Context())\n"
    "ended = time.perf_counter()\n"
    f"print({_MARK!r} + json.dumps({{'import': imported - started, 'total': ended - started,"
    " 'status': answer['statusCode'], 'body': answer.get('body', '')}))\n"
)

_BASELINE_RUN = (
    "import json, sys, time\n"
    "started = time.perf_counter()\n"
    "import hashlib, hmac\n"
    "import boto3\n"
    "imported = time.perf_counter()\n"
    "event = json.loads(sys.argv[1]); table, secret_id, approval_id = sys.argv[2:5]\n"
    "answer = boto3.client('secretsmanager').get_secret_value(SecretId=secret_id)\n"
    "secret = json.loads(answer['SecretString'])\n"
    "headers = event['headers']\n"
    "base = f\"v0:{headers['x-slack-request-timestamp']}:{event['body']}\"\n"
    "key = secret['signing_secret'].encode()\n"
    "expected = 'v0=' + hmac.new(key, base.encode(), hashlib.sha256).hexdigest()\n"
    "assert hmac.compare_digest(expected, headers['x-slack-signature'])\n"
    "item = boto3.client('dynamodb').get_item(TableName=table,"
    " Key={'pk': {'S': 'APPROVAL#' + approval_id}, 'sk': {'S': 'APPROVAL'}})\n"
    "ended = time.perf_counter()\n"
    f"print({_MARK!r} + json.dumps({{'import': imported - started, 'total': ended - started,"
    " 'status': 200}))\n"
)


class _SlackResponseUrl(BaseHTTPRequestHandler):
    """Slack's ``response_url``: takes the message the app sends back, answers ``ok``."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def _servers() -> Iterator[tuple[str, str]]:
    """A moto server (AWS) and a response_url endpoint (Slack), both on localhost."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    slack = ThreadingHTTPServer(("127.0.0.1", 0), _SlackResponseUrl)
    thread = threading.Thread(target=slack.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = moto.get_host_and_port()
        yield f"http://{host}:{port}", f"http://127.0.0.1:{slack.server_address[1]}/actions/bench"
    finally:
        slack.shutdown()
        moto.stop()


class _IgnoreTags(yaml.SafeLoader):
    """template.yaml with its CloudFormation tags (!Ref, !Sub ...) read as plain values."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)


def _function_memory_mb() -> int:
    """slack_interactions' MemorySize in template.yaml (its own, else the Globals' one)."""
    template = yaml.load((REPO / "template.yaml").read_text(), Loader=_IgnoreTags)
    own = template["Resources"]["SlackInteractionsFunction"]["Properties"].get("MemorySize")
    return int(own if own is not None else template["Globals"]["Function"]["MemorySize"])


def _state_table_definition() -> dict[str, Any]:
    """The state table's keys as template.yaml declares them, so the bench's table cannot drift."""
    template = yaml.load((REPO / "template.yaml").read_text(), Loader=_IgnoreTags)
    properties = template["Resources"]["StateTable"]["Properties"]
    return {
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties["BillingMode"],
    }


def _aws(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }


def _seed(endpoint: str, table: str, response_url: str) -> tuple[str, str]:
    """The Slack secret and one pending approval of a rollout that no longer waits; (secret ARN, id).

    The approval is written by the function's own store adapter, pointed at the moto server.
    """
    # Imported here: the runtime package is only needed once a moto server is up.
    from canaryfleet.adapters import clients  # noqa: PLC0415
    from canaryfleet.adapters.approval_store import DynamoApprovalStore  # noqa: PLC0415
    from canaryfleet.models.app_config import Approvers  # noqa: PLC0415
    from canaryfleet.models.approval import Approval, new_approval_id  # noqa: PLC0415

    saved = dict(os.environ)
    os.environ.update(_aws(endpoint))
    clients.reset_clients()
    try:
        clients.client("dynamodb").create_table(TableName=table, **_state_table_definition())
        secret = {
            "signing_secret": SIGNING_SECRET,
            "bot_token": "xoxb-bench",
            "api_url": response_url + "/",
            # Slack's hooks host, here the local endpoint: the function calls no response_url elsewhere.
            "hooks_url": response_url.split("/actions/", 1)[0] + "/",
        }
        arn = clients.client("secretsmanager").create_secret(Name=table, SecretString=json.dumps(secret))[
            "ARN"
        ]
        now = datetime.now(UTC)
        approval = Approval(
            approval_id=new_approval_id(),
            application="payments-api",
            rollout_id="bench-rollout",
            version="1.2.3",
            approvers=Approvers(slack_user_ids=(USER_ID,), slack_channel="C0BENCH01"),
            created_at=now,
            expires_at=now + timedelta(hours=1),
        )
        DynamoApprovalStore(table).create(approval)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        clients.reset_clients()
    return arn, approval.approval_id


def _click(approval_id: str, response_url: str) -> dict[str, Any]:
    """A signed block_actions request from Slack: USER_ID clicked Approve, as API Gateway delivers it."""
    payload = {
        "type": "block_actions",
        "user": {"id": USER_ID, "name": "bench"},
        "actions": [{"action_id": "approval.approve", "value": approval_id}],
        "response_url": response_url,
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    stamp = str(int(time.time()))
    signature = (
        "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    )
    return {
        "version": "2.0",
        "routeKey": "POST /slack/interactions",
        "rawPath": "/slack/interactions",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": stamp,
            "x-slack-signature": signature,
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": "POST",
                "path": "/slack/interactions",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "Slackbot 1.0",
            },
            "requestId": "bench",
            "routeKey": "POST /slack/interactions",
            "stage": "$default",
            "time": "03/Dec/2026:03:00:00 +0000",
            "timeEpoch": int(stamp) * 1000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _run(python: Path, code: str, args: list[str], environment: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-c", code, *args],
        cwd=FUNCTIONS / FUNCTION,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"cold path run failed (exit {done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(_MARK))
    return result


def measure_slack_cold_path(version: str, repeats: int) -> Measure:
    python = lambda_python(version)
    memory_mb = _function_memory_mb()
    handler_runs: list[dict[str, Any]] = []
    baseline_runs: list[dict[str, Any]] = []
    with _servers() as (endpoint, response_url):
        for round_number in range(max(repeats, 2)):
            table = f"{TEMPLATE_ENVIRONMENT['STATE_TABLE_NAME']}-{version}-{round_number}".replace(".", "-")
            arn, approval_id = _seed(endpoint, table, response_url)
            environment = {
                **lambda_environment(FUNCTION, python),
                **_aws(endpoint),
                "STATE_TABLE_NAME": table,
                "SLACK_SECRET_ARN": arn,
                "_X_AMZN_TRACE_ID": TRACE_HEADER,
            }
            click = json.dumps(_click(approval_id, response_url))
            baseline_runs.append(_run(python, _BASELINE_RUN, [click, table, arn, approval_id], environment))
            handler_runs.append(
                _run(python, _HANDLER_RUN.replace("__MEMORY_MB__", str(memory_mb)), [click], environment)
            )
    statuses = sorted({run["status"] for run in handler_runs})
    answered = len(_SlackResponseUrl.received)
    _SlackResponseUrl.received.clear()
    total = statistics.median(run["total"] for run in handler_runs)
    baseline = statistics.median(run["total"] for run in baseline_runs)
    cpu_slowdown = FULL_VCPU_MB / min(memory_mb, FULL_VCPU_MB)
    return measure(
        4,
        f"Slack click answered by a cold slack_interactions, python {version}",
        "s",
        total,
        baseline,
        f"import boto3, read the secret, check the signature, read the approval; python {version}",
        Goal(
            f"< {GOAL_SECONDS:g} s here (Slack allows {SLACK_LIMIT_SECONDS:g} s), every click answered 200",
            lambda value, _ratio: (
                value < GOAL_SECONDS and statuses == [200] and answered >= len(handler_runs)
            ),
        ),
        {
            "statuses": statuses,
            "slack_messages_received": answered,
            "import_seconds": round(statistics.median(run["import"] for run in handler_runs), 4),
            "samples": [round(run["total"], 4) for run in handler_runs],
            "baseline_samples": [round(run["total"], 4) for run in baseline_runs],
            "function_memory_mb": memory_mb,
            "worst_case_at_function_memory_seconds": round(total * cpu_slowdown, 3),
            "worst_case_note": (
                f"if every millisecond here were CPU at the function's {memory_mb} MB share of a vCPU "
                f"({min(memory_mb, FULL_VCPU_MB)}/{FULL_VCPU_MB}); network and AWS latency not included"
            ),
            "python": version,
        },
    )
