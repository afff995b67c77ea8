"""The relay's database behind one interface: SQLite (apsw, WAL, synchronous=FULL) for a single relay host, or
PostgreSQL (psycopg 3) for many stores and several relay processes, chosen by a URL; the same schema on both,
numbered migrations per dialect (`migrations/sqlite/`, `migrations/postgresql/`).

Every method is synchronous and short; the service runs them on a small thread pool. Inbox sequence numbers
are gap-free per store: a message takes `stores.next_seq` and bumps it in the insert's own transaction, with
the store row locked (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's write transactions are serial anyway),
so seqs and event ids of one store also commit in the order they were given out: a reader that has seen
seq N never later finds a committed N-1.
"""

from __future__ import annotations

import base64
import contextlib
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from appliance.errors import TableboxError

_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
NONCE_KEEP_SECONDS = 600  # twice the signature's allowed clock skew: an older nonce cannot be replayed anyway
PURGE_BATCH = 5_000
NOTIFY_CHANNEL = "tablebox_relay"  # PostgreSQL: 'inbox:STORE_ID' / 'events:STORE_ID', sent at the write's commit
LISTENER_NAME = "tablebox-relay listener"  # its application_name (pg_stat_activity)


class StorageError(TableboxError):
    """The relay's database cannot be opened or used (bad URL, unreachable server, failed migration): exit 2."""

    exit_code: ClassVar[int] = 2


class UnknownStore(StorageError):
    pass


@dataclass(frozen=True)
class StoreRow:
    store_id: str
    name: str
    created_at: float
    last_poll_at: float | None
    polling: bool
    acked_seq: int
    menu_version: int | None
    next_seq: int


@dataclass(frozen=True)
class Message:
    store_id: str
    seq: int
    kind: str  # "order" | "request"
    idempotency_key: str  # the diner's client_key for an order; one the relay made for a request
    token: str
    body: str  # JSON text, as stored
    body_hash: str
    received_at: float

    @property
    def client_key(self) -> str | None:
        return self.idempotency_key if self.kind == "order" else None


@dataclass(frozen=True)
class Event:
    id: int  # arrival order in this relay's database
    store_id: str
    event_id: str  # the box's id ("accepted:<client_key>", ...)
    client_key: str
    token: str
    type: str  # "accepted" | "refused" | "status"
    body: str  # JSON text: {"order": ..., "error": ...}
    at: str
    received_at: float


@dataclass(frozen=True)
class NewEvent:
    event_id: str
    client_key: str
    type: str
    body: str
    at: str


@dataclass(frozen=True)
class Enrolled:
    store_id: str
    secret: str  # 64 hex characters


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Storage(Protocol):
    """What the relay service needs from its database."""

    url: str
    dialect: str  # "sqlite" | "postgresql"

    def enroll(self, name: str, now: float | None = None) -> Enrolled: ...
    def secret_of(self, store_id: str) -> bytes | None: ...
    def record_nonce(self, store_id: str, nonce: str, ts: int) -> bool: ...
    def store(self, store_id: str) -> StoreRow | None: ...
    def stores(self) -> list[StoreRow]: ...
    def menu(self, store_id: str) -> tuple[int, str] | None: ...
    def put_menu(self, store_id: str, version: int, menu_json: str) -> int: ...
    def begin_poll(self, store_id: str, after: int, now: float, limit: int = 100) -> list[Message]: ...
    def end_poll(self, store_id: str, now: float) -> None: ...
    def inbox_after(self, store_id: str, after: int, limit: int = 100) -> list[Message]: ...
    def put_message(
        self, store_id: str, kind: str, idempotency_key: str, token: str, body: str, body_hash: str, now: float
    ) -> tuple[Message, bool]: ...
    def message_by_key(self, store_id: str, idempotency_key: str) -> Message | None: ...
    def put_events(self, store_id: str, events: Sequence[NewEvent], now: float) -> int: ...
    def events_for_key(self, store_id: str, client_key: str) -> list[Event]: ...
    def events_for_token(
        self, store_id: str, token: str, after_id: int = 0, limit: int = 100, since: float = 0.0
    ) -> list[Event]: ...
    def event_position(self, store_id: str, event_id: str) -> int | None: ...
    def orders_of_token(self, store_id: str, token: str, since: float, limit: int = 200) -> list[Message]: ...
    def missing_images(self, names: Sequence[str]) -> list[str]: ...
    def put_image(self, name: str, body: bytes, now: float) -> bool: ...
    def image(self, name: str) -> bytes | None: ...
    def purge(self, now: float, keep_seconds: float) -> dict[str, int]: ...
    def ping(self) -> None: ...
    def listen(self, on_change: OnChange, on_state: OnState) -> Listener | None: ...
    def close(self) -> None: ...


