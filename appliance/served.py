"""Where this data folder's store is being served right now: the web server (`tablebox serve`, `tablebox demo`)
writes its address and process id to `served.json` beside the store while it runs, so `tablebox tables` prints the
port phones can really reach (a demo started with `--port 9000` is not on the port setting's 8080)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance.settings import BoxSettings

SERVED_FILE = "served.json"
CONNECT_TIMEOUT_S = 0.5  # a server answering on loopback accepts at once


@dataclass(frozen=True, slots=True)
class Served:
    pid: int
    host: str
    port: int


def served_path(settings: BoxSettings) -> Path:
    return settings.data_dir / SERVED_FILE


@contextlib.contextmanager
def serving_here(settings: BoxSettings) -> Iterator[None]:
    """Record the server's address for the time it runs (a folder it cannot write to records nothing: the port
    setting then stands). The record goes when the server stops (forget_served; also call it when a stop is asked,
    since uvicorn ends the process by the signal it caught once it has shut down, and no `finally` runs after that);
    one left by a crash names a dead process or a port nobody answers on, and is not believed (served_now)."""
    if settings.port:
        path = served_path(settings)
        with contextlib.suppress(OSError):
            part = path.with_name(f".{SERVED_FILE}.{os.getpid()}")
            part.write_text(
                json.dumps({"pid": os.getpid(), "host": settings.host, "port": settings.port}) + "\n", encoding="utf-8"
            )
            os.replace(part, path)
    try:
        yield
    finally:
        forget_served(settings)


def forget_served(settings: BoxSettings) -> None:
    """Remove this process's record (another server's, written since, stays)."""
    path = served_path(settings)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if int(json.loads(path.read_text(encoding="utf-8"))["pid"]) == os.getpid():
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process (the web unit's): alive
        return True
    return True


def _answers(host: str, port: int) -> bool:
    target = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def served_now(settings: BoxSettings) -> Served | None:
    """The server of this data folder if one is running and answering on the port it recorded; else None."""
    try:
        data = json.loads(served_path(settings).read_text(encoding="utf-8"))
        served = Served(int(data["pid"]), str(data["host"]), int(data["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (0 < served.port < 65536) or not _alive(served.pid) or not _answers(served.host, served.port):
        return None
    return served
