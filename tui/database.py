"""The console's one database connection, used only from its own thread so the screen never waits on I/O.

Reads and writes are sent to that thread and awaited; while one takes longer than a moment the console shows a
spinner. Every staff action runs through `ConsoleDatabase.act`: the permission check, the store's own function
and a line in the audit trail, all in one transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import apsw

from appliance.db.connection import open_connection, write_transaction
from appliance.db.staff import Staff, audit

T = TypeVar("T")


@runtime_checkable
class SaysWhatItDid(Protocol):
    """A store function's result that carries details only the transaction knew (an order's step: from which state
    to which, read as the step was taken, not from a board a moment behind); `act` adds them to the audit line."""

    @property
    def audit_details(self) -> Mapping[str, Any]: ...


# The screen never waits on the database, so a staff action may wait longer than the web does for the lock.
BUSY_TIMEOUT_MS = 30_000


class ConsoleDatabase:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="console-db")
        self._closed = False  # close() ran: calls end as cancelled (the console is going away)
        self._conn: apsw.Connection | None = None
        self.in_flight: dict[int, float] = {}  # call number -> monotonic start
        self._calls = 0

    def _connection(self) -> apsw.Connection:
        if self._conn is None:
            self._conn = open_connection(self.path)
            self._conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        return self._conn

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn(conn, *args) on the database thread."""
        if self._closed:  # the console is closing: a worker still reading (a poll) ends as cancelled, not failed
            raise asyncio.CancelledError
        self._calls += 1
        number = self._calls
        self.in_flight[number] = time.monotonic()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, lambda: fn(self._connection(), *args, **kwargs)
            )
        finally:
            self.in_flight.pop(number, None)

    async def act(
        self,
        staff: Staff,
        permission: str,
        action: str,
        subject: str,
        fn: Callable[..., T],
        *args: Any,
        details: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> T:
        """A staff action: refused (DomainError) without the permission; else the change and its audit line
        commit together or not at all. The line's details are `details` and what the result says it did
        (SaysWhatItDid)."""
        staff.require(permission)

        def run(conn: apsw.Connection) -> T:
            # BEGIN IMMEDIATE: wait (busy timeout) for the write lock up front; a read transaction that later
            # tries to write would be refused at once if another process is writing.
            with write_transaction(conn):
                result = fn(conn, *args, **kwargs)
                found = result.audit_details if isinstance(result, SaysWhatItDid) else {}
                audit(conn, staff, action, subject, {**(details or {}), **found})
            return result

        return await self.call(run)

    def busy_for(self) -> float:
        """Seconds the oldest call in flight has been running (0 when idle)."""
        if not self.in_flight:
            return 0.0
        return time.monotonic() - min(self.in_flight.values())

    def close(self) -> None:
        self._closed = True

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            self._pool.submit(shut).result(timeout=10)
        finally:
            self._pool.shutdown(wait=True)
