"""Tell systemd how a Tablebox service is doing: READY, STATUS, STOPPING and watchdog pings (sd_notify).

The protocol (systemd's sd_notify(3), "notify socket" in systemd.exec(5)): newline-separated `NAME=value`
assignments in one datagram sent to the AF_UNIX socket named by `$NOTIFY_SOCKET`, a path, or an abstract
name written with a leading `@`. `$WATCHDOG_USEC` is the unit's WatchdogSec= in microseconds, meant for
the process whose pid is `$WATCHDOG_PID` when that is set. Without `$NOTIFY_SOCKET` (not under systemd,
or Type= is not notify) every call does nothing, so the same code runs in a terminal and in tests.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger("appliance.sdnotify")

# A blocked send (systemd not reading its socket) must not hold up the event loop or a worker for long.
SEND_TIMEOUT_SECONDS = 1.0


def _socket_address(value: str) -> str | None:
    """The address to send to, or None for forms this module does not speak (e.g. vsock: in a VM)."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]  # Linux abstract namespace
    return None


def watchdog_usec_from(env: Mapping[str, str], pid: int | None = None) -> int | None:
    """WatchdogSec= in microseconds if the watchdog is on and meant for this process, else None
    (sd_watchdog_enabled)."""
    raw = env.get("WATCHDOG_USEC", "")
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None  # the watchdog is for another process of the unit
        except ValueError:
            return None
    return usec


class Notifier:
    """One process's line to systemd. Thread-safe: a datagram send is atomic."""

    def __init__(self, socket_path: str | None = None, watchdog_usec: int | None = None) -> None:
        self.socket_path = socket_path or None
        self._address = _socket_address(socket_path) if socket_path else None
        if socket_path and self._address is None:
            log.warning("sdnotify.unsupported_socket", notify_socket=socket_path)
        self.watchdog_usec = watchdog_usec if self._address is not None and watchdog_usec else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog_usec_from(env))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings: half of WatchdogSec=, as sd_watchdog_enabled(3) advises; None when off."""
        return self.watchdog_usec / 2_000_000 if self.watchdog_usec else None

    def send(self, *assignments: str) -> bool:
        """Send `NAME=value` lines in one datagram. True if sent; False when not under systemd or when
        the send failed (logged: a service never stops because systemd could not be told something)."""
        if self._address is None or not assignments:
            return False
        message = "\n".join(assignments).encode("utf-8")
        try:
            with self._lock:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    self._sock.settimeout(SEND_TIMEOUT_SECONDS)
                self._sock.sendto(message, self._address)
        except OSError as exc:
            log.warning(
                "sdnotify.send_failed",
                notify_socket=self.socket_path,
                error=str(exc),
                message=message.decode("utf-8", "replace")[:80],
            )
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def feed_watchdog(notifier: Notifier, stop: threading.Event, health: Callable[[], str | None]) -> None:
    """Block until `stop` is set. Meanwhile, every half watchdog interval, ping WATCHDOG=1 if `health()`
    says nothing is wrong (None); otherwise skip the ping (systemd restarts the service when pings stay
    away for WatchdogSec=) and say what went wrong, once, in the log and the unit's status line.
    Without a watchdog it just waits for `stop`."""
    interval = notifier.watchdog_interval
    if interval is None:
        stop.wait()
        return
    problem: str | None = None
    notifier.watchdog()
    while not stop.wait(interval):
        now_problem = health()
        if now_problem is None:
            notifier.watchdog()
            if problem is not None:
                log.warning("watchdog.recovered", was=problem)
                notifier.status("running")
        elif problem is None:
            log.error("watchdog.unhealthy", problem=now_problem)
            notifier.status(f"unhealthy: {now_problem}")
        problem = now_problem
