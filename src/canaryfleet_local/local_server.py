"""What the local cloud's HTTP fakes (the HTTP API, Slack) share: a server on localhost, in a thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class ServedInThread:
    """Binds ``host:port`` at once (port 0: any free one) and serves while used as a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str, host: str, port: int) -> None:
        self._server = _Server((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
