"""A local stand-in for DefiLlama's yields API, for tests that must never touch the network.

`FakeDefiLlama` serves `/pools` and `/chart/{pool}` from the recorded responses in
`fixtures/defillama` (or from payloads a test sets) on 127.0.0.1 with a free port, in the API's
exact envelope, and can be told to misbehave: answer with an HTTP status (429 with Retry-After,
500, ...) a number of times, send a body that is not JSON, a wrong envelope, or answer too late.
Every request is counted, so tests can prove that retries really happen.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "defillama"


@dataclass
class Fault:
    """One kind of misbehaviour for requests whose path starts with `path` (None: any path)."""

    kind: str  # "status" | "malformed" | "envelope" | "slow" | "drip" | "drip_headers" | "gzip"
    times: int | None  # how many requests it applies to; None: every request
    path: str | None = None
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    body: bytes = b""
    chunk: int = 0  # bytes per write of a drip


class FakeDefiLlama:
    """The fake server; use as a context manager or through the `fake_defillama` fixture."""

    def __init__(self, fixtures: Path = FIXTURES) -> None:
        self.fixtures = fixtures
        self.requests: list[str] = []
        self._faults: list[Fault] = []
        self._payloads: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for it, and every test stops a server.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # .............................................................. lifecycle

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeDefiLlama:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeDefiLlama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # .............................................................. what to serve

    def set_payload(self, path: str, payload: Any) -> None:
        """Serve `payload` (JSON-encoded, NaN allowed as Python writes it) for `path`."""
        self._payloads[path] = json.dumps(payload).encode("utf-8")

    def set_data(self, path: str, data: list[Any]) -> None:
        """Serve `data` in the success envelope for `path`."""
        self.set_payload(path, {"status": "success", "data": data})

    def fail(
        self,
        status: int,
        *,
        times: int | None = None,
        path: str | None = None,
        retry_after: str | None = None,
        body: bytes = b'{"error": "fake failure"}',
    ) -> None:
        """Answer `status` for the next `times` matching requests (every request if None)."""
        self._faults.append(Fault("status", times, path, status, retry_after, body=body))

    def malformed(self, *, times: int | None = None, path: str | None = None) -> None:
        """Answer 200 with a body that is not JSON."""
        self._faults.append(Fault("malformed", times, path, body=b"<html>upstream error</html>"))

    def wrong_envelope(
        self, body: Any, *, times: int | None = None, path: str | None = None
    ) -> None:
        """Answer 200 with valid JSON that is not the success envelope (e.g. status 'error')."""
        self._faults.append(Fault("envelope", times, path, body=json.dumps(body).encode()))

    def slow(self, delay: float, *, times: int | None = None, path: str | None = None) -> None:
        """Wait `delay` seconds before answering (to trip the client's timeout)."""
        self._faults.append(Fault("slow", times, path, delay=delay))

    def drip(self, step: bytes, every: float, steps: int, *, path: str | None = None) -> None:
        """Answer 200 and send `step` every `every` seconds, `steps` times (a dripping server)."""
        self._faults.append(
            Fault("drip", None, path, delay=every, body=step * steps, chunk=len(step))
        )

    def drip_headers(self, every: float, steps: int, *, path: str | None = None) -> None:
        """Send the status line, then one header byte every `every` seconds, `steps` times, and
        only then the rest of a normal answer (a server that is slow before the body)."""
        self._faults.append(Fault("drip_headers", None, path, delay=every, chunk=steps))

    def gzipped(self, body: bytes, *, path: str | None = None) -> None:
        """Answer 200 with `body` (already gzip-compressed) and Content-Encoding: gzip."""
        self._faults.append(Fault("gzip", None, path, body=body))

    def count(self, path_prefix: str = "/") -> int:
        """How many requests reached the server for paths starting with `path_prefix`."""
        with self._lock:
            return sum(1 for p in self.requests if p.startswith(path_prefix))

    # .............................................................. serving

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            self.requests.append(path)
            for fault in self._faults:
                if fault.path is not None and not path.startswith(fault.path):
                    continue
                if fault.times is None:
                    return fault
                if fault.times > 0:
                    fault.times -= 1
                    return fault
            return None

    def _body_for(self, path: str) -> tuple[int, bytes]:
        if path in self._payloads:
            return 200, self._payloads[path]
        if path == "/pools":
            return 200, (self.fixtures / "pools.json").read_bytes()
        if path.startswith("/chart/"):
            pool = path[len("/chart/") :]
            file = self.fixtures / "chart" / f"{pool}.json"
            if "/" not in pool and file.is_file():
                return 200, file.read_bytes()
            return 200, b'{"status":"success","data":[]}'
        return 404, b'{"error":"not found"}'

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                return

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)  # the client may have given up (timeouts)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                fault = fake._take_fault(path)
                if fault is not None:
                    if fault.kind == "slow":
                        time.sleep(fault.delay)
                    elif fault.kind == "drip":
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(fault.body)))
                        self.end_headers()
                        step = max(1, fault.chunk)
                        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                            for start in range(0, len(fault.body), step):
                                self.wfile.write(fault.body[start : start + step])
                                self.wfile.flush()
                                time.sleep(fault.delay)
                        return
                    elif fault.kind == "drip_headers":
                        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                            for _ in range(fault.chunk):
                                self.wfile.write(b"z")
                                self.wfile.flush()
                                time.sleep(fault.delay)
                            status, body = fake._body_for(path)
                            self.wfile.write(b"\r\nContent-Type: application/json\r\n")
                            self.wfile.write(f"Content-Length: {len(body)}\r\n\r\n".encode())
                            self.wfile.write(body)
                        self.close_connection = True
                        return
                    elif fault.kind == "gzip":
                        self._send(200, fault.body, {"Content-Encoding": "gzip"})
                        return
                    elif fault.kind == "status":
                        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                        self._send(fault.status, fault.body, headers)
                        return
                    else:  # malformed or wrong envelope
                        self._send(200, fault.body)
                        return
                status, body = fake._body_for(path)
                self._send(status, body)

        return Handler


@pytest.fixture
def fake_defillama() -> Iterator[FakeDefiLlama]:
    """A running fake yields API on 127.0.0.1; stopped after the test."""
    with FakeDefiLlama() as server:
        yield server