OnChange = Callable[[str, str], None]  # ("inbox" | "events", store_id): another process (or this one) wrote
OnState = Callable[[bool, str | None], None]  # (listening now, why not): the LISTEN connection came up or dropped


class _Tx(Protocol):
    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...
    def run(self, sql: str, params: Sequence[Any] = ()) -> None: ...


_STORE_COLUMNS = "store_id, name, created_at, last_poll_at, polling, acked_seq, menu_version, next_seq"
_MESSAGE_COLUMNS = "store_id, seq, kind, idempotency_key, token, body, body_hash, received_at"
_EVENT_COLUMNS = "id, store_id, event_id, client_key, token, type, body, at, received_at"


def _store_row(row: tuple[Any, ...]) -> StoreRow:
    return StoreRow(row[0], row[1], row[2], row[3], bool(row[4]), int(row[5]), row[6], int(row[7]))


def _message(row: tuple[Any, ...]) -> Message:
    return Message(row[0], int(row[1]), row[2], row[3], row[4], row[5], row[6], row[7])


def _event(row: tuple[Any, ...]) -> Event:
    return Event(int(row[0]), *row[1:])


def new_store_id() -> str:
    """16 lower-case base32 characters (80 random bits): url-safe, easy to read out on the phone."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


class SqlStorage:
    """The queries both dialects share; a dialect gives transactions and the few clauses that differ."""

    url: str
    dialect: str
    for_update = ""  # PostgreSQL locks the store row; SQLite's write transaction already excludes writers

    @contextlib.contextmanager
    def _tx(self, write: bool, single: bool = False) -> Iterator[_Tx]:  # pragma: no cover - dialects
        """A transaction; `single`: the caller runs one statement (PostgreSQL then skips BEGIN and COMMIT)."""
        raise NotImplementedError
        yield

    def close(self) -> None:  # pragma: no cover - dialects
        raise NotImplementedError

    def _purge_rows(self, tx: _Tx, table: str, where: str, params: Sequence[Any]) -> int:  # pragma: no cover
        raise NotImplementedError

    def _changed(self, tx: _Tx, kind: str, store_id: str) -> None:
        """A write other relay processes must hear of, in its own transaction (PostgreSQL: NOTIFY, delivered at
        commit and never after a rollback). SQLite: nothing; it is one process, woken in-process."""

    def listen(self, on_change: OnChange, on_state: OnState) -> Listener | None:
        """Hear other relay processes' writes (PostgreSQL's LISTEN on a thread of its own); None on SQLite."""
        return None

    # -- stores -----------------------------------------------------------------------------------------------
    def enroll(self, name: str, now: float | None = None) -> Enrolled:
        name = name.strip()
        if not name or len(name) > 200:
            raise ValueError("a store's name is 1-200 characters")
        secret = secrets.token_hex(32)
        for _ in range(5):
            store_id = new_store_id()
            with self._tx(write=True) as tx:
                if tx.one("SELECT 1 FROM stores WHERE store_id = ?", (store_id,)) is None:
                    tx.run(
                        "INSERT INTO stores (store_id, name, secret, created_at) VALUES (?, ?, ?, ?)",
                        (store_id, name, secret, time.time() if now is None else now),
                    )
                    return Enrolled(store_id, secret)
        raise StorageError("could not make a unique store id")  # pragma: no cover - 80 random bits

    def secret_of(self, store_id: str) -> bytes | None:
        with self._tx(write=False) as tx:
            row = tx.one("SELECT secret FROM stores WHERE store_id = ?", (store_id,))
        return bytes.fromhex(row[0]) if row else None

    def record_nonce(self, store_id: str, nonce: str, ts: int) -> bool:
        with self._tx(write=True, single=True) as tx:
            row = tx.one(
                "INSERT INTO nonces (store_id, nonce, ts) VALUES (?, ?, ?) "
                "ON CONFLICT (store_id, nonce) DO NOTHING RETURNING 1",
                (store_id, nonce, ts),
            )
        return row is not None

    def store(self, store_id: str) -> StoreRow | None:
        with self._tx(write=False) as tx:
            row = tx.one(f"SELECT {_STORE_COLUMNS} FROM stores WHERE store_id = ?", (store_id,))
        return _store_row(row) if row else None

    def stores(self) -> list[StoreRow]:
        with self._tx(write=False) as tx:
            return [_store_row(r) for r in tx.all(f"SELECT {_STORE_COLUMNS} FROM stores ORDER BY created_at")]

    def menu(self, store_id: str) -> tuple[int, str] | None:
        with self._tx(write=False) as tx:
            row = tx.one(
                "SELECT menu_version, menu_json FROM stores WHERE store_id = ? AND menu_json IS NOT NULL", (store_id,)
            )
        return (int(row[0]), row[1]) if row else None

    def put_menu(self, store_id: str, version: int, menu_json: str) -> int:
        """Store the menu unless an older version than the stored one; returns the version now stored."""
        with self._tx(write=True) as tx:
            tx.run(
                "UPDATE stores SET menu_version = ?, menu_json = ? "
                "WHERE store_id = ? AND (menu_version IS NULL OR menu_version <= ?)",
                (version, menu_json, store_id, version),
            )
            row = tx.one("SELECT menu_version FROM stores WHERE store_id = ?", (store_id,))
        if row is None:
            raise UnknownStore(store_id)
        return int(row[0])

    # -- the inbox --------------------------------------------------------------------------------------------
    def begin_poll(self, store_id: str, after: int, now: float, limit: int = 100, wait: bool = True) -> list[Message]:
        """A poll starts: it is the store's heartbeat (last_poll_at), everything up to `after` is acknowledged;
        the messages after it. When there are none and the poll will wait, the store is marked polling (online
        while it waits; end_poll clears it). A box ahead of the counter (the relay's database restored from an
        older copy) moves the counter past `after`, so its next messages are not skipped."""
        with self._tx(write=True) as tx:
            rows = tx.all(
                f"SELECT {_MESSAGE_COLUMNS} FROM inbox WHERE store_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (store_id, after, limit),
            )
            tx.run(
                "UPDATE stores SET polling = ?, last_poll_at = ?, "
                "acked_seq = CASE WHEN acked_seq < ? THEN ? ELSE acked_seq END, "
                "next_seq = CASE WHEN next_seq <= ? THEN ? ELSE next_seq END WHERE store_id = ?",
                (wait and not rows, now, after, after, after, after + 1, store_id),
            )
        return [_message(r) for r in rows]

    def end_poll(self, store_id: str, now: float) -> None:
        with self._tx(write=True, single=True) as tx:
            tx.run("UPDATE stores SET polling = ?, last_poll_at = ? WHERE store_id = ?", (False, now, store_id))

    def inbox_after(self, store_id: str, after: int, limit: int = 100) -> list[Message]:
        with self._tx(write=False) as tx:
            rows = tx.all(
                f"SELECT {_MESSAGE_COLUMNS} FROM inbox WHERE store_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (store_id, after, limit),
            )
        return [_message(r) for r in rows]

    def put_message(
        self, store_id: str, kind: str, idempotency_key: str, token: str, body: str, body_hash: str, now: float
    ) -> tuple[Message, bool]:
        """Append a message to the store's inbox with the next seq; (the message, True). A key already in the
        inbox is not stored again: (that message, False)."""
        with self._tx(write=True) as tx:
            row = tx.one(f"SELECT next_seq FROM stores WHERE store_id = ?{self.for_update}", (store_id,))
            if row is None:
                raise UnknownStore(store_id)
            seq = int(row[0])
            existing = tx.one(
                f"SELECT {_MESSAGE_COLUMNS} FROM inbox WHERE store_id = ? AND idempotency_key = ?",
                (store_id, idempotency_key),
            )
            if existing is not None:
                return _message(existing), False
            tx.run(
                "INSERT INTO inbox (store_id, seq, kind, idempotency_key, token, body, body_hash, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (store_id, seq, kind, idempotency_key, token, body, body_hash, now),
            )
            tx.run("UPDATE stores SET next_seq = ? WHERE store_id = ?", (seq + 1, store_id))
            self._changed(tx, "inbox", store_id)
        return Message(store_id, seq, kind, idempotency_key, token, body, body_hash, now), True

    def message_by_key(self, store_id: str, idempotency_key: str) -> Message | None:
        with self._tx(write=False) as tx:
            row = tx.one(
                f"SELECT {_MESSAGE_COLUMNS} FROM inbox WHERE store_id = ? AND idempotency_key = ?",
                (store_id, idempotency_key),
            )
        return _message(row) if row else None

    def orders_of_token(self, store_id: str, token: str, since: float, limit: int = 200) -> list[Message]:
        """The orders phones sent with this table code since `since`, oldest first (the newest `limit`)."""
        with self._tx(write=False) as tx:
            rows = tx.all(
                f"SELECT {_MESSAGE_COLUMNS} FROM inbox WHERE store_id = ? AND token = ? AND kind = 'order' "
                "AND received_at >= ? ORDER BY seq DESC LIMIT ?",
                (store_id, token, since, limit),
            )
        return [_message(r) for r in reversed(rows)]

    # -- events from the box ----------------------------------------------------------------------------------
    def put_events(self, store_id: str, events: Sequence[NewEvent], now: float) -> int:
        """Store the box's events (an id already stored is ignored); returns how many were new."""
        new = 0
        with self._tx(write=True) as tx:
            # The store row lock orders this store's event ids by commit, so a stream never skips one.
            if tx.one(f"SELECT 1 FROM stores WHERE store_id = ?{self.for_update}", (store_id,)) is None:
                raise UnknownStore(store_id)
            for event in events:
                found = tx.one(
                    "SELECT token FROM inbox WHERE store_id = ? AND idempotency_key = ?", (store_id, event.client_key)
                )
                row = tx.one(
                    "INSERT INTO events (store_id, event_id, client_key, token, type, body, at, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store_id, event_id) DO NOTHING RETURNING id",
                    (
                        store_id,
                        event.event_id,
                        event.client_key,
                        found[0] if found else "",
                        event.type,
                        event.body,
                        event.at,
                        now,
                    ),
                )
                new += row is not None
            if new:
                self._changed(tx, "events", store_id)
        return new

    def events_for_key(self, store_id: str, client_key: str) -> list[Event]:
        with self._tx(write=False) as tx:
            rows = tx.all(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE store_id = ? AND client_key = ? ORDER BY id LIMIT 500",
                (store_id, client_key),
            )
        return [_event(r) for r in rows]

    def events_for_token(
        self, store_id: str, token: str, after_id: int = 0, limit: int = 100, since: float = 0.0
    ) -> list[Event]:
        with self._tx(write=False) as tx:
            rows = tx.all(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE store_id = ? AND token = ? AND id > ? "
                "AND received_at >= ? ORDER BY id LIMIT ?",
                (store_id, token, after_id, since, limit),
            )
        return [_event(r) for r in rows]

    def event_position(self, store_id: str, event_id: str) -> int | None:
        with self._tx(write=False) as tx:
            row = tx.one("SELECT id FROM events WHERE store_id = ? AND event_id = ?", (store_id, event_id))
        return int(row[0]) if row else None

    # -- dish photos (named by their content, shared by every store) --------------------------------------------
    def missing_images(self, names: Sequence[str]) -> list[str]:
        """Those of `names` not stored, in the order given."""
        if not names:
            return []
        with self._tx(write=False) as tx:
            rows = tx.all(f"SELECT name FROM images WHERE name IN ({', '.join('?' * len(names))})", list(names))
        stored = {row[0] for row in rows}
        return [name for name in names if name not in stored]

    def put_image(self, name: str, body: bytes, now: float) -> bool:
        """Store a photo; a name already stored is left as it is (its bytes are the same). True if new."""
        with self._tx(write=True) as tx:
            row = tx.one(
                "INSERT INTO images (name, body, stored_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING 1",
                (name, body, now),
            )
        return row is not None

    def image(self, name: str) -> bytes | None:
        with self._tx(write=False) as tx:
            row = tx.one("SELECT body FROM images WHERE name = ?", (name,))
        return bytes(row[0]) if row else None

    # -- upkeep -----------------------------------------------------------------------------------------------
    def purge(self, now: float, keep_seconds: float) -> dict[str, int]:
        """Forget nonces older than 10 minutes, and acknowledged messages and events older than keep_seconds
        (never a message the box has not acknowledged). Deletes in batches; returns the counts. Dish photos are
        kept: named by their content, small, and a menu may show one again at any time."""
        counts = {"nonces": 0, "inbox": 0, "events": 0}
        jobs = (
            ("nonces", "ts < ?", (int(now) - NONCE_KEEP_SECONDS,)),
            (
                "inbox",
                "received_at < ? AND seq <= (SELECT acked_seq FROM stores s WHERE s.store_id = inbox.store_id)",
                (now - keep_seconds,),
            ),
            ("events", "received_at < ?", (now - keep_seconds,)),
        )
        for table, where, params in jobs:
            while True:
                with self._tx(write=True) as tx:
                    deleted = self._purge_rows(tx, table, where, params)
                counts[table] += deleted
                if deleted < PURGE_BATCH:
                    break
        return counts

    def ping(self) -> None:
        with self._tx(write=False) as tx:
            tx.one("SELECT 1")


