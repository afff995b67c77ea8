"""One process's handle on the store: the data folder, the secret, migrations, a read connection and the writer."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw

from appliance.backup import move_aside, newest_backup, restore_advice
from appliance.db.connection import open_connection
from appliance.db.integrity import refuse_damaged_store, store_file_problem
from appliance.db.migrate import migrate, refuse_newer_schema
from appliance.db.orders import MenuCache
from appliance.db.store_settings import StoreSettings, init_store_settings, load_store_settings
from appliance.db.tables import TableLine, table_lines
from appliance.db.writer import Writer
from appliance.errors import SecretError, SecretExposed, StoreDamaged, StoreError, StoreMissing
from appliance.settings import BoxSettings, public_base_url

__all__ = [
    "Store",
    "StoreError",
    "init_store",
    "read_secret",
    "require_store",
    "store_connection",
    "store_exists",
    "table_urls",
]


SECRET_MAX_BYTES = 4096  # the secret is 65 bytes of hex; a bigger file is not one (and is not read whole)


def read_secret(path: Path) -> bytes:
    """The store secret, or SecretError (exit 2) saying what is wrong with the file in one line: missing,
    unreadable, empty, not hex, too short; SecretExposed when group or others may read it (with the `chmod 600`
    to run). Every command that reads the secret (serve, demo, console, tables, staff add, stickers, the relay
    link of syncd) comes through here, so each refuses the same faults the same way."""
    try:
        with path.open("rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            raw = handle.read(SECRET_MAX_BYTES + 1)
    except FileNotFoundError:
        raise SecretError(
            f"no store secret at {path}: run `tablebox init` (or set secret_file), or copy back the "
            "store.secret kept from this store"
        ) from None
    except PermissionError:
        raise SecretError(f"cannot read the store secret {path}: wrong owner or mode") from None
    except OSError as exc:
        raise SecretError(f"cannot read the store secret {path}: {exc.strerror or exc}") from None
    try:
        secret = bytes.fromhex(raw.decode("ascii").strip()) if len(raw) <= SECRET_MAX_BYTES else None
    except (UnicodeDecodeError, ValueError):
        secret = None
    if secret is None:
        raise SecretError(f"{path} does not hold a hex secret: copy back the store.secret kept from this store")
    if len(secret) < 16:
        raise SecretError(
            f"{path}: the store secret is too short (at least 16 bytes)"
            if secret
            else f"{path} is empty: copy back the store.secret kept from this store"
        )
    if mode & 0o077:
        raise SecretExposed(
            f"{path} has mode {mode:04o}: other users on this machine can read the store secret and forge "
            f"table codes; run `chmod 600 {path}` (as its owner or root)"
        )
    return secret


def _write_secret(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: never overwrite a secret (that would void every printed sticker); 0600: only the service reads it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")


def store_exists(settings: BoxSettings) -> bool:
    return settings.db_path.exists()


def require_store(settings: BoxSettings, *, hint: str = "") -> None:
    """StoreMissing (exit 2) unless the data folder holds a store database; StoreDamaged (exit 2) when the file
    there is not one (zero-length, not SQLite, no store schema: someone else's database), with the restore steps.
    Every command that opens the store comes through here (store_connection, Store.open), before anything could
    migrate such a file into an empty store; it reads the file without changing a byte."""
    if not settings.db_path.exists():
        raise StoreMissing(f"no store at {settings.db_path}: run `tablebox init --data-dir {settings.data_dir}`{hint}")
    refuse_damaged_store(settings.db_path, lambda: restore_advice(settings), quick_check=False)


@contextmanager
def store_connection(settings: BoxSettings, *, readonly: bool = False, hint: str = "") -> Iterator[apsw.Connection]:
    """A connection to the store in the data folder, closed when the block ends; StoreMissing (exit 2, `hint`
    added to its message) when there is no store. Writes inside it go through `write_transaction`."""
    require_store(settings, hint=hint)
    conn = open_connection(settings.db_path, readonly=readonly, vfs=settings.sqlite_vfs or None)
    try:
        refuse_newer_schema(conn)  # an older release never reads or writes a store a newer one migrated
        yield conn
    finally:
        conn.close()


def refuse_newer_store(settings: BoxSettings) -> None:
    """StoreTooNew (exit 2) when a newer release migrated the store: checked before a daemon starts."""
    if settings.db_path.exists():
        with store_connection(settings, readonly=True):
            pass


def table_urls(settings: BoxSettings) -> list[TableLine]:
    """Every active table with its ordering URL (the public_base_url setting, else this box's LAN address)."""
    require_store(settings)
    secret = read_secret(settings.secret_path)
    with store_connection(settings, readonly=True) as conn:
        return table_lines(conn, secret, public_base_url(settings))


def init_store(settings: BoxSettings, store_values: Mapping[str, Any] | None = None) -> StoreSettings:
    """Create the data folder, the secret and a new store database. Refuses to touch an existing store."""
    if settings.db_path.exists():
        problem = store_file_problem(settings.db_path)
        if problem is None:
            raise StoreError(f"a store already exists at {settings.db_path}")
        newest = newest_backup(settings)
        backup = newest if newest is not None else "FILE"
        raise StoreDamaged(
            f"{problem}; `tablebox init` does not write over it. To start afresh, move it aside "
            f"(`{move_aside(settings)}`) and run `tablebox init` again; to get its orders back instead: "
            f"`tablebox restore {backup} --data-dir {settings.data_dir}`"
            + (" (the newest backup)" if newest is not None else " with a backup from a USB stick")
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.secret_path.exists():
        _write_secret(settings.secret_path)
    read_secret(settings.secret_path)
    values = {**settings.store_defaults, **(store_values or {})}
    conn = open_connection(settings.db_path, vfs=settings.sqlite_vfs or None)
    try:
        migrate(conn)
        with conn:
            init_store_settings(conn, secrets.token_hex(4), values)
        return load_store_settings(conn)
    except BaseException:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{settings.db_path}{suffix}").unlink(missing_ok=True)
        raise
    finally:
        conn.close()


class Store:
    """Open with `Store.open(settings)`; `read` is for the thread that opened it, `writer` for all writes."""

    def __init__(
        self, settings: BoxSettings, read: apsw.Connection, writer: Writer, secret: bytes, store: StoreSettings
    ) -> None:
        self.settings = settings
        self.read = read
        self.writer = writer
        self.secret = secret
        self.store_id = store.store_id
        self.write_cache = MenuCache()  # used only on the writer thread

    @classmethod
    def open(cls, settings: BoxSettings, *, start_writer: bool = True) -> Store:
        require_store(settings)
        secret = read_secret(settings.secret_path)
        vfs = settings.sqlite_vfs or None
        conn = open_connection(settings.db_path, vfs=vfs)
        try:
            migrate(conn)
        finally:
            conn.close()
        read = open_connection(settings.db_path, readonly=True, vfs=vfs)
        store = load_store_settings(read)
        writer = Writer(settings.db_path, vfs=vfs, max_batch=settings.writer_max_batch)
        return cls(settings, read, writer, secret, store)

    def store_settings(self) -> StoreSettings:
        return load_store_settings(self.read)

    def close(self) -> None:
        self.writer.close()
        self.read.close()
