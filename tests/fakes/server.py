"""A real HTTP server on 127.0.0.1 (ephemeral port, its own thread) with the faults the sync worker must
survive, switchable while it runs:

- `go_down()` / `come_back()`: the port refuses connections (the listening socket is closed), then serves
  again on the same port;
- `error_rate`: that fraction of requests answer 503 (after doing nothing);
- `slow_seconds`: every answer waits that long first (a client with a shorter timeout gives up);
- `drop_after_commit_rate`: that fraction of requests are *processed* (the ERP commits) and then the
  connection is closed without an answer: the client cannot know it worked.

Subclasses implement `handle(request) -> Reply` and keep their data under `self.lock`.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-encoded unless bytes
    headers: dict[str, str] = field(default_factory=dict)


class _Dropped(Exception):
    pass


class FakeServer:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.error_rate = 0.0
        self.slow_seconds = 0.0
        self.drop_after_commit_rate = 0.0
        self.requests = 0
        self.random = random.Random(1234)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> FakeServer:
        self._serve(self.port)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def go_down(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def come_back(self) -> None:
        if self._httpd is None:
            self._serve(self.port)

    def stop(self) -> None:
        self.go_down()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, port: int) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body leave in two writes: with Nagle on, the body waits for the client's delayed
                # ACK of the headers, 40 ms per request on a kept-alive connection.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
                try:
                    reply = fake._dispatch(request)
                except _Dropped:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.headers.pop("Content-Type", "application/json"))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                try:
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting (its timeout): normal here

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        ThreadingHTTPServer.allow_reuse_address = True
        httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        httpd.daemon_threads = True
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _dispatch(self, request: Request) -> Reply:
        if self._httpd is None:
            # Down: the listening socket is closed, but a client's kept-alive connection may still reach a
            # handler thread; answer it the way a dead server would, by dropping the connection.
            raise _Dropped()
        with self.lock:
            self.requests += 1
            fail = self.random.random() < self.error_rate
            drop = self.random.random() < self.drop_after_commit_rate
        if self.slow_seconds:
            time.sleep(self.slow_seconds)
        if fail:
            return Reply(503, {"error": "service unavailable (fake)"})
        reply = self.handle(request)
        if drop and request.method != "GET":
            raise _Dropped()
        return reply

    def handle(self, request: Request) -> Reply:  # pragma: no cover - subclasses
        raise NotImplementedError

    # -- what the soak tests read back: every fake ERP answers these ---------------------------------------
    def order_counts(self) -> dict[str, int]:
        """Our order reference -> how many documents the ERP holds for it (exactly-once means all 1)."""
        raise NotImplementedError

    def order_total_minor(self, order_ref: str) -> int:
        raise NotImplementedError
