"""Is a database file whole, and is it a Tablebox store: the checks run at start, on every backup and before a restore;
and the SQLite side of copying one (a backup's snapshot copy, a restore's store_id and checkpoint)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import apsw

from appliance.db.connection import BUSY_TIMEOUT_MS, open_connection, scalar
from appliance.errors import StoreDamaged, StoreError

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
    return [
        line.strip() for row in found for line in str(row).splitlines() if line.strip() and not line.startswith("***")
    ]


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


def refuse_damaged_store(db_path: Path, advice: Callable[[], str], *, quick_check: bool = True) -> None:
    """Never start on, nor open, a database that is not a whole Tablebox store. Raises StoreDamaged (exit 2, so
    systemd does not restart it forever) with one line: what is wrong with the file and `advice()` (what to do:
    appliance.backup.restore_advice). Nothing to check when there is no database yet.

    In order: a zero-length file or one without SQLite's header (read as bytes: a zero-length file is never
    opened, since SQLite would delete a -wal lying beside it); then `PRAGMA quick_check` (b-tree structure,
    seconds on a big store: before serving, printing or syncing, `quick_check=False` for the other commands);
    then the store's schema (`schema_migrations` and a store_id), so that neither a zero-length file nor
    someone else's database is ever migrated into an empty store."""
    if not db_path.exists():
        return
    problem = file_problem(db_path)
    if problem is None and quick_check:
        problems = database_problems(db_path, full=False)
        if problems:
            problem = f"the database {db_path} is damaged (quick_check: {'; '.join(problems[:2])})"
    if problem is None:
        problem = schema_problem(db_path)
    if problem is not None:
        raise StoreDamaged(f"{problem}; nothing was changed. {advice()}")


