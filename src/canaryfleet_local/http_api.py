"""The approval gate's HTTP API endpoint on localhost.

:class:`LocalHttpApi` stands in for API Gateway's HTTP API endpoint: a request to
``http://127.0.0.1:<port>`` is matched to a route of the API that ``template.yaml`` deployed
(its OpenAPI body, imported by moto), turned into the event API Gateway sends (payload
format 2.0) and handed to the route's function through Lambda Invoke, so the real handler
answers with the environment the template gives it. Nothing here reaches the internet.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from canaryfleet_local.cloud import LocalCloud, LocalCloudError
from canaryfleet_local.local_server import ServedInThread

_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")
_ROUTE_PARAMETER = re.compile(r"^\{([A-Za-z0-9_]+)\}$")


def _path_pattern(path: str) -> re.Pattern[str]:
    """A route's path as a regular expression: each {name} segment matches one path segment."""
    parts = []
    for segment in path.split("/"):
        parameter = _ROUTE_PARAMETER.match(segment)
        parts.append(f"(?P<{parameter.group(1)}>[^/]+)" if parameter else re.escape(segment))
    return re.compile("^" + "/".join(parts) + "$")


@dataclass(frozen=True)
class ServedRequest:
    """One request the local endpoint served. The query string is left out: it holds signatures."""

    method: str
    path: str
    route_key: str
    status: int


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    route_key: str
    function_arn: str


class LocalHttpApi(ServedInThread):
    """API Gateway's HTTP API on localhost (see the module's docstring).

    The port is bound at once, so that its URL can go into the template's ApprovalPageUrl
    parameter before the local cloud exists; requests are served once :meth:`attach` named
    the cloud. Use as a context manager.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(self._handler_class(), "local-http-api", host, port)
        self._cloud: LocalCloud | None = None
        self._routes: list[_Route] = []
        self._api_id = ""
        self.served: list[ServedRequest] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def parameters(self) -> dict[str, str]:
        """Template parameters that make the platform's links point here."""
        return {"ApprovalPageUrl": self.url}

    def attach(self, cloud: LocalCloud, api_logical_id: str = "ApprovalHttpApi") -> None:
        """Serve the routes of the cloud's HTTP API ``api_logical_id``."""
        api = cloud.client("apigatewayv2")
        api_id = cloud.resource(api_logical_id)
        routes = []
        for route in api.get_routes(ApiId=api_id)["Items"]:
            integration = api.get_integration(ApiId=api_id, IntegrationId=route["Target"].split("/", 1)[1])
            found = re.search(r"/functions/(.+)/invocations$", integration["IntegrationUri"])
            if found is None:
                raise LocalCloudError(f"route {route['RouteKey']} does not integrate a Lambda function")
            method, _, path = route["RouteKey"].partition(" ")
            routes.append(_Route(method, _path_pattern(path), route["RouteKey"], found.group(1)))
        self._routes, self._api_id, self._cloud = routes, api_id, cloud

    # -- serving -----------------------------------------------------------------------
    def _match(self, method: str, path: str) -> tuple[_Route, dict[str, str]] | None:
        for route in self._routes:
            found = route.pattern.match(path)
            if found and route.method in (method, "ANY"):
                return route, found.groupdict()
        return None

    def event(
        self,
        route: _Route,
        parameters: dict[str, str],
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        source_ip: str,
    ) -> dict[str, Any]:
        """The event API Gateway sends a Lambda integration (payload format 2.0)."""
        split = urlsplit(target)
        query = parse_qs(split.query, keep_blank_values=True)
        content_type = headers.get("content-type", "")
        text = not body or content_type.startswith(_TEXT_TYPES)
        if text and body:
            try:
                body.decode()
            except UnicodeDecodeError:
                # Bytes that are not UTF-8 text go base64-encoded, as binary bodies do: the
                # function, not this stand-in, decides what they mean.
                text = False
        now = datetime.now(UTC)
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": split.path,
            "rawQueryString": split.query,
            "headers": headers,
            "requestContext": {
                "accountId": "anonymous",
                "apiId": self._api_id,
                "domainName": headers.get("host", "").split(":")[0],
                "domainPrefix": headers.get("host", "").split(".")[0],
                "http": {
                    "method": method,
                    "path": split.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": uuid.uuid4().hex[:16],
                "routeKey": route.route_key,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": not text,
        }
        if "cookie" in headers:
            event["cookies"] = [c.strip() for c in headers["cookie"].split(";")]
        if query:
            event["queryStringParameters"] = {name: ",".join(values) for name, values in query.items()}
        if parameters:
            event["pathParameters"] = parameters
        if body:
            event["body"] = body.decode() if text else base64.b64encode(body).decode()
        return event

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> tuple[int, dict[str, str], list[str], bytes]:
        """Status, headers, cookies and body of the answer to one request."""
        path = urlsplit(target).path
        if self._cloud is None:
            return 503, {"content-type": "text/plain"}, [], b"the local cloud is not up yet"
        matched = self._match(method, path)
        if matched is None:
            self.served.append(ServedRequest(method, path, "", 404))
            return 404, {"content-type": "application/json"}, [], b'{"message":"Not Found"}'
        route, parameters = matched
        event = self.event(route, parameters, method, target, headers, body, source_ip)
        response = self._cloud.client("lambda").invoke(
            FunctionName=route.function_arn, Payload=json.dumps(event).encode()
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError") or not isinstance(payload, dict):
            self.served.append(ServedRequest(method, path, route.route_key, 500))
            return 500, {"content-type": "application/json"}, [], b'{"message":"Internal Server Error"}'
        status = int(payload.get("statusCode", 200))
        raw = payload.get("body") or ""
        content = base64.b64decode(raw) if payload.get("isBase64Encoded") else str(raw).encode()
        answer_headers = {str(k): str(v) for k, v in (payload.get("headers") or {}).items()}
        for name, values in (payload.get("multiValueHeaders") or {}).items():
            answer_headers[str(name)] = ", ".join(str(v) for v in values)
        self.served.append(ServedRequest(method, path, route.route_key, status))
        return status, answer_headers, [str(c) for c in payload.get("cookies") or []], content

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers: dict[str, str] = {}
                for name, value in self.headers.items():
                    key = name.lower()
                    headers[key] = f"{headers[key]},{value}" if key in headers else value
                status, answer, cookies, content = endpoint.handle(
                    self.command, self.path, headers, body, self.client_address[0]
                )
                self.send_response(status)
                for name, value in answer.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                for cookie in cookies:
                    self.send_header("Set-Cookie", cookie)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: a request line carries the link's query string, signature included."""

        return Handler
