"""A Slack webhook's and a response URL's secret path never reaches an X-Ray trace.

Run as Lambda runs a function with active tracing (the template's Globals): the X-Ray SDK
patched by canaryfleet's Tracer, a sampled trace header, the daemon's address. The daemon is a
UDP socket here, so what the SDK would send to X-Ray is read back whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import http.server, json, os, socket, sys, threading

udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
udp.settimeout(1.0)


class Slack(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b'{"ok": true, "channel": "C0PAY", "ts": "1.2"}' if "/api/" in self.path else b"ok"
        self.send_response(200)
        self.send_header("content-type", "application/json" if "/api/" in self.path else "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Slack)
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.server_port
os.environ["AWS_XRAY_DAEMON_ADDRESS"] = f"127.0.0.1:{udp.getsockname()[1]}"

from aws_xray_sdk.core import xray_recorder
from canaryfleet.adapters.slack import SlackSdkApi
from canaryfleet.models.approval import SlackSecret
from canaryfleet.observability import tracer  # patches botocore and httplib, as on Lambda

xray_recorder.configure(streaming_threshold=0)  # each subsegment sent as it closes


@tracer.capture_lambda_handler
def handler(event, context):
    hook = SlackSdkApi(
        SlackSecret(
            webhook_url=f"http://127.0.0.1:{port}/services/T0/B0/WEBHOOKSECRET", hooks_url=f"http://127.0.0.1:{port}/"
        )
    )
    hook.post(None, "a notice", [])
    responder = SlackSdkApi(SlackSecret(hooks_url=f"http://127.0.0.1:{port}/"))
    response_url = f"http://127.0.0.1:{port}/actions/T0/1/RESPONSESECRET"
    assert responder.respond(response_url, "done", None, replace=True)
    web = SlackSdkApi(SlackSecret(bot_token="xoxb-0", api_url=f"http://localhost:{port}/api/"))
    web.post("C0PAY", "a notice", [])


class Context:
    function_name = "canaryfleet-SlackInteractionsFunction"
    aws_request_id = "r-1"


handler({}, Context())
documents = []
try:
    while True:
        documents.append(udp.recvfrom(65535)[0].decode().split("\n", 1)[1])
except socket.timeout:
    pass
print(json.dumps(documents))
"""


def _trace_documents() -> list[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POWERTOOLS_", "AWS_XRAY", "_X_AMZN"))
    }
    env.update(
        {
            "PYTHONPATH": str(REPO / "layers" / "canaryfleet"),
            "AWS_LAMBDA_FUNCTION_NAME": "canaryfleet-SlackInteractionsFunction",
            "LAMBDA_TASK_ROOT": str(REPO / "functions" / "slack_interactions"),
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "POWERTOOLS_SERVICE_NAME": "slack_interactions",
            "POWERTOOLS_METRICS_NAMESPACE": "canaryfleet",
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    documents: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return documents


def test_slack_secret_urls_stay_out_of_the_trace_while_the_web_api_is_traced() -> None:
    documents = _trace_documents()
    trace = "\n".join(documents)

    assert "WEBHOOKSECRET" not in trace
    assert "RESPONSESECRET" not in trace
    # The trace was recorded, and the Web API call (its token in a header, not the URL) is in it.
    urls = [json.loads(d).get("http", {}).get("request", {}).get("url", "") for d in documents]
    assert any(url.endswith("/api/chat.postMessage") for url in urls), urls
