"""One runner for the long-running workers, `tablebox printd` and `tablebox syncd`, and the heartbeat their
threads share.

A worker is a group of threads, one per printer or per sync target, so a dead printer or a slow ERP never
holds up another (`WorkerLoop`, `WorkerGroup`). Each thread beats its heartbeat every time it comes round its
loop or begins a unit of work (a print job, an outbox row). The group is healthy while every thread is alive
and has beaten within `stuck_after_seconds`; a printer that is out of paper or an ERP that is down is not
unhealthy (the thread keeps looping while it waits), only a thread that stopped or hangs is.

`run_daemon` is the process around a worker: SIGTERM and SIGINT set a stop event; it starts the worker, tells
systemd READY=1 with a status line, pings the watchdog while the worker is healthy (appliance.sdnotify: systemd
restarts the service when pings stay away for WatchdogSec=), says STOPPING=1 on a signal and stops the worker
(between jobs: a job being sent finishes first).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Generic, Protocol, TypeVar

from appliance.sdnotify import Notifier, feed_watchdog

# A thread that has not come round its loop (or begun its next job or row) for this long is stuck. Every I/O of a
# worker has its own timeout far below this (printer I/O 5 s, busy timeout 5 s, the ERP's HTTP timeout), and a big
# raster job on a slow serial printer or a catalog pull paging through a large ERP takes tens of seconds: a slow
# job never counts as a hang (a restart mid-job would print it again, headed REPRINT).
STUCK_AFTER_SECONDS = 300.0


class WorkerLoop:
    """One thread of a worker: `run()` loops until the worker's stop event is set, calling `touch()` each time round
    (and when it begins a unit of work). `what` names it in health messages ("printer kitchen")."""

    def __init__(self, *, thread_name: str, what: str) -> None:
        self.what = what
        self.beat = time.monotonic()  # last time the thread came round its loop or began a unit of work
        self.thread = threading.Thread(target=self.run, name=thread_name, daemon=True)

    def run(self) -> None:
        raise NotImplementedError

    def touch(self) -> None:
        self.beat = time.monotonic()

    def problem(self, now: float, stuck_after: float) -> str | None:
        """None while the thread is alive and beat within `stuck_after` seconds; otherwise what is wrong."""
        if not self.thread.is_alive():
            return f"the thread of {self.what} has stopped"
        if now - self.beat > stuck_after:
            return f"{self.what} has been stuck for {now - self.beat:.0f} s"
        return None


LoopT = TypeVar("LoopT", bound=WorkerLoop)


class WorkerGroup(Generic[LoopT]):
    """A worker's threads with one stop event: start them, ask their health, stop them. Subclasses fill `loops`
    (and may add to `start`, `health` and `stop`)."""

    def __init__(self, stop: threading.Event | None = None, stuck_after_seconds: float = STUCK_AFTER_SECONDS) -> None:
        self.stop_event = stop or threading.Event()
        self.stuck_after_seconds = stuck_after_seconds
        self.loops: list[LoopT] = []

    def start_loops(self) -> None:
        for loop in self.loops:
            loop.thread.start()

    def health(self, now: float | None = None) -> str | None:
        """None while every thread is alive and has come round its loop within stuck_after_seconds; otherwise what
        is wrong. run_daemon pings the systemd watchdog only while this is None."""
        now = time.monotonic() if now is None else now
        for loop in self.loops:
            problem = loop.problem(now, self.stuck_after_seconds)
            if problem:
                return problem
        return None

    def join_loops(self, deadline: float) -> None:
        for loop in self.loops:
            if loop.thread.is_alive():
                loop.thread.join(max(0.0, deadline - time.monotonic()))


class Supervised(Protocol):
    """What run_daemon runs: a worker that starts, says whether it is healthy, and stops."""

    def start(self) -> object: ...

    def health(self, now: float | None = None) -> str | None: ...

    def stop(self) -> None: ...


def run_daemon(
    worker: Supervised,
    status: Callable[[], str],
    *,
    stop: threading.Event | None = None,
    notifier: Notifier | None = None,
) -> None:
    """Run `worker` until SIGTERM or SIGINT (or `stop` is set): READY=1 with `status()` once it has started,
    WATCHDOG=1 while `worker.health()` is None, STOPPING=1, then `worker.stop()`. The previous signal handlers
    are put back when it returns."""
    stop = stop or threading.Event()
    notifier = notifier or Notifier.from_environ()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker.start()
        try:
            notifier.ready(status=status())
            feed_watchdog(notifier, stop, worker.health)  # until a signal; pings only while healthy
            notifier.stopping()
        finally:
            worker.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        notifier.close()
