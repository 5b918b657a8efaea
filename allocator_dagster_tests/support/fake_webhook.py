"""A local Slack-compatible incoming webhook: records each JSON body, answers scripted statuses.

Its URL carries a secret in the path, as Slack's do (`/services/T…/B…/secret`), so tests can
prove the secret never reaches a log, a message or an error.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "s3cr3t-T0KEN-xyzzy"


class FakeWebhook:
    """`statuses` are answered in order, then `default_status` for every later request."""

    def __init__(self, statuses: list[int] | None = None, default_status: int = 200) -> None:
        self.statuses = list(statuses or [])
        self.default_status = default_status
        self.bodies: list[Any] = []
        self.requests = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                hook.requests += 1
                status = hook.statuses.pop(0) if hook.statuses else hook.default_status
                if status == 200:
                    hook.bodies.append(json.loads(raw))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/{SECRET}"

    @property
    def texts(self) -> list[str]:
        return [body["text"] for body in self.bodies]

    def __enter__(self) -> FakeWebhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
