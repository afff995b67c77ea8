"""The web process's systemd watchdog: ping only while the event loop runs and the writer thread answers."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future
from typing import Any

import apsw
import structlog

from appliance.db.writer import Writer
from appliance.sdnotify import Notifier

log = structlog.get_logger("appliance.watchdog")


def _probe(conn: apsw.Connection) -> None:
    """A write that writes nothing: it runs in the writer's next transaction like any order, so its answer
    proves the writer thread is taking work and committing. An empty transaction syncs nothing to disk."""
    return


async def watchdog_pings(notifier: Notifier, writer: Writer) -> None:
    """Every half watchdog interval: if the probe sent at the previous tick has been answered, ping
    WATCHDOG=1 and send a new one; if not, the writer is stuck (a disk that does not return from fsync, a
    deadlock): skip the ping, so systemd restarts the server after WatchdogSec=. This task runs on the event
    loop, so a blocked loop stops the pings too. Runs until cancelled."""
    interval = notifier.watchdog_interval
    if interval is None:
        return
    probe: Future[Any] | None = None
    stuck_since: float | None = None
    while True:
        if probe is None or probe.done():
            if probe is not None and probe.exception() is not None:
                # The writer answered (so it is alive) but its transaction failed: orders get 503s that
                # say so; a restart would not help, so keep pinging and say why in the log.
                log.warning("watchdog.probe_failed", error=str(probe.exception()))
            if stuck_since is not None:
                log.warning("watchdog.writer_recovered", stuck_seconds=round(time.monotonic() - stuck_since, 1))
                notifier.status("taking orders")
                stuck_since = None
            notifier.watchdog()
            probe = writer.submit(_probe)
        elif stuck_since is None:
            stuck_since = time.monotonic()
            log.error("watchdog.writer_stuck", waited_seconds=interval)
            notifier.status("writer stuck: not answering; the watchdog will restart the server")
        await asyncio.sleep(interval)
