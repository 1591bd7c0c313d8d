"""hello-app: the sample application canaryfleet deploys in its demos and tests."""

import http.server
import os

VERSION = os.environ.get("HELLO_APP_VERSION", "dev")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {VERSION}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()  # noqa: S104
