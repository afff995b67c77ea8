"""The one writer thread of a process: runs queued write functions in shared transactions (group commit)."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import apsw
import structlog

from appliance.db.connection import open_connection
from appliance.errors import TableboxError

log = structlog.get_logger("appliance.writer")

T = TypeVar("T")
WriteFn = Callable[..., T]

_STOP = object()


class WriterClosed(TableboxError, RuntimeError):
    """The writer was stopped; nothing more is accepted."""


class Writer:
    """Owns the write connection. Each queued function runs inside a SAVEPOINT of a shared
    BEGIN IMMEDIATE ... COMMIT; its future resolves only after that COMMIT is durable, so
    many requests share one fsync under load while each still gets a durable answer.

    A function that raises rolls back its own savepoint only; its future gets the exception.
    If the COMMIT itself fails (disk full, I/O error) every function of the batch gets the error
    and nothing of the batch is acknowledged.
    """

    def __init__(self, path: str | Path, *, vfs: str | None = None, max_batch: int = 256) -> None:
        self.path = Path(path)
        self.max_batch = max_batch
        self._vfs = vfs
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self.batches = 0
        self.writes = 0
        self._thread = threading.Thread(target=self._run, name="tablebox-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            raise self._open_error

    def submit(self, fn: WriteFn[T], *args: Any, **kwargs: Any) -> Future[T]:
        if self._closed:
            raise WriterClosed("the store is shutting down")
        future: Future[T] = Future()
        self._queue.put((future, fn, args, kwargs))
        return future

    async def run(self, fn: WriteFn[T], *args: Any, **kwargs: Any) -> T:
        """Await a write from the event loop. The results of a whole batch reach the loop in one
        wake-up (call_soon_threadsafe once per batch, not once per write)."""
        if self._closed:
            raise WriterClosed("the store is shutting down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(((loop, future), fn, args, kwargs))
        return await future

    def call(self, fn: WriteFn[T], *args: Any, **kwargs: Any) -> T:
        """Block until a write is durable (command line, console)."""
        return self.submit(fn, *args, **kwargs).result()

    def close(self) -> None:
        """Finish every queued write, then stop."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = open_connection(self.path, vfs=self._vfs)
        except BaseException as exc:  # reported to the constructor
            self._open_error = exc
            self._ready.set()
            return
        self._ready.set()
        stopping = False
        try:
            while not stopping:
                batch = [self._queue.get()]
                while len(batch) < self.max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if batch[-1] is _STOP or _STOP in batch:
                    stopping = True
                    batch = [job for job in batch if job is not _STOP]
                if batch:
                    self._commit_batch(conn, batch)
        finally:
            conn.close()

    def _commit_batch(self, conn: apsw.Connection, batch: list[Any]) -> None:
        outcomes: list[tuple[Any, bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except apsw.Error as exc:
            log.error("writer.begin_failed", error=str(exc))
            _deliver([(future, False, exc) for future, *_ in batch])
            return
        for future, fn, args, kwargs in batch:
            if isinstance(future, Future) and not future.set_running_or_notify_cancel():
                continue
            conn.execute("SAVEPOINT job")
            try:
                result = fn(conn, *args, **kwargs)
            except BaseException as exc:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((future, False, exc))
            else:
                conn.execute("RELEASE job")
                outcomes.append((future, True, result))
        try:
            conn.execute("COMMIT")
        except apsw.Error as exc:
            log.error("writer.commit_failed", error=str(exc), batch=len(batch))
            try:
                conn.execute("ROLLBACK")
            except apsw.Error:
                pass
            _deliver([(future, False, exc) for future, _, _ in outcomes])
            return
        self.batches += 1
        self.writes += len(outcomes)
        _deliver(outcomes)


def _deliver(outcomes: list[tuple[Any, bool, Any]]) -> None:
    """Resolve thread futures directly; hand each event loop its share of the batch in one call."""
    per_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for target, ok, value in outcomes:
        if isinstance(target, Future):
            target.set_result(value) if ok else target.set_exception(value)
        else:
            loop, future = target
            per_loop.setdefault(loop, []).append((future, ok, value))
    for loop, items in per_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve_on_loop, items)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass


def _resolve_on_loop(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in items:
        if future.cancelled():  # the caller went away; the write itself stands
            continue
        future.set_result(value) if ok else future.set_exception(value)
