"""`tablebox support-bundle` and `tablebox factory-reset`.

The support bundle is what a technician sends when asking for help: the doctor's checklist, the versions, the
settings and the logs, in one .tar.gz. It must be safe to e-mail, so nothing secret is ever in it:
- never the store database, its backups, store.secret or the settings file itself (the [sync] tables may
  hold API keys): the settings are listed from what was loaded, each secret key shown only as set or not;
- every text put in is passed through `Redactor`, which removes the values known to be secret on this box (the
  store secret, every sync secret from the settings and the environment, any environment variable named like
  a secret) and anything that looks like one: `pin=...`, `password: ...`, `"api_key": "..."`, bearer tokens,
  the signed table codes in ordering URLs (/t/CODE, /tables/CODE/: a code lets anyone order at that table).

The factory reset takes the box back to "no store": a checked backup first (into
<backup_dir>/factory-reset-<time>/ with a copy of store.secret beside it, so the old store can be restored with
its stickers; rotation never touches a subfolder), then the store database, the secret, the menu photos and
the off-card note are removed. The settings (tablebox.toml, network, technician access) stay: the box is still
reachable, and its next start makes a new, empty store (`tablebox init`)."""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from importlib import metadata
from pathlib import Path

import apsw

from appliance import __version__
from appliance.backup import (
    MANUAL,
    OFFCARD_RECORD,
    BackupError,
    backup_dir,
    copy_backup,
    list_backups,
    make_backup,
    store_in_use,
)
from appliance.db.integrity import StoreFileInfo
from appliance.db.retention import store_summary
from appliance.diskspace import MB, free_bytes
from appliance.errors import StoreError
from appliance.images import images_dir
from appliance.settings import SYNC_ENV_PREFIX, SYNC_SECRET_KEYS, BoxSettings

JOURNAL_UNITS = (
    "tablebox-web",
    "tablebox-printd",
    "tablebox-syncd",
    "tablebox-console",
    "tablebox-backup",
    "tablebox-prune",
    "tablebox-firstboot",
    "media-tablebox.mount",
)
JOURNAL_SINCE = "-7 days"
JOURNAL_LINES = 20_000
PROVISION_LOGS = ("/boot/firmware/tablebox/provision.log", "/boot/tablebox/provision.log")
REMOVED = "[removed]"
SECRET_WORDS = r"pin|password|passwd|pass|secret|token|api[_-]?key|api[_-]?secret|psk|auth[_-]?header|authorization"
_ASSIGNED = re.compile(
    rf"""(?ix)
    (["']?[\w.-]*(?:{SECRET_WORDS})["']?\s*[:=]\s*)   # a key named like a secret, then = or :
    (?!\[removed\]|bearer\s|basic\s)                     # (not a value removed already)
    (?:"[^"]*"|'[^']*'|[^\s,;&}}\]]+)                  # its value: quoted, or up to a separator
    """
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_TABLE_CODE = re.compile(r"(/t/|/tables/)[A-Za-z0-9._~-]{12,}")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^/\s@]+@")
_SECRET_ENV = re.compile(r"(?i)(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|PIN)")


class SupportError(StoreError):
    """A support bundle or factory reset that could not be done as asked; the message says why."""


