"""Copies of the store database: online backups taken while orders keep coming, their rotation, and restoring one."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shlex
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import apsw

from appliance.db.integrity import (
    CopyFailed,
    DatabaseProblem,
    StoreFileInfo,
    checkpoint,
    copy_snapshot,
    inspect_store_file,
    looks_like_sqlite,
    store_id_of,
)
from appliance.diskspace import MB, free_bytes
from appliance.errors import StoreError
from appliance.settings import BoxSettings

# store-YYYYMMDD-HHMMSS[-N].db: made by the nightly timer (`tablebox backup --automatic`), rotated 7 daily / 4 weekly;
# store-YYYYMMDD-HHMMSS[-N]-manual.db: made by a person (`tablebox backup`), never counted by that rotation, so a
# manual backup can never push a good nightly one out (issue 14); the newest KEEP_MANUAL of them are kept.
BACKUP_NAME = re.compile(r"^store-(\d{8})-(\d{6})(?:-(\d+))?(-manual)?\.db$")
MANUAL = "-manual"
PARTIAL = ".partial"  # a backup being written; left behind only by a crash, removed by the next backup
STEP_PAGES = 256  # pages copied per step (1 MB at 4 KB pages), so progress can be shown
BUSY_GIVE_UP_SECONDS = 60.0
MAX_RESTARTS = 20
KEEP_DAILY = 7
KEEP_WEEKLY = 4
KEEP_MANUAL = 10
SERVICES_HINT = "systemctl stop tablebox-web tablebox-printd tablebox-syncd tablebox-console"

# SQLite's lock bytes (file format, "locking"): every connection to a WAL database holds a read lock on
# this range while it is open, so a write lock on it is refused while any other process has the store open.
_SHARED_FIRST = 0x40000002
_SHARED_SIZE = 510

Progress = Callable[[int, int], None]  # (pages copied, pages in all)


class BackupError(StoreError):
    """A backup or a restore that could not be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class BackupMade:
    path: Path
    info: StoreFileInfo
    removed: tuple[Path, ...]


@dataclass(frozen=True)
class BackupReport:
    made: tuple[BackupMade, ...]
    skipped: tuple[str, ...]  # destinations not used, with why (a USB stick not mounted)


@dataclass(frozen=True)
class Restored:
    info: StoreFileInfo
    aside: tuple[Path, ...]  # the database that was live, kept (with its -wal/-shm if they were left)
    previous_store_id: str | None


def backup_dir(settings: BoxSettings) -> Path:
    return Path(settings.backup_dir) if settings.backup_dir else settings.data_dir / "backups"


