"""hello-app, broken on purpose: the acceptance suite's build whose canary alarm fires.

``GET /`` (the health check and the bundle's ValidateService hook) still answers 200, so the
deployment succeeds; every other request gets a 500, so the canary's 5xx alarm fires once
traffic reaches it.
"""

import http.server
import os

VERSION = os.environ.get("HELLO_APP_VERSION", "dev")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        healthy = self.path == "/"
        body = (f"hello from {VERSION}\n" if healthy else "broken on purpose\n").encode()
        self.send_response(200 if healthy else 500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
