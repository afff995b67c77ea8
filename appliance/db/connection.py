"""Opening the store database with the pragmas every process must agree on (WAL, synchronous=FULL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw
import msgspec

BUSY_TIMEOUT_MS = 5_000


def open_connection(path: str | Path, *, readonly: bool = False, vfs: str | None = None) -> apsw.Connection:
    """A connection to the store database.

    WAL lets readers (console, web reads, sync) run beside the one writer; synchronous=FULL
    makes every commit survive a power cut, which is what a 201 to a diner promises.
    """
    flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE | apsw.SQLITE_OPEN_URI
    conn = apsw.Connection(str(path), flags=flags, vfs=vfs or None)
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    if not readonly:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchall()[0][0]
        if mode != "wal":
            raise apsw.CantOpenError(f"cannot switch {path} to WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    if readonly:
        conn.execute("PRAGMA query_only=1")
    return conn


@contextmanager
def write_transaction(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """One transaction that takes the write lock up front (BEGIN IMMEDIATE), for a process other than the web
    server's writer thread (the command line, the console, the workers) that reads and then writes.

    `with conn:` opens a deferred savepoint: its first read pins a snapshot, and if another process commits before
    its first write, SQLite refuses the upgrade at once with "database is locked" (SQLITE_BUSY_SNAPSHOT), without
    waiting out the busy timeout. Taking the lock first makes the wait the busy timeout's. Inside an open
    transaction it is a savepoint of that transaction."""
    if conn.in_transaction:
        with conn:
            yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def utc_now() -> str:
    """The current time as the database stores it: UTC, ISO-8601, microseconds, 'Z'."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_ENCODER = msgspec.json.Encoder(order="sorted")


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys (stable, so equal values store and hash equally), UTF-8 kept."""
    return _ENCODER.encode(value).decode()


def rows(conn: apsw.Connection, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
    """Rows as dicts keyed by column name (for the few queries where names beat positions)."""
    cursor = conn.execute(sql, params)
    names: list[str] | None = None
    for row in cursor:
        if names is None:
            names = [d[0] for d in cursor.get_description()]
        yield dict(zip(names, row, strict=True))


def one(conn: apsw.Connection, sql: str, params: Any = ()) -> dict[str, Any] | None:
    return next(rows(conn, sql, params), None)


def scalar(conn: apsw.Connection, sql: str, params: Any = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]