def backup_time(path: Path) -> datetime | None:
    """When a backup was taken, from its name (store-YYYYMMDD-HHMMSS.db, local time); None for other files."""
    match = BACKUP_NAME.match(path.name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M%S")
    except ValueError:
        return None


def list_backups(folder: Path) -> list[tuple[datetime, Path]]:
    """The backups in a folder, newest first. Files not named like a backup are never listed (nor deleted)."""
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    found = [(when, path) for path in entries if (when := backup_time(path)) is not None and path.is_file()]
    return sorted(found, key=lambda pair: (pair[0], _serial(pair[1])), reverse=True)


def newest_backup(settings: BoxSettings) -> Path | None:
    backups = list_backups(backup_dir(settings))
    return backups[0][1] if backups else None


def move_aside(settings: BoxSettings) -> str:
    """The shell command that moves the store database and anything SQLite keeps beside it out of the way."""
    aside = shlex.quote(str(settings.data_dir / "damaged"))
    return f"mkdir -p {aside} && mv {shlex.quote(str(settings.db_path))}* {aside}/"


def restore_advice(settings: BoxSettings) -> str:
    """What to do about a store database that is damaged, empty or not a store, on one line, naming the newest
    backup (or, without one, how to start afresh). Said by every refusal to open it
    (appliance.db.integrity.refuse_damaged_store: serve, printd, tables, ...) and by the doctor's database line."""
    data = settings.data_dir
    newest = newest_backup(settings)
    if newest is not None:
        return (
            f"Stop the services (`{SERVICES_HINT}`), restore the newest backup: "
            f"`tablebox restore {newest} --data-dir {data}` (it keeps this file aside), then start them again."
        )
    return (
        f"No backup in {backup_dir(settings)}: restore one from elsewhere (a USB stick: "
        f"`tablebox restore FILE --data-dir {data}`), or start afresh: `{move_aside(settings)}`, then "
        f"`tablebox init --data-dir {data}` (a new, empty store)."
    )


def is_manual(path: Path) -> bool:
    match = BACKUP_NAME.match(path.name)
    return bool(match and match.group(4))


def _serial(path: Path) -> int:
    match = BACKUP_NAME.match(path.name)
    return int(match.group(3) or 1) if match else 0


def to_keep(backups: Iterable[tuple[datetime, Path]], keep_daily: int, keep_weekly: int) -> set[Path]:
    """The newest backup of each of the last `keep_daily` days that have one, and the newest of each of the
    last `keep_weekly` ISO weeks that have one (restic's --keep-daily / --keep-weekly)."""
    days: set[date] = set()
    weeks: set[tuple[int, int]] = set()
    keep: set[Path] = set()
    for when, path in sorted(backups, key=lambda pair: (pair[0], _serial(pair[1])), reverse=True):
        day = when.date()
        if day not in days and len(days) < keep_daily:
            days.add(day)
            keep.add(path)
        week = tuple(when.isocalendar())[:2]
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.add(week)  # type: ignore[arg-type]
            keep.add(path)
    return keep


def rotate(
    folder: Path,
    keep_daily: int = KEEP_DAILY,
    keep_weekly: int = KEEP_WEEKLY,
    protect: Path | None = None,
    keep_manual: int = KEEP_MANUAL,
) -> list[Path]:
    """Delete the automatic backups `to_keep` does not keep (counting automatic ones only) and the manual ones
    beyond the newest `keep_manual`; never `protect` (the one just made). Returns the deleted."""
    backups = list_backups(folder)
    automatic = [(when, path) for when, path in backups if not is_manual(path)]
    manual = [path for _, path in backups if is_manual(path)]
    keep = to_keep(automatic, keep_daily, keep_weekly) | set(manual[:keep_manual])
    removed = []
    for _, path in backups:
        if path in keep or (protect is not None and path.name == protect.name):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    if removed:
        _fsync_dir(folder)
    return removed


def run_backup(
    settings: BoxSettings,
    dest: Path | None = None,
    *,
    keep_daily: int = KEEP_DAILY,
    keep_weekly: int = KEEP_WEEKLY,
    progress: Progress | None = None,
    now: datetime | None = None,
    step_pages: int = STEP_PAGES,
    automatic: bool = False,
    keep_manual: int = KEEP_MANUAL,
) -> BackupReport:
    """`tablebox backup`: one online backup into `dest` (if given) or the backup folder, copied to the USB
    stick of `backup_usb_dir` when one is mounted there; each destination rotated. `automatic` (the timer's):
    named store-...db and rotated with the other automatic ones; otherwise (a person's) store-...-manual.db,
    which the automatic rotation never counts nor deletes."""
    kind = "" if automatic else MANUAL
    db_path = settings.db_path
    if not db_path.exists():
        raise BackupError(f"no store at {db_path}: nothing to back up (is --data-dir right?)")
    when = now or datetime.now()
    first = dest if dest is not None else backup_dir(settings)
    if dest is not None and not dest.is_dir():
        raise BackupError(f"{dest} is not a folder (is the USB stick mounted?)")
    reserve = settings.min_free_mb * MB if _same_disk(first, settings.data_dir) else 0
    made: list[BackupMade] = []
    skipped: list[str] = []
    with _folder_lock(first, create=dest is None, owner_like=settings.data_dir):
        path, info = make_backup(
            db_path,
            first,
            when,
            progress=progress,
            reserve_bytes=reserve,
            vfs=settings.sqlite_vfs or None,
            step_pages=step_pages,
            kind=kind,
        )
        made.append(BackupMade(path, info, tuple(rotate(first, keep_daily, keep_weekly, path, keep_manual))))
    if not _same_disk(first, settings.data_dir):
        record_offcard(settings, path)
    if dest is None and settings.backup_usb_dir:
        usb = Path(settings.backup_usb_dir)
        if not os.path.ismount(usb):
            skipped.append(f"{usb} is not a mounted USB stick: no copy made there")
        else:
            with _folder_lock(usb, create=False):
                copy = copy_backup(path, usb)
                made.append(BackupMade(copy, info, tuple(rotate(usb, keep_daily, keep_weekly, copy, keep_manual))))
            record_offcard(settings, copy)
    return BackupReport(tuple(made), tuple(skipped))


OFFCARD_RECORD = "offcard.json"


def record_offcard(settings: BoxSettings, copy: Path) -> None:
    """Remember the newest backup written off the SD card (a USB stick), so `tablebox doctor` can name it and its
    age even after the stick was taken away (appliance/offcard.py). Written atomically, next to the store."""
    when = backup_time(copy) or datetime.now()
    record = {"path": str(copy), "taken": when.isoformat(timespec="seconds"), "device": _device_name(copy)}
    target = settings.data_dir / OFFCARD_RECORD
    temp = target.with_name(f".{target.name}.tmp")
    try:
        temp.write_text(json.dumps(record) + "\n", encoding="utf-8")
        _match_owner(temp, settings.data_dir, mode=False)
        os.replace(temp, target)
    except OSError:  # the copy itself is made; only the doctor's note of it is missing
        temp.unlink(missing_ok=True)


def _device_name(path: Path) -> str:
    """The file system label of the stick a path is on (/dev/disk/by-label), or '' when it has none."""
    try:
        dev = path.stat().st_dev
        for link in Path("/dev/disk/by-label").iterdir():
            if link.resolve().stat().st_rdev == dev:
                return link.name.replace("\\x20", " ")
    except OSError:
        pass
    return ""


def make_backup(
    db_path: Path,
    folder: Path,
    when: datetime,
    *,
    progress: Progress | None = None,
    reserve_bytes: int = 0,
    vfs: str | None = None,
    step_pages: int = STEP_PAGES,
    kind: str = "",
) -> tuple[Path, StoreFileInfo]:
    """Copy the live database into a temporary file in `folder` (appliance.db.integrity.copy_snapshot: SQLite's
    backup API inside one read transaction, so the copy is the database as it was when the backup began, whatever
    the writer commits meanwhile), checked, make it durable, then rename it into place."""
    for stale in folder.glob(f".store-*{PARTIAL}*"):
        stale.unlink(missing_ok=True)
    final = _free_name(folder, when, kind)
    temp = folder / f".{final.name}{PARTIAL}"
    _create_private(temp)

    def room_for(need: int) -> None:
        free = free_bytes(folder)
        if free < need + reserve_bytes:
            raise BackupError(
                f"not enough free space in {folder}: the backup needs {_mb(need)} MB"
                + (f" and {_mb(reserve_bytes)} MB must stay free for orders (min_free_mb)" if reserve_bytes else "")
                + f", {_mb(free)} MB are free: delete old files or back up to a USB stick (--dest)"
            )

    try:
        try:
            info = copy_snapshot(
                db_path,
                temp,
                shown_as=final,
                vfs=vfs,
                step_pages=step_pages,
                room_for=room_for,
                progress=progress,
                busy_give_up_seconds=BUSY_GIVE_UP_SECONDS,
                max_restarts=MAX_RESTARTS,
            )
        except CopyFailed as exc:
            raise BackupError(f"the backup failed: {exc}") from None
        _fsync_file(temp)
        os.rename(temp, final)
        _fsync_dir(folder)
        return final, info
    except apsw.FullError:
        raise BackupError(f"{folder} ran out of space during the backup: free some space or use --dest") from None
    except apsw.Error as exc:
        raise BackupError(f"the backup failed: {exc}") from None
    except OSError as exc:
        raise BackupError(f"cannot write the backup in {folder}: {exc.strerror or exc}") from None
    finally:
        for leftover in (temp, Path(f"{temp}-journal"), Path(f"{temp}-wal"), Path(f"{temp}-shm")):
            leftover.unlink(missing_ok=True)


def copy_backup(backup: Path, folder: Path) -> Path:
    """Copy a checked backup to another folder (a USB stick), check the copy, then rename it into place."""
    size = backup.stat().st_size
    free = free_bytes(folder)
    if free < size + MB:
        raise BackupError(f"not enough free space on {folder}: {_mb(size)} MB needed, {_mb(free)} MB free")
    final = _free_name(folder, backup_time(backup) or datetime.now(), MANUAL if is_manual(backup) else "")
    temp = folder / f".{final.name}{PARTIAL}"
    try:
        _create_private(temp)
        with backup.open("rb") as source, temp.open("wb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
            target.flush()
            os.fsync(target.fileno())
        try:
            inspect_store_file(temp, full=True)
        except DatabaseProblem as exc:
            raise BackupError(
                f"the copy on {folder} does not read back whole ({exc}): the stick may be failing"
            ) from exc
        os.rename(temp, final)
        _fsync_dir(folder)
        return final
    except OSError as exc:
        raise BackupError(f"cannot write the backup to {folder}: {exc.strerror or exc}") from None
    finally:
        temp.unlink(missing_ok=True)


def store_in_use(db_path: Path) -> bool:
    """True while another process (web server, print worker, console) has the store open."""
    try:
        fd = os.open(db_path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, _SHARED_SIZE, _SHARED_FIRST)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, _SHARED_SIZE, _SHARED_FIRST)
        return False
    finally:
        os.close(fd)  # no other connection of this process is open on it: closing drops no lock of ours


def restore(settings: BoxSettings, file: Path, *, force: bool = False, now: datetime | None = None) -> Restored:
    """Put a backup in place of the live database. The file is copied next to the store and checked there
    first (SQLite header, integrity_check, a store_id); the live database is touched only after that:
    its WAL is checkpointed into it, then it and anything left of its -wal/-shm are renamed aside
    (store.db.before-restore-<time>), and the checked copy is renamed into place."""
    db_path = settings.db_path
    if not file.is_file():
        raise BackupError(f"{file}: no such file")
    if not looks_like_sqlite(file):
        raise BackupError(f"{file} is not a SQLite database: nothing was changed")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not force and store_in_use(db_path):
        raise BackupError(
            f"the store {db_path} is in use (web server, print worker or console running). "
            f"Stop them first: `{SERVICES_HINT}`, then run the restore again "
            "(--force restores anyway; whatever is running keeps writing to the old file)"
        )
    when = now or datetime.now()
    temp = settings.data_dir / f".{db_path.name}.restoring"
    previous: str | None = None
    try:
        with file.open("rb") as source, temp.open("wb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
            target.flush()
            os.fsync(target.fileno())
        try:
            info = inspect_store_file(temp, full=True)
        except DatabaseProblem as exc:
            raise BackupError(str(exc).replace(str(temp), str(file)) + ": nothing was changed") from None
        _match_owner(temp, db_path if db_path.exists() else settings.data_dir)
        aside: list[Path] = []
        if db_path.exists():
            previous = store_id_of(db_path)
            checkpoint(db_path)
            stamp = when.strftime("%Y%m%d-%H%M%S")
            for suffix in ("", "-wal", "-shm"):
                live = Path(f"{db_path}{suffix}")
                if live.exists():
                    kept = Path(f"{db_path}.before-restore-{stamp}{suffix}")
                    os.rename(live, kept)
                    aside.append(kept)
        os.rename(temp, db_path)
        _fsync_dir(settings.data_dir)
        return Restored(info, tuple(aside), previous)
    except OSError as exc:
        raise BackupError(f"restore failed: {exc.strerror or exc} ({exc.filename or db_path})") from None
    finally:
        for leftover in (temp, Path(f"{temp}-journal"), Path(f"{temp}-wal"), Path(f"{temp}-shm")):
            leftover.unlink(missing_ok=True)


class _folder_lock:
    """One backup at a time per folder (the timer and a technician may start one together)."""

    def __init__(self, folder: Path, *, create: bool, owner_like: Path | None = None) -> None:
        self.folder = folder
        self.create = create
        self.owner_like = owner_like
        self.fd = -1

    def __enter__(self) -> _folder_lock:
        folder = self.folder
        if not folder.is_dir():
            if not self.create:
                raise BackupError(f"{folder} does not exist (is the USB stick mounted?)")
            try:
                folder.mkdir(parents=True, mode=0o750)
            except OSError as exc:
                raise BackupError(f"cannot create the backup folder {folder}: {exc.strerror}") from None
            if self.owner_like is not None:
                _match_owner(folder, self.owner_like, mode=False)
        try:
            self.fd = os.open(folder / ".backup.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BackupError(f"cannot write to {folder}: {exc.strerror}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise BackupError(f"another backup into {folder} is running: wait for it to finish") from None
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _free_name(folder: Path, when: datetime, kind: str = "") -> Path:
    base = f"store-{when:%Y%m%d-%H%M%S}"
    candidate = folder / f"{base}{kind}.db"
    n = 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{base}-{n}{kind}.db"
    return candidate


def _create_private(path: Path) -> None:
    """Create an empty file only the service can read (a backup holds every order of the store)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    except OSError as exc:
        raise BackupError(f"cannot write to {path.parent}: {exc.strerror}") from None
    _match_owner(path, path.parent, mode=False)


def _match_owner(path: Path, like: Path, *, mode: bool = True) -> None:
    """Run as root (a technician with sudo), give a file the owner of the store's files, so the services
    (user tablebox) can still use it."""
    if os.geteuid() != 0:
        return
    try:
        st = like.stat()
        os.chown(path, st.st_uid, st.st_gid)
        if mode and like.is_file():
            os.chmod(path, st.st_mode & 0o777)
    except OSError:  # FAT sticks have no owners
        pass


def _same_disk(folder: Path, data_dir: Path) -> bool:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return probe.stat().st_dev == data_dir.stat().st_dev
    except OSError:
        return True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: the directory entry is data too."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (FAT over some drivers) refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def _mb(n: int) -> int:
    return -(-n // MB)