class Redactor:
    """Removes secrets from text: the values given (and found in the environment), then anything shaped like one."""

    def __init__(self, secrets: Iterable[str], environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        values = {s.strip() for s in secrets if s and len(s.strip()) >= 4}
        for name, value in env.items():
            # 8 characters at least: a variable like SOME_TOKEN_ENABLED=true must not blank every "true"
            if (name.startswith(SYNC_ENV_PREFIX) or _SECRET_ENV.search(name)) and len(value.strip()) >= 8:
                values.add(value.strip())
        self.values = sorted(values, key=len, reverse=True)  # the longest first: no half of a secret is left

    def __call__(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, REMOVED)
        text = _URL_PASSWORD.sub(rf"\1:{REMOVED}@", text)
        text = _BEARER.sub(rf"\1 {REMOVED}", text)
        text = _TABLE_CODE.sub(rf"\1{REMOVED}", text)
        return _ASSIGNED.sub(rf"\1{REMOVED}", text)


def known_secrets(settings: BoxSettings) -> list[str]:
    """The secret values this box holds: its store secret and every sync target's secrets."""
    found: list[str] = []
    try:
        raw = settings.secret_path.read_text(encoding="utf-8", errors="replace").strip()
        if raw:
            found.append(raw)
    except OSError:
        pass
    for target in settings.sync_targets.values():
        for key in SYNC_SECRET_KEYS:
            value = target.get(key)
            if isinstance(value, str) and value:
                found.append(value)
    return found


def settings_text(settings: BoxSettings) -> str:
    """The settings in use, one a line; secret keys of the sync targets shown only as set or not."""
    lines = [f"settings file: {settings.config_file or '(none: defaults and TABLEBOX_* variables)'}", ""]
    for f in fields(BoxSettings):
        if f.name in ("store_defaults", "sync_targets", "config_file"):
            continue
        lines.append(f"{f.name} = {getattr(settings, f.name)!r}")
    if settings.store_defaults:
        lines.append("\n[store] (first values for `tablebox init`)")
        lines.extend(f"{k} = {v!r}" for k, v in sorted(settings.store_defaults.items()))
    for name, target in sorted(settings.sync_targets.items()):
        lines.append(f"\n[sync.{name}]")
        for key, value in sorted(target.items()):
            if key in SYNC_SECRET_KEYS:
                lines.append(f"{key} is {'set' if value else 'not set'} (not shown)")
            elif isinstance(value, Mapping):  # nested tables of an adapter: keys only
                lines.append(f"{key} = {{{', '.join(sorted(map(str, value)))}}}")
            else:
                lines.append(f"{key} = {value!r}")
    return "\n".join(lines) + "\n"


def store_text(settings: BoxSettings) -> str:
    """The store's own settings and counts, read-only (no order, no staff member, no PIN hash)."""
    if not settings.db_path.exists():
        return f"no store at {settings.db_path}\n"
    try:
        conn = apsw.Connection(
            f"file:{settings.db_path}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
        )
    except apsw.Error as exc:
        return f"cannot open {settings.db_path}: {exc}\n"
    try:
        conn.set_busy_timeout(2000)
        lines = [f"{settings.db_path}: {settings.db_path.stat().st_size} bytes"]
        lines.extend(f"{key} = {value}" for key, value in store_summary(conn))
        return "\n".join(lines) + "\n"
    except apsw.Error as exc:
        return f"cannot read {settings.db_path}: {exc}\n"
    finally:
        conn.close()


def versions_text(release_root: Path = Path("/opt/tablebox"), os_release: Path = Path("/etc/os-release")) -> str:
    lines = [
        f"tablebox {__version__}",
        f"python {sys.version.split()[0]} ({sys.executable})",
        f"sqlite {apsw.sqlite_lib_version()}, apsw {apsw.apsw_version()}",
        f"platform {platform.platform()} {platform.machine()}",
    ]
    for path in (Path("/proc/device-tree/model"), os_release):
        try:
            lines.append(f"{path}: {path.read_text(errors='replace').strip(chr(0)).strip()}")
        except OSError:
            pass
    for name in ("venv", "previous"):
        link = release_root / name
        if link.is_symlink():
            lines.append(f"{link} -> {os.readlink(link)}")
    releases = release_root / "releases"
    if releases.is_dir():
        lines.append(f"releases: {', '.join(sorted(p.name for p in releases.iterdir()))}")
    lines.append("\ninstalled packages:")
    lines.extend(sorted(f"  {d.metadata['Name']} {d.version}" for d in metadata.distributions()))
    return "\n".join(lines) + "\n"


def disk_text(settings: BoxSettings) -> str:
    lines = []
    for path in (settings.data_dir, backup_dir(settings), Path(settings.backup_usb_dir or "/nonexistent")):
        try:
            lines.append(f"{path}: {free_bytes(path) // MB} MB free")
        except OSError:
            continue
    folders = [backup_dir(settings)] + ([Path(settings.backup_usb_dir)] if settings.backup_usb_dir else [])
    for folder in folders:
        for when, path in list_backups(folder):
            lines.append(f"  {path} {path.stat().st_size // 1024} KB ({when:%Y-%m-%d %H:%M})")
    return "\n".join(lines) + "\n"


Runner = Callable[[Sequence[str]], str | None]


def run_program(command: Sequence[str]) -> str | None:
    """A program's output, or None when it is not installed (a laptop without journalctl)."""
    if shutil.which(command[0]) is None:
        return None
    try:
        result = subprocess.run(list(command), capture_output=True, text=True, timeout=60, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(command)} failed: {exc}\n"
    return result.stdout + (f"\n[stderr]\n{result.stderr}" if result.stderr.strip() else "")


def journal_texts(run: Runner = run_program) -> dict[str, str]:
    units = [arg for unit in JOURNAL_UNITS for arg in ("-u", unit)]
    common = ["journalctl", "--no-pager", "-o", "short-iso"]
    logs = run([*common, *units, "--since", JOURNAL_SINCE, "-n", str(JOURNAL_LINES)])
    if logs is None:
        return {"logs/journal.txt": "journalctl is not installed here: no logs from systemd's journal\n"}
    kernel = run([*common, "-k", "-b", "-n", "2000"]) or ""
    return {"logs/journal.txt": logs, "logs/kernel.txt": kernel}


@dataclass(frozen=True)
class Bundle:
    path: Path
    members: tuple[str, ...]


def support_bundle(
    settings: BoxSettings,
    out: Path,
    doctor_lines: Sequence[str],
    *,
    run: Runner = run_program,
    now: datetime | None = None,
    provision_logs: Sequence[str] = PROVISION_LOGS,
    release_root: Path = Path("/opt/tablebox"),
) -> Bundle:
    """Write the bundle to `out` (a .tar.gz only its owner can read) and return what is in it."""
    when = now or datetime.now()
    redact = Redactor(known_secrets(settings))
    texts: dict[str, str] = {
        "README.txt": f"Tablebox support bundle, {when:%Y-%m-%d %H:%M:%S} (box time), {platform.node()}\n"
        "No database, backup, store secret or settings file is in it; secrets in the texts are shown as "
        f"{REMOVED}.\n",
        "doctor.txt": "\n".join(doctor_lines) + "\n",
        "versions.txt": versions_text(release_root),
        "settings.txt": settings_text(settings),
        "store.txt": store_text(settings),
        "disk.txt": disk_text(settings),
        **journal_texts(run),
    }
    for log in provision_logs:
        try:
            texts[f"logs/{Path(log).name}"] = Path(log).read_text(encoding="utf-8", errors="replace")[-2_000_000:]
            break
        except OSError:
            continue
    if out.is_dir():
        out = out / f"tablebox-support-{platform.node() or 'box'}-{when:%Y%m%d-%H%M%S}.tar.gz"
    if not out.parent.is_dir():
        raise SupportError(f"{out.parent} is not a folder (is the USB stick mounted?)")
    temp = out.with_name(f".{out.name}.partial")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            base = f"tablebox-support-{when:%Y%m%d-%H%M%S}"
            for name, text in texts.items():
                data = redact(text).encode("utf-8")
                info = tarfile.TarInfo(f"{base}/{name}")
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(data))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, out)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise SupportError(f"cannot write {out}: {exc.strerror or exc}") from None
    return Bundle(out, tuple(texts))