def file_problem(path: Path) -> str | None:
    """What is wrong with the store file, read as bytes (no SQLite connection): empty, or not a SQLite
    database; None when it starts as a SQLite database. StoreError (exit 2) when it cannot be read at all."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(
            f"cannot read the database {path}: {exc.strerror or exc}: check the owner and mode of the data "
            "folder and its files (the services run as the tablebox user)"
        ) from None
    if not header:
        return f"{path} is empty (0 bytes): it holds no store"
    if header != SQLITE_HEADER:
        return f"{path} is not a SQLite database"
    return None


def schema_problem(path: Path) -> str | None:
    """None when the database holds a Tablebox store's schema (`schema_migrations`, `settings` with a store_id);
    otherwise why not. Reads only (query_only)."""
    try:
        conn = open_for_check(path)
    except apsw.Error as exc:
        raise StoreDamaged(f"cannot open the database {path}: {exc}") from None
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_migrations" not in tables:
            found = ", ".join(sorted(tables)[:4]) + (", ..." if len(tables) > 4 else "")
            return f"{path} is not a Tablebox store: it has no schema_migrations table " + (
                f"(its tables: {found})" if tables else "(no tables at all)"
            )
        if "settings" not in tables or not scalar(conn, "SELECT count(*) FROM settings WHERE key = 'store_id'"):
            return f"{path} is not a Tablebox store: it has no store_id (never initialised, or another program's)"
    except apsw.Error as exc:  # page 1 damaged, ...
        return f"the database {path} cannot be read ({type(exc).__name__}: {exc})"
    finally:
        conn.close()
    return None


def store_file_problem(path: Path) -> str | None:
    """Why the file is not a Tablebox store (empty, not SQLite, no store schema), without changing a byte; None
    when it is one. Does not run quick_check: `tablebox init` and the doctor ask this."""
    return file_problem(path) or schema_problem(path)


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
            raise DatabaseProblem(
                f"{path} is damaged ({'integrity_check' if full else 'quick_check'}: {'; '.join(problems[:3])})"
            )
        return store_info(conn, path)
    finally:
        conn.close()


def store_info(conn: apsw.Connection, path: str | Path) -> StoreFileInfo:
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"settings", "schema_migrations", "orders"} <= tables:
            raise DatabaseProblem(f"{path} is not a Tablebox store (its tables are not a store's)")
        settings = dict(conn.execute("SELECT key, value FROM settings WHERE key IN ('store_id', 'store_name')"))
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


# -- Copies of a database file (appliance.backup): the SQLite side of backing up and restoring ------------------


class CopyFailed(StoreError):
    """A copy of the store could not be made whole; the message says why (the caller says what to do)."""


def copy_snapshot(
    db_path: Path,
    target: Path,
    *,
    shown_as: Path | None = None,
    vfs: str | None = None,
    step_pages: int = 256,
    room_for: Callable[[int], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    busy_give_up_seconds: float = 60.0,
    max_restarts: int = 20,
) -> StoreFileInfo:
    """Copy the live database page by page with SQLite's backup API into the new file `target`, then make the copy
    a self-contained file (journal_mode=DELETE) and check it (integrity_check, a store's tables and store_id).

    The source is read inside one read transaction: the copy is the database as it was when the copy began,
    whatever the writer commits meanwhile (WAL readers never block the writer, and without the open transaction
    every commit elsewhere would restart the copy from page 1). `room_for(bytes)` is called once the size is known,
    before anything is written, and may refuse by raising. Raises CopyFailed (a busy source, a copy that keeps
    starting over, a copy that is not whole, naming it `shown_as`); apsw errors (a full disk...) and OSError go to
    the caller."""
    src: apsw.Connection | None = None
    dst: apsw.Connection | None = None
    try:
        src = open_connection(db_path, readonly=True, vfs=vfs)
        src.execute("BEGIN")
        page_count: int = scalar(src, "PRAGMA page_count")  # the first read fixes the snapshot
        page_size: int = scalar(src, "PRAGMA page_size")
        if room_for is not None:
            room_for(page_count * page_size)
        dst = apsw.Connection(str(target))
        with dst.backup("main", src, "main") as copy:
            busy_since: float | None = None
            left, restarts = page_count, 0
            while not copy.done:
                try:
                    copy.step(step_pages)
                    busy_since = None
                    if copy.remaining > left:  # SQLite started over: the snapshot was lost (never expected)
                        restarts += 1
                        if restarts > max_restarts:
                            raise CopyFailed("the copy kept starting over while orders were written: try again")
                    left = copy.remaining
                except (apsw.BusyError, apsw.LockedError):
                    busy_since = busy_since or time.monotonic()
                    if time.monotonic() - busy_since > busy_give_up_seconds:
                        raise CopyFailed(
                            f"the database stayed busy for {busy_give_up_seconds:.0f} s: try again"
                        ) from None
                    time.sleep(0.05)
                    continue
                if progress is not None:
                    progress(copy.pagecount - copy.remaining, copy.pagecount)
        src.execute("COMMIT")
        src.close()
        src = None
        # The copy carries the source's WAL flag; a backup is one self-contained file.
        dst.execute("PRAGMA journal_mode=DELETE")
        problems = check_problems(dst, full=True)
        if problems:
            raise CopyFailed(
                f"the copy fails its integrity check ({'; '.join(problems[:3])}); "
                "the live database may be damaged: run `tablebox doctor`"
            )
        try:
            return store_info(dst, shown_as or target)
        except DatabaseProblem as exc:
            raise CopyFailed(str(exc)) from None
    finally:
        for conn in (src, dst):
            if conn is not None:
                conn.close()


def store_id_of(db_path: Path) -> str | None:
    """The store_id a database file holds; None when it cannot say (a damaged store, the usual reason to restore,
    need not say who it was)."""
    try:
        conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READWRITE)
        try:
            value: str | None = scalar(conn, "SELECT value FROM settings WHERE key = 'store_id'")
        finally:
            conn.close()
    except apsw.Error:
        return None
    return json.loads(value) if value else None


def checkpoint(db_path: Path) -> None:
    """Fold the WAL into the database file so the file is whole on its own (best effort: a damaged database keeps
    its -wal and -shm beside it instead)."""
    try:
        conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READWRITE)
        try:
            conn.set_busy_timeout(2000)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except apsw.Error:
        pass