# -- SQLite -------------------------------------------------------------------------------------------------------
class _ApswTx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = self.conn.execute(sql, params).fetchall()
        return found

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        found: tuple[Any, ...] | None = self.conn.execute(sql, params).fetchone()
        return found

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, params)


class SqliteStorage(SqlStorage):
    """One file, WAL, synchronous=FULL (a 202 to a phone means the message survives a power cut), a busy
    timeout for other processes on the same file. A connection per thread; this process's writes take turns
    on a lock, so they never sleep in SQLite's busy handler against each other."""

    dialect = "sqlite"

    def __init__(self, url: str, path: Path) -> None:
        self.url = url
        self.path = path
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        _migrate_sqlite(conn)

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            from appliance.db.connection import open_connection

            conn = open_connection(self.path)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def _tx(self, write: bool, single: bool = False) -> Iterator[_Tx]:
        conn = self._conn()
        with self._write_lock if write else contextlib.nullcontext():
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _ApswTx(conn)
                conn.execute("COMMIT")
            except BaseException:
                if not conn.getautocommit():  # still in the transaction (a failed statement or COMMIT)
                    conn.execute("ROLLBACK")
                raise

    def _purge_rows(self, tx: _Tx, table: str, where: str, params: Sequence[Any]) -> int:
        before = tx.one("SELECT total_changes()")[0]  # type: ignore[index]
        tx.run(
            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {where} LIMIT {PURGE_BATCH})", params
        )
        return int(tx.one("SELECT total_changes()")[0]) - int(before)  # type: ignore[index]

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except Exception:  # a connection of a thread still in a call: closed at exit anyway
                    pass
            self._connections.clear()
        self._local = threading.local()