def read_bundle(path: Path) -> dict[str, str]:
    """name -> text of every member (for tests and for a technician's quick look)."""
    with tarfile.open(path, "r:gz") as tar:
        out = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None:
                out[member.name.split("/", 1)[1]] = handle.read().decode("utf-8")
        return out


# --- factory reset ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResetDone:
    kept: Path  # the folder holding the backup and the secret
    backup: Path
    info: StoreFileInfo
    usb_copy: Path | None
    removed: tuple[Path, ...]


def reset_confirmed(typed: str, store_name: str) -> bool:
    """The typed confirmation: the store's name exactly, or RESET."""
    text = typed.strip()
    return text == "RESET" or (bool(store_name) and text == store_name.strip())


def factory_reset(
    settings: BoxSettings,
    *,
    force: bool = False,
    now: datetime | None = None,
    ismount: Callable[[str], bool] = os.path.ismount,
) -> ResetDone:
    """Back the store up (checked) with its secret into backups/factory-reset-<time>/, then remove the store."""
    db_path = settings.db_path
    if not db_path.exists():
        raise SupportError(f"no store at {db_path}: nothing to reset")
    if not force and store_in_use(db_path):
        raise SupportError(
            f"the store {db_path} is in use (web server, print worker or console running). Stop them first: "
            "`systemctl stop tablebox-web tablebox-printd tablebox-syncd tablebox-console`, then run it again"
        )
    when = now or datetime.now()
    kept = backup_dir(settings) / f"factory-reset-{when:%Y%m%d-%H%M%S}"
    try:
        kept.mkdir(parents=True, mode=0o700)
    except OSError as exc:
        raise SupportError(f"cannot create {kept}: {exc.strerror or exc}: nothing was changed") from None
    try:
        backup, info = make_backup(db_path, kept, when, vfs=settings.sqlite_vfs or None, kind=MANUAL)
    except BackupError as exc:
        shutil.rmtree(kept, ignore_errors=True)
        raise SupportError(f"{exc}: nothing was reset") from None
    secret = settings.secret_path
    if secret.exists():
        fd = os.open(kept / "store.secret", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret.read_bytes())
            handle.flush()
            os.fsync(handle.fileno())
    usb_copy = None
    if settings.backup_usb_dir and ismount(settings.backup_usb_dir):
        try:
            usb_copy = copy_backup(backup, Path(settings.backup_usb_dir))
        except BackupError:
            usb_copy = None  # the copy on the card is kept and checked; the stick is extra
    removed: list[Path] = []
    for path in (
        *(Path(f"{db_path}{suffix}") for suffix in ("", "-wal", "-shm")),
        secret,
        settings.data_dir / OFFCARD_RECORD,
    ):
        if path.exists():
            path.unlink()
            removed.append(path)
    photos = images_dir(settings.data_dir)
    if photos.is_dir():
        shutil.move(str(photos), str(kept / photos.name))  # the menu's photos go with the menu
        removed.append(photos)
    (kept / "README.txt").write_text(
        json.dumps(
            {
                "reset_at": when.isoformat(timespec="seconds"),
                "store_name": info.store_name,
                "store_id": info.store_id,
                "orders": info.orders,
                "restore": f"tablebox restore {backup} && cp {kept / 'store.secret'} {secret}",
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return ResetDone(kept, backup, info, usb_copy, tuple(removed))
