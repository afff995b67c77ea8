"""Hostile clients against real server processes (issue #13): the box's `tablebox serve` and the relay's
`tablebox relay serve` on 127.0.0.1, a port from the OS, a file limit of our choosing; raw sockets from any
loopback address (127.0.0.2, 127.0.0.3, ... are all this machine, so many "addresses" can connect)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(
    url: str, proc: subprocess.Popen[bytes], stop: Any, log: Any, what: str = "server", timeout: float = 30
) -> None:
    """Until `url`/healthz answers 200. If the process exits or the time runs out: `stop()`, then RuntimeError with
    the end of `log()` (the server's own output)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"{what} did not start: {log()[-2000:]}")
        time.sleep(0.05)


class ServerProcess:
    """`python -m appliance ARGS --host 127.0.0.1 --port P` with `env` and at most `nofile` open files."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path, nofile: int | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.log = log.open("ab")

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", *args, "--host", "127.0.0.1", "--port", str(self.port)],
            env={**os.environ, **env},
            stdout=self.log,
            stderr=self.log,
            cwd=REPO,
            preexec_fn=limit,
        )
        wait_until_healthy(self.url, self.proc, self.stop, self.log_text)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return self.proc.returncode


@contextlib.contextmanager
def running(args: Sequence[str], env: dict[str, str], log: Path, nofile: int | None = None) -> Iterator[ServerProcess]:
    server = ServerProcess(args, env, log, nofile)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def file_limit_at_least(n: int) -> Iterator[None]:
    """This test process may need more open files than its soft limit (1,100 client sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_answer(sock: socket.socket, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes] | None:
    """One HTTP answer (status, headers, body by Content-Length), or None if the server closed without one."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65_536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        while len(body) < int(headers.get("content-length", "0")):
            chunk = sock.recv(65_536)
            if not chunk:
                break
            body += chunk
        return int(lines[0].split()[1]), headers, body
    except ConnectionResetError:
        return None


def read_answers(sock: socket.socket, count: int, timeout: float = 5.0) -> list[tuple[int, bytes]]:
    """`count` HTTP answers read off one connection in order (pipelined requests: one recv may hold several),
    each as (status, body); fewer if the server closed first."""
    sock.settimeout(timeout)
    data, answers = b"", []
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            lines = data[:head_end].decode("latin-1").split("\r\n")
            length = int(
                next(
                    (
                        v
                        for k, _, v in (line.partition(":") for line in lines[1:])
                        if k.strip().lower() == "content-length"
                    ),
                    "0",
                )
            )
            if len(data) >= head_end + 4 + length:
                answers.append((int(lines[0].split()[1]), data[head_end + 4 : head_end + 4 + length]))
                data = data[head_end + 4 + length :]
                continue
        try:
            chunk = sock.recv(65_536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return answers


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """True once the server has closed this connection (end of file or a reset) within `timeout` seconds; what it
    sent before closing is read and dropped."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if sock.recv(65_536) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def closed_now(sock: socket.socket) -> bool:
    """Has the server closed this connection already (without waiting)?"""
    sock.setblocking(False)
    try:
        while True:
            if sock.recv(65_536) == b"":
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)
