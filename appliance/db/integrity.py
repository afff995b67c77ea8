"""Is a database file whole, and is it a Tablebox store: the checks run at start, on every backup and before a restore."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import apsw

from appliance.db.connection import BUSY_TIMEOUT_MS, scalar
from appliance.errors import StoreDamaged

SQLITE_HEADER = b"SQLite format 3\x00"
MAX_REPORTED = 10  # integrity_check stops after this many problems: enough to say "damaged" and show where


class DatabaseProblem(StoreDamaged):
    """The file is not a database, is damaged, or is not a Tablebox store; the message says which (exit 2)."""


@dataclass(frozen=True)
class StoreFileInfo:
    store_id: str
    store_name: str
    schema_version: int
    orders: int
    newest_order_at: str | None
    size_bytes: int


def open_for_check(path: str | Path) -> apsw.Connection:
    """A connection that reads the file as it is: no journal mode switched, nothing created, nothing written."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    conn.execute("PRAGMA query_only=1")
    return conn


def check_problems(conn: apsw.Connection, *, full: bool = True) -> list[str]:
    """[] when the database is whole; otherwise what SQLite found. `full=False` is `quick_check` (b-tree
    structure only, seconds on a big store: for start-up); `full=True` also checks every index against its table."""
    pragma = "integrity_check" if full else "quick_check"
    try:
        found = [row[0] for row in conn.execute(f"PRAGMA {pragma}({MAX_REPORTED})")]
    except apsw.Error as exc:  # page 1 unreadable, not a database at all, ...
        return [f"{type(exc).__name__}: {exc}"]
    if found == ["ok"]:
        return []
    # one row can hold several lines, headed "*** in database main ***": one problem per item
    return [line.strip() for row in found for line in str(row).splitlines()
            if line.strip() and not line.startswith("***")]


def database_problems(path: str | Path, *, full: bool = True) -> list[str]:
    """The one check of a database file, for start-up (`full=False`), the doctor and backups: [] when it is whole,
    otherwise what SQLite found. StoreDamaged (exit 2) when the file cannot even be opened."""
    try:
        conn = open_for_check(path)
    except apsw.Error as exc:  # CantOpenError, NotADBError, ...
        raise StoreDamaged(f"cannot open the database {path}: {exc}") from None
    try:
        return check_problems(conn, full=full)
    finally:
        conn.close()


def refuse_damaged_store(db_path: Path, advice: Callable[[], str]) -> None:
    """`PRAGMA quick_check` before serving, printing or syncing: never start on a damaged database. Raises
    StoreDamaged (exit 2, so systemd does not restart it forever) with the problems and `advice()` (what to do:
    appliance.doctor.restore_advice). Nothing to check when there is no database yet."""
    if not db_path.exists():
        return
    problems = database_problems(db_path, full=False)
    if problems:
        raise StoreDamaged(f"the database {db_path} is damaged (quick_check: {'; '.join(problems[:2])}).\n"
                           f"  Not starting on it. {advice()}")


def newest_order_at(conn: apsw.Connection) -> str | None:
    """When the newest order was taken (the doctor compares the clock with it); None without orders, or when the
    database cannot say."""
    try:
        newest: str | None = scalar(conn, "SELECT max(created_at) FROM orders")
    except apsw.Error:
        return None
    return newest


def looks_like_sqlite(path: str | Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def inspect_store_file(path: str | Path, *, full: bool = True) -> StoreFileInfo:
    """What a store file holds, after checking that it is a whole SQLite database and a Tablebox store."""
    if not looks_like_sqlite(path):
        raise DatabaseProblem(f"{path} is not a SQLite database")
    conn = open_for_check(path)
    try:
        problems = check_problems(conn, full=full)
        if problems:
            raise DatabaseProblem(f"{path} is damaged ({'integrity_check' if full else 'quick_check'}: "
                                  f"{'; '.join(problems[:3])})")
        return store_info(conn, path)
    finally:
        conn.close()


def store_info(conn: apsw.Connection, path: str | Path) -> StoreFileInfo:
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"settings", "schema_migrations", "orders"} <= tables:
            raise DatabaseProblem(f"{path} is not a Tablebox store (its tables are not a store's)")
        settings = dict(conn.execute(
            "SELECT key, value FROM settings WHERE key IN ('store_id', 'store_name')"))
        if "store_id" not in settings:
            raise DatabaseProblem(f"{path} is not a Tablebox store (no store_id: never initialised)")
        version: int = scalar(conn, "SELECT max(version) FROM schema_migrations") or 0
        orders: int = scalar(conn, "SELECT count(*) FROM orders")
        newest: str | None = scalar(conn, "SELECT max(created_at) FROM orders")
        page_count: int = scalar(conn, "PRAGMA page_count")
        page_size: int = scalar(conn, "PRAGMA page_size")
    except apsw.Error as exc:
        raise DatabaseProblem(f"{path} cannot be read as a store: {exc}") from None
    return StoreFileInfo(
        store_id=json.loads(settings["store_id"]),
        store_name=json.loads(settings["store_name"]) if "store_name" in settings else "",
        schema_version=version,
        orders=orders,
        newest_order_at=newest,
        size_bytes=page_count * page_size,
    )
