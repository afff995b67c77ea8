"""The retention policy (issue 14 item 12): what is deleted after `retention_days`, and the space given back.

Deleted once older than the cutoff, in small batches so the web server's writer never waits long:
- outbox rows that were delivered (`delivered_at` set). A row not delivered yet, or parked after failing, is an
  order the ERP has not got: never deleted, however old.
- order_events (the status trail diners' pages and the console follow), except the cancellations: their reason
  is in the day's report and in an order's view (appliance/db/reports.py, orders.py), so they stay with the books.
- print jobs that printed (`state = 'printed'`). A job still pending, sending or failed is a ticket the kitchen
  has not had: never deleted.
Kept for the books, always: orders, order_lines, payments, table_sessions, service requests, tables, the menu.
The row with the highest id of each table is never deleted either: SQLite gives a new row max(id) + 1, and the
live event streams and the console go by ids, so an id must never come back after a quiet spell.

The space: the store uses auto_vacuum = INCREMENTAL (migration 0009), so the pages a prune frees are handed back
to the file system with `PRAGMA incremental_vacuum` (in steps, each its own short write) instead of staying in
the file for ever. A store made before 0009 needs one VACUUM to switch; that rewrites the whole file, so it is
done only when the store is small (at migration) or at night by `tablebox prune`, with room checked first.
VACUUM is one transaction: a power cut leaves the old file or the new one, never a mix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apsw

from appliance.db.connection import scalar, write_transaction

BATCH_ROWS = 2_000  # rows deleted per write transaction: a few milliseconds of the write lock
VACUUM_STEP_PAGES = 2_560  # pages handed back per incremental_vacuum step (10 MB at 4 KB pages)
SMALL_STORE_BYTES = 16 * 1024 * 1024  # switched to incremental at migration time: a VACUUM of a second or two
INCREMENTAL = 2  # PRAGMA auto_vacuum: 0 none, 1 full, 2 incremental

# (table, what may go, the time column): every statement also keeps the table's newest row (see above).
_RULES: tuple[tuple[str, str, str], ...] = (
    ("outbox", "delivered_at IS NOT NULL", "delivered_at"),
    ("order_events", "to_status != 'cancelled'", "at"),
    ("print_jobs", "state = 'printed' AND printed_at IS NOT NULL", "printed_at"),
)


@dataclass(frozen=True)
class Pruned:
    outbox: int
    order_events: int
    print_jobs: int
    cutoff: str

    @property
    def rows(self) -> int:
        return self.outbox + self.order_events + self.print_jobs


@dataclass(frozen=True)
class SpaceGiven:
    bytes_before: int  # page_count x page_size, before and after
    bytes_after: int
    free_pages_left: int  # freelist pages still in the file (a store not switched to incremental yet)


def cutoff_for(now: datetime, days: int) -> str:
    """The oldest time kept, as the store writes times (UTC, ISO-8601, microseconds, 'Z'), so text compares."""
    return (now.astimezone(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def prunable(conn: apsw.Connection, cutoff: str) -> dict[str, int]:
    """How many rows of each table a prune at `cutoff` would delete (`tablebox prune --dry-run`)."""
    return {
        table: int(
            scalar(
                conn,
                f"SELECT count(*) FROM {table} WHERE {where} AND {column} < ? AND id < (SELECT max(id) FROM {table})",
                (cutoff,),
            )
        )
        for table, where, column in _RULES
    }


def prune(
    conn: apsw.Connection, cutoff: str, *, batch: int = BATCH_ROWS, between: Callable[[], None] | None = None
) -> Pruned:
    """Delete what the policy lets go that is older than `cutoff`, `batch` rows per write transaction
    (`between` runs after each: tests use it to write meanwhile)."""
    counts: dict[str, int] = {}
    for table, where, column in _RULES:
        total = 0
        while True:
            with write_transaction(conn):
                conn.execute(
                    f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} AND {column} < ?"
                    f" AND id < (SELECT max(id) FROM {table}) ORDER BY id LIMIT ?)",
                    (cutoff, batch),
                )
                deleted = conn.changes()
            total += deleted
            if between is not None:
                between()
            if deleted < batch:
                break
        counts[table] = total
    return Pruned(counts["outbox"], counts["order_events"], counts["print_jobs"], cutoff)


def auto_vacuum(conn: apsw.Connection) -> int:
    return int(scalar(conn, "PRAGMA auto_vacuum"))


def file_bytes(conn: apsw.Connection) -> int:
    """The database's size as SQLite counts it (page_count x page_size): the file once the WAL is checkpointed."""
    return int(scalar(conn, "PRAGMA page_count")) * int(scalar(conn, "PRAGMA page_size"))


