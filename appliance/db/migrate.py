"""Numbered SQL migrations, each applied once, in order, in a transaction together with its record."""

from __future__ import annotations

import re
from importlib import resources

import apsw

from appliance.db.connection import utc_now
from appliance.db.retention import switch_small_store
from appliance.diskspace import free_bytes
from appliance.errors import StoreDamaged, StoreTooNew

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def available() -> list[tuple[int, str, str]]:
    """(number, name, sql) for every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("appliance.db").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two migrations share a number: {numbers}")
    return found


def refuse_newer_schema(conn: apsw.Connection, migrations: list[tuple[int, str, str]] | None = None) -> None:
    """StoreTooNew (exit 2) when a newer release has migrated this store past the newest migration shipped here:
    every command that opens the store checks it (migrate, appliance.store.store_connection, the daemons' start)."""
    migrations = available() if migrations is None else migrations
    known = migrations[-1][0] if migrations else 0
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    if has_table.fetchone() is None:
        return
    newest = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    if newest is not None and newest[0] is not None and int(newest[0]) > known:
        raise StoreTooNew(
            f"{conn.filename} was updated by a newer Tablebox (its schema is {newest[0]}; this release knows up to "
            f"{known}), so this release will not open it. Go back to the newer release (`sudo provision.sh update "
            "--from WHEELHOUSE`), or restore the backup made before that update (`tablebox restore FILE`, the "
            "newest store-*.db in backups/updates/) to run this one."
        )


def migrate(conn: apsw.Connection) -> list[int]:
    """Apply the migrations this database has not seen; returns the numbers applied now.

    A database that has tables but no `schema_migrations` is someone else's: StoreDamaged (exit 2), never a
    store's tables added beside theirs. (A zero-length file looks new here; the callers that open an existing
    store refuse it first: appliance.store.require_store.)"""
    tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if tables and "schema_migrations" not in tables:
        raise StoreDamaged(
            f"{conn.filename} is not a Tablebox store: it has tables ({', '.join(sorted(tables)[:4])}) but no "
            "schema_migrations; not migrating it"
        )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    migrations = available()
    refuse_newer_schema(conn, migrations)
    applied_now = []
    for number, name, sql in migrations:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Checked inside the write transaction: two processes starting together apply it once.
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (number,)).fetchone():
                conn.execute("COMMIT")
                continue
            conn.execute(sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (number, name, utc_now()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied_now.append(number)
    if applied_now:
        switch_small_store(conn, free_bytes)  # migration 0009's VACUUM, when the store is small (retention.py)
    return applied_now


def current_version(conn: apsw.Connection) -> int:
    try:
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except apsw.SQLError:
        return 0
    return int(row[0] or 0) if row is not None else 0
