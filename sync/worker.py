"""The sync worker behind `tablebox syncd`: one thread per ERP target, delivering its outbox and pulling its catalog
and stock on schedule, so a slow or dead ERP never holds up another; for a relay target, also its link (inbox
long-poll and menu pusher: sync/relay_link.py)."""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import apsw
import structlog

from appliance.daemon import STUCK_AFTER_SECONDS, WorkerGroup, WorkerLoop
from appliance.db.connection import open_connection
from appliance.errors import TableboxError
from appliance.settings import BoxSettings, SettingsError
from sync.adapters import make_adapter
from sync.adapters.base import Adapter, Capability
from sync.catalog import CatalogChanges, pull_and_apply
from sync.check import answer_check_request
from sync.config import Target, targets
from sync.outbox import BATCH_SIZE, LEASE_SECONDS, Backoff, Clock, OutboxEngine, system_clock
from sync.relay_link import RelayLink

log = structlog.get_logger("sync.worker")

POLL_SECONDS = 0.25
PULL_RETRY_SECONDS = 60.0

# How long stopping waits for a relay link to finish the message it is applying (a transaction of milliseconds); its
# long-poll is not waited for.
LINK_STOP_SECONDS = 5.0

AdapterFactory = Callable[[str, Mapping[str, Any]], Adapter]
LinkFactory = Callable[[BoxSettings, Target, threading.Event], RelayLink]


def worker_id(target: str) -> str:
    """Stable across restarts of this box's worker, so a restarted worker takes its own claims back at once
    (one syncd per store at a time: see hold_lock)."""
    return f"{socket.gethostname()}:{target}"


class AlreadyRunning(TableboxError, RuntimeError):
    """Another `tablebox syncd` holds this store's lock (exit 2: a second one is not retried)."""

    exit_code: ClassVar[int] = 2


def hold_lock(path: Path) -> Any:
    """An exclusive lock on `path` for as long as the returned file stays open: one sync worker per store, so
    two never act under the same worker id. The kernel drops it when the process dies, however it dies."""
    handle = open(path, "a+b")  # noqa: SIM115 - kept open on purpose
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyRunning(f"another `tablebox syncd` is running for this store (it holds {path})") from None
    os.set_inheritable(handle.fileno(), False)
    return handle


def pull_now(conn: apsw.Connection, adapter: Adapter) -> CatalogChanges:
    """Catalog and stock from the ERP, applied to the local menu in one transaction (sync.catalog)."""
    return pull_and_apply(conn, adapter)