def _migrations(dialect: str) -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("sync.relay").joinpath("migrations", dialect).iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort()
    if len({n for n, _, _ in found}) != len(found):
        raise StorageError(f"two {dialect} migrations share a number")
    return found


def _migrate_sqlite(conn: Any) -> list[int]:
    """Like appliance/db/migrate.py: each migration once, in order, in a transaction with its record."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    applied = []
    for number, name, sql in _migrations("sqlite"):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (number,)).fetchone() is None:
                conn.execute(sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (number, name, time.time()),
                )
                applied.append(number)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied


# -- PostgreSQL ---------------------------------------------------------------------------------------------------
class _PgTx:
    def __init__(self, cur: Any) -> None:
        self.cur = cur

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cur.execute(sql.replace("?", "%s"), params)
        found: list[tuple[Any, ...]] = self.cur.fetchall()
        return found

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self.cur.execute(sql.replace("?", "%s"), params)
        found: tuple[Any, ...] | None = self.cur.fetchone()
        return found

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cur.execute(sql.replace("?", "%s"), params)


_MIGRATION_LOCK = 0x7461626C  # pg_advisory_xact_lock key: relay processes starting together migrate once


class PostgresStorage(SqlStorage):
    """psycopg 3 with a small pool of connections (at most `pool_size`, opened when first needed, a broken one
    dropped), in autocommit: a read or a one-statement write is one round trip; other writes run in a transaction
    (READ COMMITTED). Writes to one store serialise on its row (FOR UPDATE), and the purge takes rows with SKIP
    LOCKED so several relay processes purging at once never wait on each other."""

    dialect = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, url: str, pool_size: int = 8, connect_timeout: float = 10.0) -> None:
        import psycopg

        self._psycopg = psycopg
        self.url = url
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        self._closed = False
        with self._connection() as conn:
            _migrate_postgres(conn)

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, int(self.connect_timeout)),
                application_name="tablebox-relay",
            )
        except self._psycopg.Error as exc:
            raise StorageError(f"cannot connect to {_redacted(self.url)}: {str(exc).strip()}") from None

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        conn = None
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._opened < self.pool_size
                if grow:
                    self._opened += 1
            if grow:
                try:
                    conn = self._connect()
                except BaseException:
                    with self._lock:
                        self._opened -= 1
                    raise
            else:
                try:
                    conn = self._idle.get(timeout=30)
                except queue.Empty:
                    raise StorageError("no database connection free for 30 s") from None
        try:
            yield conn
        except BaseException:
            if conn.closed or conn.broken:
                with self._lock:
                    self._opened -= 1
                conn = None
            raise
        finally:
            if conn is not None:
                if self._closed:
                    conn.close()
                else:
                    self._idle.put(conn)

    @contextlib.contextmanager
    def _tx(self, write: bool, single: bool = False) -> Iterator[_Tx]:
        """Reads and single statements run in autocommit (READ COMMITTED gives each statement its own snapshot
        anyway), saving a BEGIN and a COMMIT round trip each; other writes in one transaction."""
        with self._connection() as conn:  # autocommit connections
            if single or not write:
                with conn.cursor() as cur:
                    yield _PgTx(cur)
            else:
                with conn.transaction(), conn.cursor() as cur:  # BEGIN; COMMIT, or ROLLBACK on an exception
                    yield _PgTx(cur)

    def _purge_rows(self, tx: _Tx, table: str, where: str, params: Sequence[Any]) -> int:
        rows = tx.all(
            f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE {where} "
            f"LIMIT {PURGE_BATCH} FOR UPDATE SKIP LOCKED) RETURNING 1",
            params,
        )
        return len(rows)

    def _changed(self, tx: _Tx, kind: str, store_id: str) -> None:
        tx.one("SELECT pg_notify(?, ?)", (NOTIFY_CHANNEL, f"{kind}:{store_id}"))

    def begin_poll(self, store_id: str, after: int, now: float, limit: int = 100, wait: bool = True) -> list[Message]:
        """As SqlStorage.begin_poll, in one statement (one round trip instead of four: every box pays it twice a
        minute); both parts see one snapshot, the update runs whether or not messages are found."""
        with self._tx(write=True, single=True) as tx:
            rows = tx.all(
                f"WITH found AS (SELECT {_MESSAGE_COLUMNS} FROM inbox WHERE store_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?), "
                "marked AS (UPDATE stores SET polling = (? AND NOT EXISTS (SELECT 1 FROM found)), last_poll_at = ?, "
                "acked_seq = GREATEST(acked_seq, ?), next_seq = GREATEST(next_seq, ?) WHERE store_id = ? RETURNING 1) "
                "SELECT * FROM found ORDER BY seq",
                (store_id, after, limit, wait, now, after, after + 1, store_id),
            )
        return [_message(r) for r in rows]

    def listen(self, on_change: OnChange, on_state: OnState) -> Listener:
        return Listener(self.url, on_change, on_state, connect_timeout=self.connect_timeout).start()

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break


class Listener:
    """One LISTEN connection per relay process, on a thread of its own: every `inbox:` / `events:` notification
    becomes `on_change(kind, store_id)` (the caller turns it into its in-process wake-up). When the connection
    drops it says `on_state(False, why)` and reconnects (0.1 s, doubling to 5 s); once LISTEN is in place again,
    `on_state(True, None)`: the caller re-reads the database once then, for what was written while nobody listened.
    TCP keep-alives find a connection that died without a word within about 30 s."""

    POLL_SECONDS = 0.25  # how soon stop() is noticed
    RETRY_SECONDS = (0.1, 5.0)

    def __init__(self, url: str, on_change: OnChange, on_state: OnState, connect_timeout: float = 10.0) -> None:
        import psycopg

        self._psycopg = psycopg
        self.url = url
        self.on_change = on_change
        self.on_state = on_state
        self.connect_timeout = connect_timeout
        self.backend_pid: int | None = None  # while connected
        self.connects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay-listen", daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        retry = self.RETRY_SECONDS[0]
        while not self._stop.is_set():
            try:
                conn = self._psycopg.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=max(1, int(self.connect_timeout)),
                    application_name=LISTENER_NAME,
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=4,
                )
            except self._psycopg.Error as exc:
                self.on_state(False, f"cannot connect to {_redacted(self.url)}: {str(exc).strip()}")
                self._stop.wait(retry)
                retry = min(retry * 2, self.RETRY_SECONDS[1])
                continue
            try:
                with conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.backend_pid = conn.info.backend_pid
                    self.connects += 1
                    retry = self.RETRY_SECONDS[0]
                    self.on_state(True, None)
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=self.POLL_SECONDS):
                            kind, _, store_id = notify.payload.partition(":")
                            if store_id:
                                self.on_change(kind, store_id)
            except self._psycopg.Error as exc:
                self.backend_pid = None
                if not self._stop.is_set():
                    self.on_state(False, str(exc).strip() or type(exc).__name__)
                    self._stop.wait(retry)
            self.backend_pid = None


def _migrate_postgres(conn: Any) -> list[int]:
    applied = []
    for number, name, sql in _migrations("postgresql"):
        with conn.transaction(), conn.cursor() as cur:  # each migration with its record, or neither
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            cur.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (number,))
            if cur.fetchone() is None:
                cur.execute(sql)
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (number, name, time.time()),
                )
                applied.append(number)
    return applied


def _redacted(url: str) -> str:
    """The URL without its password (it goes into error messages and logs)."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def open_storage(url: str, pool_size: int = 8) -> SqlStorage:
    """sqlite:///relative/or//absolute/path.db (three slashes + the path; four for an absolute one, or
    sqlite:////var/lib/x.db) or postgresql://user:password@host:port/dbname (postgres:// too). Migrates."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        if not url.lower().startswith("sqlite:///") or len(url) <= len("sqlite:///"):
            raise StorageError(f"{url!r}: a SQLite URL is sqlite:///PATH (sqlite:////var/lib/relay.db for /var/lib)")
        path = Path(url[len("sqlite:///") :])
        try:
            return SqliteStorage(url, path)
        except Exception as exc:  # apsw errors, permissions
            raise StorageError(f"cannot open {path}: {exc}") from None
    if scheme in ("postgresql", "postgres"):
        try:
            import psycopg  # noqa: F401
        except ImportError:  # pragma: no cover - a dependency
            raise StorageError("PostgreSQL storage needs psycopg: pip install 'psycopg[binary]'") from None
        return PostgresStorage(url, pool_size=pool_size)
    raise StorageError(f"{_redacted(url)!r}: the relay's database URL starts with sqlite:/// or postgresql://")