def give_back_space(conn: apsw.Connection, *, step_pages: int = VACUUM_STEP_PAGES) -> SpaceGiven:
    """Hand the free pages back to the file system (incremental_vacuum, in steps), then fold the WAL into the
    file and truncate it (best effort: a reader that holds an old snapshot makes it wait for the next run)."""
    before = file_bytes(conn)
    if auto_vacuum(conn) == INCREMENTAL:
        while int(scalar(conn, "PRAGMA freelist_count")) > 0:
            with write_transaction(conn):
                conn.execute(f"PRAGMA incremental_vacuum({int(step_pages)})").fetchall()
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except apsw.BusyError:
        pass
    return SpaceGiven(before, file_bytes(conn), int(scalar(conn, "PRAGMA freelist_count")))


def vacuum_room_needed(conn: apsw.Connection) -> int:
    """Free bytes a VACUUM needs beside the store: a temporary copy of it, then as much again in the WAL."""
    return 2 * file_bytes(conn)


def switch_to_incremental(conn: apsw.Connection) -> bool:
    """Migration 0009's VACUUM: rewrite the store with auto_vacuum = INCREMENTAL. True when it is (now or before).
    The caller checks the room first (vacuum_room_needed) and runs it when the store is quiet."""
    if auto_vacuum(conn) == INCREMENTAL:
        return True
    if conn.in_transaction:
        raise RuntimeError("VACUUM cannot run inside a transaction")
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("VACUUM")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except apsw.BusyError:
        pass
    return auto_vacuum(conn) == INCREMENTAL


def switch_small_store(conn: apsw.Connection, free_bytes: Callable[[Path], int] | None = None) -> bool:
    """Called by appliance.db.migrate after it applied migrations: a store of up to SMALL_STORE_BYTES (every new
    store, most young ones) is switched at once; a larger one is left to `tablebox prune` at night."""
    if auto_vacuum(conn) == INCREMENTAL:
        return True
    if file_bytes(conn) > SMALL_STORE_BYTES:
        return False
    if free_bytes is not None and free_bytes(Path(conn.filename).parent) < vacuum_room_needed(conn):
        return False
    try:
        return switch_to_incremental(conn)
    except apsw.BusyError:  # another process is writing: the nightly prune does it
        return False


SUMMARY_TABLES = ("orders", "order_lines", "order_events", "outbox", "print_jobs", "payments", "tables", "items")


def store_summary(conn: apsw.Connection) -> list[tuple[str, str]]:
    """The store's settings rows and its size per table, for the support bundle (no order, staff member or PIN)."""
    out = [(str(key), str(value)) for key, value in conn.execute("SELECT key, value FROM settings ORDER BY key")]
    for table in SUMMARY_TABLES:
        try:
            out.append((f"rows in {table}", str(scalar(conn, f"SELECT count(*) FROM {table}"))))
        except apsw.SQLError:
            continue
    for pragma in ("auto_vacuum", "page_size", "page_count", "freelist_count", "journal_mode"):
        out.append((f"PRAGMA {pragma}", str(scalar(conn, f"PRAGMA {pragma}"))))
    return out