class TargetLoop(WorkerLoop):
    """One target's thread: pulls when due, then claims and delivers rows until none is ready, then waits. A row
    takes at most a few HTTP calls, each with the target's timeout, so a slow ERP is a retry, never a hang."""

    def __init__(
        self,
        db_path: Path,
        target: Target,
        adapter: Adapter,
        stop: threading.Event,
        *,
        vfs: str | None,
        poll_seconds: float,
        clock: Clock,
        lease_seconds: float = LEASE_SECONDS,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.db_path = db_path
        self.target = target
        self.adapter = adapter
        self.stop = stop
        self.vfs = vfs
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.batch_size = batch_size
        self.delivered = 0
        self.checking: threading.Thread | None = None
        super().__init__(thread_name=f"sync-{target.name}", what=f"sync target {target.name}")

    def run(self) -> None:
        conn = open_connection(self.db_path, vfs=self.vfs)
        engine = OutboxEngine(
            conn,
            self.target.name,
            self.adapter,
            worker_id=worker_id(self.target.name),
            clock=self.clock,
            backoff=Backoff(cap=float(self.target.retry_cap_seconds)),
            lease_seconds=self.lease_seconds,
            stop=self.stop,
            heartbeat=self.touch,
            batch_size=self.batch_size,
            in_flight=int(self.target.config.get("max_in_flight", 1)),
        )
        pull_every = self.target.pull_minutes * 60.0 if Capability.CATALOG_PULL in self.adapter.capabilities else 0.0
        next_pull = time.monotonic() if pull_every else None
        try:
            while not self.stop.is_set():
                self.touch()
                if next_pull is not None and time.monotonic() >= next_pull:
                    next_pull = time.monotonic() + (
                        pull_every if self.pull(conn) else min(pull_every, PULL_RETRY_SECONDS)
                    )
                wait = self.poll_seconds
                try:
                    # the console's "check now" (it has no network): run on a thread of its own, delivery goes on
                    self.checking = answer_check_request(conn, self.target, self.db_path, self.vfs, self.checking)
                    done = engine.run_once()
                    self.delivered += done.delivered
                    if done.claimed:
                        continue  # more may be ready: other orders' rows (a failed row holds only its own order's)
                    until = engine.seconds_until_ready()
                    if until is not None:
                        wait = min(wait, until)
                except apsw.Error as exc:  # the store busy or failing: the claims stay ours, try again shortly
                    log.error("sync.store_error", target=self.target.name, error=str(exc))
                    wait = 1.0
                except Exception:
                    log.exception("sync.loop_error", target=self.target.name)
                    wait = 5.0
                if next_pull is not None:
                    wait = min(wait, max(0.0, next_pull - time.monotonic()))
                self.stop.wait(wait)
        finally:
            engine.close()
            try:
                released = engine.release_all()
                if released:
                    log.info("sync.released", target=self.target.name, rows=released)
            except apsw.Error as exc:
                log.error("sync.release_failed", target=self.target.name, error=str(exc))
            self.adapter.close()
            conn.close()

    def pull(self, conn: apsw.Connection) -> bool:
        try:
            result = pull_now(conn, self.adapter)
        except Exception as exc:  # the menu stays as it was; the next pull tries again
            log.warning("sync.pull_failed", target=self.target.name, error=str(exc)[:300])
            return False
        log.info("sync.pulled", target=self.target.name, changed=result.changed, **result.counts())
        return True


class SyncWorker(WorkerGroup[TargetLoop]):
    """Every enabled target of the settings, each in its own thread with its own connection and adapter; a relay
    target also gets its link (sync.relay_link: inbox long-poll and menu pusher) beside its outbox thread."""

    def __init__(
        self,
        settings: BoxSettings,
        *,
        stop: threading.Event | None = None,
        adapter_factory: AdapterFactory = make_adapter,
        poll_seconds: float = POLL_SECONDS,
        stuck_after_seconds: float = STUCK_AFTER_SECONDS,
        clock: Clock = system_clock,
        lease_seconds: float = LEASE_SECONDS,
        batch_size: int = BATCH_SIZE,
        link_factory: LinkFactory | None = None,
    ) -> None:
        super().__init__(stop, stuck_after_seconds)
        self.links: list[RelayLink] = []
        where = settings.config_file or "the settings"
        try:
            for target in targets(settings).values():
                if not target.enabled:
                    continue
                try:
                    adapter = adapter_factory(target.name, target.config)
                except (ValueError, KeyError, TypeError) as exc:
                    raise SettingsError(f"{where}: [sync.{target.name}]: {exc}") from None
                self.loops.append(
                    TargetLoop(
                        settings.db_path,
                        target,
                        adapter,
                        self.stop_event,
                        vfs=settings.sqlite_vfs or None,
                        poll_seconds=poll_seconds,
                        clock=clock,
                        lease_seconds=lease_seconds,
                        batch_size=batch_size,
                    )
                )
                if Capability.INBOX in adapter.capabilities:
                    try:
                        self.links.append((link_factory or RelayLink)(settings, target, self.stop_event))
                    except (ValueError, KeyError, TypeError) as exc:
                        raise SettingsError(f"{where}: [sync.{target.name}]: {exc}") from None
        except BaseException:
            for loop in self.loops:
                loop.adapter.close()
            for link in self.links:
                link.close()
            raise

    def start(self) -> SyncWorker:
        self.start_loops()
        for link in self.links:
            link.start()
        log.info(
            "sync.started",
            targets=[{"name": t.target.name, "kind": t.target.kind, "url": t.target.base_url} for t in self.loops],
        )
        return self

    def health(self, now: float | None = None) -> str | None:
        """None while every target thread is alive and has come round its loop (or begun a row) within
        stuck_after_seconds; otherwise what is wrong. `tablebox syncd` pings the systemd watchdog only while this
        is None. An ERP that is down is not unhealthy: the thread keeps looping while it backs off."""
        now = time.monotonic() if now is None else now
        problem = super().health(now)
        if problem:
            return problem
        for link in self.links:
            problem = link.health(now, self.stuck_after_seconds)
            if problem:
                return problem
        return None

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; each thread finishes the row in hand (bounded by its HTTP timeouts) and hands the rest
        of its claims back."""
        self.stop_event.set()
        deadline = time.monotonic() + (
            timeout if timeout is not None else max((3 * t.target.timeout_seconds for t in self.loops), default=0) + 5
        )
        self.join_loops(deadline)
        for link in self.links:  # a message being applied finishes; a long-poll in progress is abandoned
            link.join(min(LINK_STOP_SECONDS, max(0.0, deadline - time.monotonic())))

    def __enter__(self) -> SyncWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
