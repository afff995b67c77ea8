"""Process plumbing for the bench: free ports, pinned child processes, waiting for an answer, RSS/CPU, clean kill."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CORE = "0"
LOADGEN_CORE = "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core: str, argv: Sequence[str]) -> list[str]:
    return ["taskset", "-c", core, *argv]


class Child:
    """A child process in its own session (a terminal Ctrl-C reaches only run.py, which then stops it)."""

    registry: list[Child] = []

    def __init__(
        self, name: str, argv: Sequence[str], env: dict[str, str] | None = None, log_path: Path | None = None
    ) -> None:
        self.name = name
        self.log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (closed in stop)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        Child.registry.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid  # taskset execs the program, so this is the server's own pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        if self.log not in (None, subprocess.DEVNULL):
            self.log.close()
        if self in Child.registry:
            Child.registry.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for child in list(cls.registry):
            try:
                child.stop()
            except Exception as exc:  # keep stopping the others
                print(f"  (could not stop {child.name}: {exc!r})", file=sys.stderr)


def http_request(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_first_answer(child: Child, port: int, path: str, timeout: float = 30.0) -> float:
    """Seconds from the child's start to its first 200 on `path` (polled every 5 ms)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited with code {child.proc.returncode} before answering")
        try:
            status, _ = http_request(port, "GET", path, timeout=1.0)
            if status == 200:
                return time.perf_counter() - child.started
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{child.name} did not answer {path} within {timeout:.0f}s")


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB from /proc/PID/status."""
    values = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, kb, _ = line.split()
                values[key[:-1]] = int(kb) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run_loadgen(cfg: dict[str, Any], server_pid: int | None = None, workdir: Path | None = None) -> dict[str, Any]:
    """Run bench/loadgen.py pinned to the load-generator core; returns its JSON result, plus the
    server's CPU use over the whole run (warm-up included) when server_pid is given."""
    fd, cfg_path = tempfile.mkstemp(prefix="loadgen-", suffix=".json", dir=workdir)
    with os.fdopen(fd, "w") as fh:
        json.dump(cfg, fh)
    argv = pinned(LOADGEN_CORE, [PYTHON, str(BENCH_DIR / "loadgen.py"), cfg_path])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    cpu0, t0 = (cpu_seconds(server_pid), time.perf_counter()) if server_pid else (0.0, 0.0)
    try:
        out, err = proc.communicate(timeout=float(cfg["warmup"]) + float(cfg["duration"]) + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.unlink(cfg_path)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}): {err.decode()[-2000:]}")
    result = json.loads(out)
    if server_pid:
        try:
            result["server_cpu_pct"] = 100.0 * (cpu_seconds(server_pid) - cpu0) / (time.perf_counter() - t0)
        except OSError:
            result["server_cpu_pct"] = float("nan")
    return result
